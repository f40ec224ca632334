package disk

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/runnel/runnel/internal/engine"
)

// Batch framing (see doc.go for the byte layout).
const (
	batchHeaderSize = 32
	// maxFrameSize bounds a frame's length field: the largest batch the
	// engine accepts plus its per-record length prefixes, plus an encrypted
	// frame's key id, nonce and tag.
	maxFrameSize = batchHeaderSize + engine.MaxBatchBytes + engine.MaxBatchRecords*2*binary.MaxVarintLen32 + cryptoOverhead

	// flagEncrypted marks an encrypted frame: its records section is a
	// key id, a nonce, the records sealed with AES-256-GCM and the tag.
	flagEncrypted = 1
	// cryptoHeaderSize is an encrypted frame's key id (4) and nonce (12),
	// between the frame header and the ciphertext.
	cryptoHeaderSize = 16
	nonceSize        = 12
	tagSize          = 16
	cryptoOverhead   = cryptoHeaderSize + tagSize
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errShortFrame reports that the bytes end inside a frame: a torn write at
// the end of a segment, or simply a buffer that needs more bytes.
var errShortFrame = errors.New("disk: frame extends past the data")

// CorruptionError reports bytes on disk that fail their checks. Readers
// step over damaged frames (see doc.go, "Holes"), so it reaches a caller only
// for a frame whose checksum holds but whose records do not parse.
type CorruptionError struct {
	// Path is the file, Pos the byte position in it.
	Path string
	Pos  int64
	// Reason says what check failed.
	Reason string
}

// Error implements error.
func (e *CorruptionError) Error() string {
	return fmt.Sprintf("disk: corrupt data in %s at byte %d: %s", e.Path, e.Pos, e.Reason)
}

// batchHeader is the fixed part of a frame.
type batchHeader struct {
	Length      uint32 // whole frame, header included
	CRC         uint32
	FirstOffset uint64
	Count       uint32
	Flags       uint32 // 0, or flagEncrypted
	Time        int64  // arrival time of every record, Unix ms
}

// encodeBody returns a frame whose header is left to sealFrame, and the
// CRC-32C of its records section. It runs on the appender's goroutine so
// concurrent appenders encode and checksum in parallel. With encrypt, the
// frame has room for the key id, nonce and tag, its records are still in
// plain text, and the CRC is left to sealEncryptedFrame (it covers the
// ciphertext).
func encodeBody(dst []byte, recs []engine.Record, encrypt bool) ([]byte, uint32) {
	start := batchHeaderSize
	if encrypt {
		start += cryptoHeaderSize
	}
	n, total := frameSize(recs, encrypt)
	if cap(dst) < total {
		dst = make([]byte, total)
	}
	b := dst[:n]
	clear(b[:start])
	p := start
	for _, r := range recs {
		p += binary.PutUvarint(b[p:], uint64(len(r.Key)))
		p += binary.PutUvarint(b[p:], uint64(len(r.Value)))
		p += copy(b[p:], r.Key)
		p += copy(b[p:], r.Value)
	}
	binary.LittleEndian.PutUint32(b[16:], uint32(len(recs)))
	if encrypt {
		binary.LittleEndian.PutUint32(b[0:], uint32(total))
		binary.LittleEndian.PutUint32(b[20:], flagEncrypted)
		return b, 0
	}
	binary.LittleEndian.PutUint32(b[0:], uint32(n))
	return b, crc32.Checksum(b[batchHeaderSize:], crcTable)
}

// frameSize returns the size of recs' frame as encodeBody builds it (n)
// and once sealed (total: an encrypted frame's tag added).
func frameSize(recs []engine.Record, encrypt bool) (n, total int) {
	n = batchHeaderSize
	if encrypt {
		n += cryptoHeaderSize
	}
	for _, r := range recs {
		n += uvarintLen(uint64(len(r.Key))) + uvarintLen(uint64(len(r.Value))) + len(r.Key) + len(r.Value)
	}
	total = n
	if encrypt {
		total += tagSize
	}
	return n, total
}

// sealEncryptedFrame fills in an encrypted frame's header (see
// sealFrame), key id and nonce, encrypts its records in place with aead,
// authenticating header bytes 8..48 (first offset, count, flags, time, key
// id, nonce) as additional data, appends the tag, and computes the CRC over
// the result as for a plain frame. frame is what encodeBody returned (its
// capacity holds the tag); it returns the whole frame.
func sealEncryptedFrame(frame []byte, aead cipher.AEAD, keyID uint32, salt uint32, first uint64, t int64) []byte {
	const body = batchHeaderSize + cryptoHeaderSize
	binary.LittleEndian.PutUint64(frame[8:], first)
	binary.LittleEndian.PutUint64(frame[24:], uint64(t))
	binary.LittleEndian.PutUint32(frame[32:], keyID)
	nonce := frame[36:body]
	binary.LittleEndian.PutUint32(nonce[0:], salt)
	binary.LittleEndian.PutUint64(nonce[4:], first)
	sealed := aead.Seal(frame[body:body], nonce, frame[body:], frame[8:body])
	frame = frame[:body+len(sealed)]
	crc := crc32.Checksum(frame[batchHeaderSize:], crcTable)
	binary.LittleEndian.PutUint32(frame[4:], crc32.Update(crc, crcTable, frame[8:batchHeaderSize]))
	return frame
}

// frameKeyID returns the key id of an encrypted frame (0 for a plain one).
func frameKeyID(frame []byte, h batchHeader) uint32 {
	if h.Flags&flagEncrypted == 0 {
		return 0
	}
	return binary.LittleEndian.Uint32(frame[batchHeaderSize:])
}

// openFrame decrypts a checksummed encrypted frame's records section in
// place and returns it; frame's ciphertext is overwritten.
func openFrame(frame []byte, h batchHeader, aead cipher.AEAD) ([]byte, error) {
	const body = batchHeaderSize + cryptoHeaderSize
	if aead.NonceSize() != nonceSize || aead.Overhead() != tagSize {
		return nil, fmt.Errorf("key has a %d-byte nonce and a %d-byte tag, want %d and %d", aead.NonceSize(), aead.Overhead(), nonceSize, tagSize)
	}
	pt, err := aead.Open(frame[body:body], frame[36:body], frame[body:h.Length], frame[8:body])
	if err != nil {
		return nil, engine.ErrDecrypt
	}
	return pt, nil
}

// recordsSection returns a checksummed frame's records, decrypted with
// the key open returns for an encrypted frame.
func recordsSection(frame []byte, h batchHeader, open func(id uint32) (cipher.AEAD, error)) ([]byte, error) {
	if h.Flags&flagEncrypted == 0 {
		return frame[batchHeaderSize:h.Length], nil
	}
	aead, err := open(frameKeyID(frame, h))
	if err != nil {
		return nil, err
	}
	return openFrame(frame, h, aead)
}

// sealFrame fills in the header fields known only at commit time and the
// frame's checksum: CRC-32C over the records section, then header bytes
// 8..32.
func sealFrame(frame []byte, bodyCRC uint32, first uint64, t int64) {
	binary.LittleEndian.PutUint64(frame[8:], first)
	binary.LittleEndian.PutUint64(frame[24:], uint64(t))
	binary.LittleEndian.PutUint32(frame[4:], crc32.Update(bodyCRC, crcTable, frame[8:batchHeaderSize]))
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// parseHeader decodes and sanity-checks a frame header from b, which holds
// at least batchHeaderSize bytes.
func parseHeader(b []byte) (batchHeader, error) {
	h := batchHeader{
		Length:      binary.LittleEndian.Uint32(b[0:]),
		CRC:         binary.LittleEndian.Uint32(b[4:]),
		FirstOffset: binary.LittleEndian.Uint64(b[8:]),
		Count:       binary.LittleEndian.Uint32(b[16:]),
		Flags:       binary.LittleEndian.Uint32(b[20:]),
		Time:        int64(binary.LittleEndian.Uint64(b[24:])),
	}
	switch {
	case h.Length < batchHeaderSize+2 || h.Length > maxFrameSize:
		return h, fmt.Errorf("bad frame length %d", h.Length)
	case h.Count == 0 || h.Count > engine.MaxBatchRecords:
		return h, fmt.Errorf("bad record count %d", h.Count)
	case h.Flags&^flagEncrypted != 0:
		return h, fmt.Errorf("unknown flags %#x", h.Flags)
	case h.Flags == flagEncrypted && h.Length < batchHeaderSize+cryptoOverhead+2:
		return h, fmt.Errorf("bad encrypted frame length %d", h.Length)
	case h.Count*2 > h.Length-batchHeaderSize-h.overhead():
		return h, fmt.Errorf("record count %d does not fit in %d bytes", h.Count, h.Length)
	}
	return h, nil
}

// overhead is what the frame holds beyond its header and records.
func (h batchHeader) overhead() uint32 {
	if h.Flags&flagEncrypted != 0 {
		return cryptoOverhead
	}
	return 0
}

// checkFrame verifies a whole frame's checksum.
func checkFrame(frame []byte, h batchHeader) error {
	crc := crc32.Checksum(frame[batchHeaderSize:h.Length], crcTable)
	crc = crc32.Update(crc, crcTable, frame[8:batchHeaderSize])
	if crc != h.CRC {
		return fmt.Errorf("checksum mismatch: stored %#08x, computed %#08x", h.CRC, crc)
	}
	return nil
}

// decodeFrame parses the frame at the start of b: header, checksum and
// records, decrypted with the key open returns if the frame is encrypted
// (in place: b's ciphertext is overwritten). It returns errShortFrame when b
// ends inside the frame. fn is called for each record in order; key and
// value alias b.
func decodeFrame(b []byte, open func(id uint32) (cipher.AEAD, error), fn func(i int, key, value []byte)) (batchHeader, error) {
	if len(b) < batchHeaderSize {
		return batchHeader{}, errShortFrame
	}
	h, err := parseHeader(b)
	if err != nil {
		return h, err
	}
	if uint64(len(b)) < uint64(h.Length) {
		return h, errShortFrame
	}
	if err := checkFrame(b, h); err != nil {
		return h, err
	}
	body, err := recordsSection(b, h, open)
	if err != nil {
		return h, err
	}
	return h, walkRecords(body, int(h.Count), fn)
}

// collector gathers a Read's records within its limits.
type collector struct {
	out        []engine.StoredRecord
	from       uint64 // the next offset wanted
	bytes      int    // of keys and values in out
	maxRecords int
	maxBytes   int  // beyond the first record
	full       bool // a limit is reached
}

// add appends the records from offset c.from on of a frame's records
// section (count records, the first at offset first, all of arrival time t
// and stored under key keyID) until a limit is reached. It returns
// walkRecords' error.
func (c *collector) add(body []byte, count int, first uint64, t int64, keyID uint32) error {
	err := walkRecords(body, count, func(i int, k, v []byte) {
		off := first + uint64(i)
		if off < c.from || c.full {
			return
		}
		sz := len(k) + len(v)
		if len(c.out) >= c.maxRecords || (len(c.out) > 0 && c.bytes+sz > c.maxBytes) {
			c.full = true
			return
		}
		c.bytes += sz
		c.out = append(c.out, engine.StoredRecord{Offset: off, Time: t, KeyID: keyID, Key: k, Value: v})
		c.from = off + 1
	})
	if len(c.out) >= c.maxRecords {
		c.full = true
	}
	return err
}

// walkRecords walks a checksummed records section. A section that does not
// hold exactly count records is an error (it can only come from a bug or a
// CRC collision, but the decoder must not trust it).
func walkRecords(body []byte, count int, fn func(i int, key, value []byte)) error {
	p := 0
	for i := 0; i < count; i++ {
		kl, n := binary.Uvarint(body[p:])
		if n <= 0 {
			return errors.New("bad key length")
		}
		p += n
		vl, n := binary.Uvarint(body[p:])
		if n <= 0 {
			return errors.New("bad value length")
		}
		p += n
		if kl > uint64(len(body)-p) || vl > uint64(len(body)-p)-kl {
			return errors.New("record runs past the frame")
		}
		k := body[p : p+int(kl) : p+int(kl)]
		p += int(kl)
		v := body[p : p+int(vl) : p+int(vl)]
		p += int(vl)
		if fn != nil {
			fn(i, k, v)
		}
	}
	if p != len(body) {
		return errors.New("trailing bytes after the last record")
	}
	return nil
}
