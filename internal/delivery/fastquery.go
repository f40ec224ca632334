package delivery

import (
	"regexp"
	"strings"

	"github.com/runnel/runnel/internal/jsonscan"
)

// fieldQuery is a MetadataExtraction query of the common form
// {key: .a, other: .b.c}: every key a field path. Such a query is
// answered by scanning the record once, without building it in memory;
// the record's keys are then what gojq would give, or the scan gives up
// and gojq answers (escaped strings, numbers other than plain integers,
// nesting deeper than the scanner follows, anything unusual).
type fieldQuery struct {
	keys  []string
	paths [][]string
}

var (
	fieldQueryRE = regexp.MustCompile(`^\{\s*([A-Za-z_][A-Za-z0-9_]*\s*:\s*(\.[A-Za-z_][A-Za-z0-9_]*)+\s*)(,\s*[A-Za-z_][A-Za-z0-9_]*\s*:\s*(\.[A-Za-z_][A-Za-z0-9_]*)+\s*)*\}$`)
	identRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// parseFieldQuery recognises q as a field query, or returns nil.
func parseFieldQuery(q string) *fieldQuery {
	q = strings.TrimSpace(q)
	if !fieldQueryRE.MatchString(q) {
		return nil
	}
	fq := &fieldQuery{}
	seen := map[string]bool{}
	for _, kv := range strings.Split(q[1:len(q)-1], ",") {
		k, v, _ := strings.Cut(kv, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !identRE.MatchString(k) || seen[k] {
			return nil // a repeated key: let gojq decide
		}
		seen[k] = true
		fq.keys = append(fq.keys, k)
		fq.paths = append(fq.paths, strings.Split(v[1:], "."))
	}
	return fq
}

// scalar is a value found by a field query: its text, and whether it was
// found at all (a missing field is null to jq).
type scalar struct {
	text  string
	found bool
	null  bool
}

// extract returns the keys of data, ok false when gojq must decide.
func (fq *fieldQuery) extract(data []byte) (keys map[string]string, isNull string, ok bool) {
	vals := make([]scalar, len(fq.keys))
	s := jsonscan.Scanner{B: data}
	if !fq.object(&s, 0, nil, vals) || !s.End() {
		return nil, "", false
	}
	keys = make(map[string]string, len(fq.keys))
	for i, v := range vals {
		if !v.found || v.null {
			return nil, fq.keys[i], true
		}
		keys[fq.keys[i]] = v.text
	}
	return keys, "", true
}

// object scans an object at depth whose path from the record is prefix,
// filling the values of the paths that run through it.
func (fq *fieldQuery) object(s *jsonscan.Scanner, depth int, prefix []string, vals []scalar) bool {
	if depth > jsonscan.MaxDepth {
		return false
	}
	return s.Object(func(key []byte) bool {
		name := string(key)
		wanted, descend := -1, false
		for i, p := range fq.paths {
			if len(p) <= len(prefix) || p[len(prefix)] != name || !hasPrefix(p, prefix) {
				continue
			}
			if len(p) == len(prefix)+1 {
				wanted = i
			} else {
				descend = true
			}
		}
		switch {
		case wanted >= 0 && descend:
			return false // a key both a leaf and a parent: unusual, let gojq decide
		case wanted >= 0:
			v, ok := readScalar(s)
			if !ok {
				return false
			}
			for i, p := range fq.paths { // every key naming this path (last occurrence wins)
				if len(p) == len(prefix)+1 && p[len(prefix)] == name && hasPrefix(p, prefix) {
					vals[i] = v
				}
			}
			return true
		case descend:
			s.WS()
			if s.I < len(s.B) && s.B[s.I] == '{' {
				return fq.object(s, depth+1, append(prefix[:len(prefix):len(prefix)], name), vals)
			}
			return false // .a.b on a value that is not an object: gojq's error or null
		}
		return s.Skip(depth + 1)
	})
}

func hasPrefix(p, prefix []string) bool {
	for i, q := range prefix {
		if p[i] != q {
			return false
		}
	}
	return true
}

// readScalar reads a string without escapes, a plain integer, true, false
// or null as partitionKeys would write it.
func readScalar(s *jsonscan.Scanner) (scalar, bool) {
	s.WS()
	if s.I >= len(s.B) {
		return scalar{}, false
	}
	switch c := s.B[s.I]; {
	case c == '"':
		v, ok := s.Str()
		return scalar{text: string(v), found: true}, ok
	case c == '-' || c >= '0' && c <= '9':
		v, ok := s.Number()
		if !ok || !plainInt(v) {
			return scalar{}, false
		}
		return scalar{text: string(v), found: true}, true
	case c == 'n':
		if s.Null() {
			return scalar{found: true, null: true}, true
		}
	case c == 't' || c == 'f':
		start := s.I
		if s.Skip(1) {
			return scalar{text: string(s.B[start:s.I]), found: true}, true
		}
	}
	return scalar{}, false
}

// plainInt reports whether v is an integer of at most 15 digits without a
// leading zero, which every JSON decoder reads exactly.
func plainInt(v []byte) bool {
	d := v
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 15 || (len(d) > 1 && d[0] == '0') || (len(v) != len(d) && d[0] == '0') {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
