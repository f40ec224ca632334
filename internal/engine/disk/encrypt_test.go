package disk

import (
	"bytes"
	"context"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/enginetest"
)

// dirContains reports the files under dir whose bytes contain needle.
func dirContains(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// TestEncryptedFramesHideRecords checks that no byte of an encrypted
// batch's records reaches the segment or index files, across segment rolls
// and a reopen (which recovers and re-indexes without the keys), while the
// plain batches stay plain.
func TestEncryptedFramesHideRecords(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	e := openTest(t, dir, opts)
	l := mustLog(t, e, "a")
	keys := enginetest.NewTestKeys(1)
	l.SetKeys(keys)
	ctx := context.Background()
	secret := func(i int) []byte { return []byte("top-secret-record-" + string(rune('A'+i%26))) }
	if _, err := l.Append(ctx, []engine.Record{{Key: []byte("pk"), Value: []byte("plain-record-visible")}}); err != nil {
		t.Fatal(err)
	}
	keys.Use(1)
	for i := range 200 { // several 4 KiB segments
		if _, err := l.Append(ctx, []engine.Record{{Key: []byte("secret-key-xyz"), Value: secret(i)}, {Value: secret(i + 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	if hits := dirContains(t, dir, []byte("top-secret-record")); len(hits) > 0 {
		t.Fatalf("plain text of encrypted records found in %v", hits)
	}
	if hits := dirContains(t, dir, []byte("secret-key-xyz")); len(hits) > 0 {
		t.Fatalf("plain text of encrypted keys found in %v", hits)
	}
	if hits := dirContains(t, dir, []byte("plain-record-visible")); len(hits) == 0 {
		t.Fatalf("plain record not found in the files: the search is broken")
	}
	// Reopen: recovery and index rebuilds work on ciphertext.
	e.Close()
	for _, p := range dirFiles(t, dir, ".idx") {
		os.Remove(p)
	}
	e = openTest(t, dir, opts)
	l = mustLog(t, e, "a")
	if _, err := l.Read(ctx, 1, 10, 1<<20); !errors.Is(err, engine.ErrNoKeys) {
		t.Fatalf("Read without keys after reopen: %v, want ErrNoKeys", err)
	}
	l.SetKeys(keys)
	var got []engine.StoredRecord
	for from := uint64(0); ; {
		page, err := l.Read(ctx, from, 37, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		from = page[len(page)-1].Offset + 1
	}
	if len(got) != 401 {
		t.Fatalf("read %d records, want 401", len(got))
	}
	for i, r := range got[1:] {
		if want := secret(i/2 + i%2); !bytes.Equal(r.Value, want) || r.KeyID != 1 {
			t.Fatalf("record %d = %q (key %d), want %q (key 1)", i+1, r.Value, r.KeyID, want)
		}
	}
}

func dirFiles(t *testing.T, dir, ext string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ext {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestEncryptedFrameDamage checks what happens to encrypted frames whose
// bytes change: an accidental flip fails the CRC and makes a hole, as for a
// plain frame; a change whose CRC was recomputed (on purpose) fails the GCM
// tag and the read; the wrong key fails it too.
func TestEncryptedFrameDamage(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (string, engine.Log, *enginetest.TestKeys, []frameInfo) {
		dir := t.TempDir()
		e := openTest(t, dir, DefaultOptions())
		l := mustLog(t, e, "a")
		keys := enginetest.NewTestKeys(2)
		keys.Use(1)
		l.SetKeys(keys)
		appendN(t, l, 9, 3)
		seg := filepath.Join(dir, "logs", "a", segmentName(0)+".seg")
		frames := segFrames(t, seg)
		if len(frames) != 3 {
			t.Fatalf("%d frames, want 3", len(frames))
		}
		return seg, l, keys, frames
	}
	patch := func(t *testing.T, seg string, fn func(b []byte)) {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		fn(b)
		if err := os.WriteFile(seg, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("FlippedBitIsHole", func(t *testing.T) {
		seg, l, _, frames := setup(t)
		patch(t, seg, func(b []byte) { b[frames[1].pos+frames[1].len-20] ^= 0x40 })
		got := readAll(t, l, 10)
		want := []uint64{0, 1, 2, 6, 7, 8}
		if len(got) != len(want) {
			t.Fatalf("read offsets %v, want %v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("read offsets %v, want %v", got, want)
			}
		}
	})

	t.Run("ForgedFrameFailsRead", func(t *testing.T) {
		seg, l, _, frames := setup(t)
		patch(t, seg, func(b []byte) {
			f := b[frames[1].pos : frames[1].pos+frames[1].len]
			f[batchHeaderSize+cryptoHeaderSize] ^= 1 // a ciphertext byte
			crc := crc32.Checksum(f[batchHeaderSize:], crcTable)
			binary.LittleEndian.PutUint32(f[4:], crc32.Update(crc, crcTable, f[8:batchHeaderSize]))
		})
		if _, err := l.Read(ctx, 0, 100, 1<<20); !errors.Is(err, engine.ErrDecrypt) {
			t.Fatalf("Read of a forged frame: %v, want ErrDecrypt", err)
		}
		if recs, err := l.Read(ctx, 0, 3, 1<<20); err != nil || len(recs) != 3 {
			t.Fatalf("Read of the intact frame before it: %d records, %v", len(recs), err)
		}
	})

	t.Run("ChangedTimeFailsRead", func(t *testing.T) {
		// The header is authenticated: a frame whose time and CRC
		// were rewritten does not decrypt.
		seg, l, _, frames := setup(t)
		patch(t, seg, func(b []byte) {
			f := b[frames[2].pos : frames[2].pos+frames[2].len]
			binary.LittleEndian.PutUint64(f[24:], binary.LittleEndian.Uint64(f[24:])+1) // the time
			crc := crc32.Checksum(f[batchHeaderSize:], crcTable)
			binary.LittleEndian.PutUint32(f[4:], crc32.Update(crc, crcTable, f[8:batchHeaderSize]))
		})
		if _, err := l.Read(ctx, 6, 100, 1<<20); !errors.Is(err, engine.ErrDecrypt) {
			t.Fatalf("Read of a frame with a changed time: %v, want ErrDecrypt", err)
		}
	})

	t.Run("WrongKeyFailsRead", func(t *testing.T) {
		_, l, _, _ := setup(t)
		wrong := enginetest.NewTestKeys(2)
		wrong.Use(1)
		other := &swappedKeys{TestKeys: wrong}
		l.SetKeys(other)
		if _, err := l.Read(ctx, 0, 100, 1<<20); !errors.Is(err, engine.ErrDecrypt) {
			t.Fatalf("Read with the wrong key: %v, want ErrDecrypt", err)
		}
	})
}

// swappedKeys answers OpenKey(1) with key 2.
type swappedKeys struct{ *enginetest.TestKeys }

func (k *swappedKeys) OpenKey(ctx context.Context, id uint32) (cipher.AEAD, error) {
	return k.TestKeys.OpenKey(ctx, id+1)
}

// BenchmarkFrame measures what encryption adds to building a batch's frame
// (encode, checksum, and for an encrypted frame AES-256-GCM) and to
// decoding it, per 500-record batch:
//
//	go test -run '^$' -bench Frame -count 10 ./internal/engine/disk/
func BenchmarkFrame(b *testing.B) {
	keys := enginetest.NewTestKeys(1)
	aead, _ := keys.OpenKey(context.Background(), 1)
	open := func(uint32) (cipher.AEAD, error) { return aead, nil }
	for _, size := range []int{100, 1024} {
		recs := make([]engine.Record, 500)
		for i := range recs {
			recs[i] = engine.Record{Key: []byte("partition-key"), Value: bytes.Repeat([]byte{byte(i)}, size)}
		}
		for _, enc := range []bool{false, true} {
			name := fmt.Sprintf("%s/%dB", map[bool]string{false: "plain", true: "encrypted"}[enc], size)
			b.Run("seal/"+name, func(b *testing.B) {
				b.SetBytes(int64(500 * size))
				b.ReportAllocs()
				var buf []byte
				for b.Loop() {
					f, crc := encodeBody(buf[:0], recs, enc)
					if enc {
						f = sealEncryptedFrame(f, aead, 1, 7, 1000, 1)
					} else {
						sealFrame(f, crc, 1000, 1)
					}
					buf = f
				}
			})
			b.Run("open/"+name, func(b *testing.B) {
				f, crc := encodeBody(nil, recs, enc)
				if enc {
					f = sealEncryptedFrame(f, aead, 1, 7, 1000, 1)
				} else {
					sealFrame(f, crc, 1000, 1)
				}
				work := make([]byte, len(f))
				b.SetBytes(int64(500 * size))
				b.ReportAllocs()
				for b.Loop() {
					copy(work, f) // decryption is in place
					if _, err := decodeFrame(work, open, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// FuzzReadDamagedEncryptedSegment damages a segment of encrypted frames at
// a fuzzed position with fuzzed bytes: opening and reading must not crash,
// and a read returns only records as written (decrypted intact) or fails;
// it never returns altered plain text.
func FuzzReadDamagedEncryptedSegment(f *testing.F) {
	f.Add(uint16(100), []byte{0xff})
	f.Add(uint16(0), make([]byte, 64))
	f.Add(uint16(2000), make([]byte, 4096))
	f.Add(uint16(90), encryptedFrameOf(1, 0, 1, engine.Record{Value: []byte("forged")}))
	f.Add(uint16(33), frameOf(0, 1, engine.Record{Value: []byte("forged")}))
	keys := enginetest.NewTestKeys(1)
	keys.Use(1)
	f.Fuzz(func(t *testing.T, at uint16, junk []byte) {
		dir := t.TempDir()
		opts := testOptions()
		opts.SegmentSize = 1 << 20
		opts.Durability = SyncInterval // Close syncs; no fsync per append
		e, err := Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		e.CreateLog(ctx, "d", engine.LogOptions{})
		l, _ := e.Log(ctx, "d")
		l.SetKeys(keys)
		appendN(t, l, 60, 3)
		e.Close()
		seg := filepath.Join(dir, "logs", "d", segmentName(0)+segmentExt)
		patchFile(t, seg, int64(at)%fileSize(t, seg), junk)
		e, err = Open(dir, opts)
		if err != nil {
			return // refusing a damaged store is allowed; crashing is not
		}
		defer e.Close()
		l, err = e.Log(ctx, "d")
		if err != nil {
			t.Fatal(err)
		}
		l.SetKeys(keys)
		from := uint64(0)
		for range 200 {
			recs, err := l.Read(ctx, from, 7, 1<<20)
			if err != nil || len(recs) == 0 {
				break
			}
			for _, r := range recs {
				// A plain frame forged in the junk (valid checksum) is
				// data like any other; encrypted ones must be as written.
				if r.Offset < from || !bytes.Equal(r.Value, val(r.Offset)) && !(r.KeyID == 0 && bytes.Contains(junk, r.Value)) {
					t.Fatalf("served record %d = %q (key %d, reading from %d)", r.Offset, r.Value, r.KeyID, from)
				}
				from = r.Offset + 1
			}
		}
		l.OffsetAt(ctx, 0)
		l.Info(ctx)
	})
}
