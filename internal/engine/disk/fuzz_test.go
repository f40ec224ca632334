package disk

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/runnel/runnel/internal/engine"
)

func frameOf(first uint64, t int64, recs ...engine.Record) []byte {
	f, crc := encodeBody(nil, recs, false)
	sealFrame(f, crc, first, t)
	return f
}

// fuzzAEAD is the key of the fuzzed encrypted frames, id 7.
var fuzzAEAD = func() cipher.AEAD {
	b, _ := aes.NewCipher(bytes.Repeat([]byte{0x5a}, 32))
	a, _ := cipher.NewGCM(b)
	return a
}()

func fuzzOpen(id uint32) (cipher.AEAD, error) {
	if id != 7 {
		return nil, errors.New("no such key")
	}
	return fuzzAEAD, nil
}

func encryptedFrameOf(salt uint32, first uint64, t int64, recs ...engine.Record) []byte {
	f, _ := encodeBody(nil, recs, true)
	return sealEncryptedFrame(f, fuzzAEAD, 7, salt, first, t)
}

// FuzzDecodeFrame feeds arbitrary bytes to the frame decoder: it must never
// panic, and whatever it accepts must re-encode to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(frameOf(0, 1, engine.Record{Key: []byte("k"), Value: []byte("v")}))
	f.Add(frameOf(7, 1700000000000, engine.Record{}, engine.Record{Value: bytes.Repeat([]byte("x"), 300)}))
	f.Add(frameOf(1<<40, -5, engine.Record{Key: []byte("key")}, engine.Record{Key: []byte("a"), Value: []byte("b")}, engine.Record{}))
	torn := frameOf(3, 3, engine.Record{Value: []byte("torn")})
	f.Add(torn[:len(torn)-2])
	f.Add([]byte{})
	f.Add(make([]byte, 40))
	// Encrypted frames: intact, torn, and with a flipped ciphertext bit
	// whose CRC was made to hold again (only the tag can catch it).
	f.Add(encryptedFrameOf(1, 0, 1, engine.Record{Key: []byte("k"), Value: []byte("secret")}))
	f.Add(encryptedFrameOf(0xdeadbeef, 1<<33, 99, engine.Record{}, engine.Record{Key: []byte("a"), Value: bytes.Repeat([]byte("y"), 200)}))
	enc := encryptedFrameOf(2, 5, 5, engine.Record{Value: []byte("torn")})
	f.Add(enc[:len(enc)-1])
	forged := encryptedFrameOf(3, 9, 9, engine.Record{Value: []byte("forged")})
	forged[batchHeaderSize+cryptoHeaderSize] ^= 1
	h, _ := parseHeader(forged)
	crc := crc32.Checksum(forged[batchHeaderSize:h.Length], crcTable)
	binary.LittleEndian.PutUint32(forged[4:], crc32.Update(crc, crcTable, forged[8:batchHeaderSize]))
	f.Add(forged)
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		var recs []engine.Record
		h, err := decodeFrame(b, fuzzOpen, func(i int, k, v []byte) {
			recs = append(recs, engine.Record{Key: bytes.Clone(k), Value: bytes.Clone(v)})
		})
		if err != nil {
			return
		}
		if len(recs) != int(h.Count) {
			t.Fatalf("decoded %d records, header says %d", len(recs), h.Count)
		}
		var again []byte
		if h.Flags&flagEncrypted != 0 {
			salt := binary.LittleEndian.Uint32(in[batchHeaderSize+4:])
			again = encryptedFrameOf(salt, h.FirstOffset, h.Time, recs...)
		} else {
			again = frameOf(h.FirstOffset, h.Time, recs...)
		}
		if !bytes.Equal(again, in[:h.Length]) {
			t.Fatalf("accepted frame does not re-encode to itself")
		}
	})
}

// FuzzDecodeIndex feeds arbitrary bytes to the index decoder: it must never
// panic and what it returns must be ordered as the reader relies on.
func FuzzDecodeIndex(f *testing.F) {
	b := encodeIndexHeader(100)
	b = appendIndexEntry(b, indexEntry{Offset: 100, Pos: segmentHeaderSize, Time: 5})
	b = appendIndexEntry(b, indexEntry{Offset: 180, Pos: 70000, Time: 9})
	f.Add(b, uint64(100))
	f.Add(appendIndexFooter(b, indexFooter{Next: 200, Size: 90000, LastTime: 9}), uint64(100))
	f.Add(b[:len(b)-3], uint64(100))
	f.Add(encodeIndexHeader(0), uint64(0))
	f.Add([]byte("RNLINDX1"), uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, base uint64) {
		entries, footer, _ := decodeIndex(b, base)
		for i, e := range entries {
			if e.Offset < base || e.Pos < segmentHeaderSize {
				t.Fatalf("entry %+v out of range", e)
			}
			if i > 0 && (e.Offset <= entries[i-1].Offset || e.Pos <= entries[i-1].Pos || e.Time < entries[i-1].Time) {
				t.Fatalf("entries out of order: %+v then %+v", entries[i-1], e)
			}
		}
		if footer != nil && len(entries) > 0 {
			last := entries[len(entries)-1]
			if footer.Next <= last.Offset || footer.Size <= last.Pos {
				t.Fatalf("footer %+v before last entry %+v", *footer, last)
			}
		}
		_, _ = seekEntry(entries, base+10)
		_, _ = seekTime(entries, 7)
	})
}

// FuzzSegmentHeader checks the segment header decoder on arbitrary bytes.
func FuzzSegmentHeader(f *testing.F) {
	f.Add(encodeSegmentHeader(segmentHeader{Base: 42, Floor: 1700000000000}))
	f.Add(encodeSegmentHeader(segmentHeader{})[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeSegmentHeader(b)
		if err == nil && !bytes.Equal(encodeSegmentHeader(h), b[:segmentHeaderSize]) {
			t.Fatalf("accepted header does not re-encode to itself")
		}
	})
}
