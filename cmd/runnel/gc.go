package main

import (
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
)

// The garbage collector's settings for runnel serve.
//
// With Go's default (GOGC=100) the collector runs whenever the heap has
// doubled since the last collection. The server's live heap is small next to
// what passes through it (request bodies, read buffers and answers, each
// dropped once answered), so under load it collected many times a second:
// with the disk engine the collector's marking, sweeping and assists took
// about 5% of the server's CPU under 1 KiB PutRecords and GetRecords load.
// A higher GOGC makes collections rarer in exchange for a larger heap; the
// soft memory limit bounds that heap, so that the resident size stays near
// what it was when the live heap is small and the collector works harder
// only when the heap nears the limit. Measured in docs/BENCHMARKS.md.
//
// The limit is soft: a heap that must grow past it (many large reads at
// once) still grows, with the collector running more often, up to half the
// CPU; --memory-limit raises it for such servers.
//
// The memory engine keeps every record in the heap, so there the live heap
// is the data: it keeps Go's defaults, as a limit below the data would make
// the collector run continuously.

// defaultGCPercent is the GOGC of runnel serve with the disk engine.
const defaultGCPercent = 400

// defaultMemoryLimit is the soft memory limit of runnel serve with the disk
// engine.
const defaultMemoryLimit = 256 << 20

// gcSettings returns the GC percent and soft memory limit (bytes; -1 to leave
// either unchanged) runnel serve applies: the flags' values with the disk
// engine, except where the environment sets GOGC or GOMEMLIMIT, which Go has
// applied itself.
func gcSettings(engineName string, getenv env, percent int, limit int64) (int, int64) {
	if engineName != "disk" {
		return -1, -1
	}
	if getenv("GOGC") != "" {
		percent = -1
	}
	if getenv("GOMEMLIMIT") != "" {
		limit = -1
	}
	return percent, limit
}

// applyGC applies gcSettings' answer; a limit of 0 means no limit.
func applyGC(percent int, limit int64) {
	if percent >= 0 {
		debug.SetGCPercent(percent)
	}
	switch {
	case limit == 0:
		debug.SetMemoryLimit(math.MaxInt64)
	case limit > 0:
		debug.SetMemoryLimit(limit)
	}
}

// parseBytes reads a size as GOMEMLIMIT writes it: a number of bytes with an
// optional unit B, KiB, MiB, GiB or TiB; "0" or "off" is no limit (0).
func parseBytes(s string) (int64, error) {
	if s == "off" {
		return 0, nil
	}
	num, mult := s, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is not a size such as 512MiB, 2GiB or off", s)
	}
	return n * mult, nil
}

// bytesFlag is a flag.Value holding a size read by parseBytes.
type bytesFlag struct{ p *int64 }

func (b bytesFlag) String() string {
	if b.p == nil || *b.p == 0 {
		return "off"
	}
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if *b.p%u.mult == 0 {
			return strconv.FormatInt(*b.p/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(*b.p, 10)
}

// Get returns the size in bytes (flag.Getter).
func (b bytesFlag) Get() any { return *b.p }

func (b bytesFlag) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b.p = n
	return nil
}
