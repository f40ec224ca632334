package delivery

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
)

// compress encodes body in format. name is the name of the entry a ZIP
// archive holds and at its time; the same input always gives the same
// bytes, so that a batch written again is the same object.
func compress(format string, body []byte, name string, at time.Time) ([]byte, error) {
	switch format {
	case "", "UNCOMPRESSED":
		return body, nil
	case "GZIP":
		var b bytes.Buffer
		w := gzip.NewWriter(&b) // no name, no time: deterministic
		if _, err := w.Write(body); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	case "ZIP":
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: at.UTC()})
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(body); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	case "Snappy":
		// The framed format (snappy's framing_format.txt), which readers
		// of .snappy files expect.
		var b bytes.Buffer
		w := s2.NewWriter(&b, s2.WriterSnappyCompat(), s2.WriterConcurrency(1))
		if _, err := w.Write(body); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	case "HADOOP_SNAPPY":
		return hadoopSnappy(body), nil
	}
	return nil, fmt.Errorf("delivery: unknown compression format %q", format)
}

// hadoopBlock is the uncompressed size of one block of Hadoop's snappy
// codec (io.compression.codec.snappy.buffersize, 256 KiB).
const hadoopBlock = 256 << 10

// hadoopSnappy encodes body as Hadoop's BlockCompressorStream does with
// the snappy codec: per block, the uncompressed length (4 bytes, big
// endian), then one chunk: its compressed length and a raw snappy block.
func hadoopSnappy(body []byte) []byte {
	var out []byte
	for len(body) > 0 {
		n := min(len(body), hadoopBlock)
		enc := s2.EncodeSnappy(nil, body[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(n))
		out = binary.BigEndian.AppendUint32(out, uint32(len(enc)))
		out = append(out, enc...)
		body = body[n:]
	}
	return out
}
