package streams

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
)

// Tokens: shard iterators and ListShards NextTokens.
//
// Both are opaque to clients and tamper-evident: base64url (no padding) of
//
//	kind (1 byte) | payload | HMAC-SHA256(key, kind | payload) (32 bytes)
//
// where key is Options.IteratorKey. A shard iterator's payload is
//
//	issued (8 bytes, big-endian Unix ms) | shard index (4) | offset (8) |
//	len(stream name) (1) | stream name | len(stream id) (1) | stream id
//
// and a NextToken's payload is
//
//	issued (8) | filter type (1) | filter time (8, Unix ms) |
//	max results (4) | len(name) (1) | name | len(id) (1) | id |
//	len(last shard id) (1) | last shard id
//
// A name is at most 128 bytes and a stream id far less, so a shard iterator
// stays under 280 characters, well within Kinesis' 512.
const (
	tokenIterator  byte = 1
	tokenNextToken byte = 2
	macSize             = sha256.Size
)

// maxTokenLen bounds what the decoders look at (Kinesis caps iterators at 512
// characters; NextTokens at 1 MiB, ours are far smaller).
const maxTokenLen = 1024

type tokenSigner struct{ key []byte }

func (t tokenSigner) seal(kind byte, payload []byte) string {
	buf := make([]byte, 0, 1+len(payload)+macSize)
	buf = append(buf, kind)
	buf = append(buf, payload...)
	m := hmac.New(sha256.New, t.key)
	m.Write(buf)
	buf = m.Sum(buf)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// open verifies s and returns its payload, or false.
func (t tokenSigner) open(kind byte, s string) ([]byte, bool) {
	if len(s) == 0 || len(s) > maxTokenLen {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) < 1+macSize || raw[0] != kind {
		return nil, false
	}
	body, mac := raw[:len(raw)-macSize], raw[len(raw)-macSize:]
	m := hmac.New(sha256.New, t.key)
	m.Write(body)
	if !hmac.Equal(m.Sum(nil), mac) {
		return nil, false
	}
	return body[1:], true
}

// iterator is the decoded content of a shard iterator.
type iterator struct {
	issued   int64 // Unix ms
	stream   string
	streamID string
	shard    uint32
	offset   uint64 // next offset to read
}

func (t tokenSigner) encodeIterator(it iterator) string {
	p := make([]byte, 0, 8+4+8+2+len(it.stream)+len(it.streamID))
	p = binary.BigEndian.AppendUint64(p, uint64(it.issued))
	p = binary.BigEndian.AppendUint32(p, it.shard)
	p = binary.BigEndian.AppendUint64(p, it.offset)
	p = appendShortString(p, it.stream)
	p = appendShortString(p, it.streamID)
	return t.seal(tokenIterator, p)
}

func (t tokenSigner) decodeIterator(s string) (iterator, bool) {
	p, ok := t.open(tokenIterator, s)
	if !ok || len(p) < 20 {
		return iterator{}, false
	}
	var it iterator
	it.issued = int64(binary.BigEndian.Uint64(p))
	it.shard = binary.BigEndian.Uint32(p[8:])
	it.offset = binary.BigEndian.Uint64(p[12:])
	p = p[20:]
	if it.stream, p, ok = readShortString(p); !ok {
		return iterator{}, false
	}
	if it.streamID, p, ok = readShortString(p); !ok || len(p) != 0 {
		return iterator{}, false
	}
	return it, true
}

// pageToken is the decoded content of a ListShards NextToken.
type pageToken struct {
	issued     int64
	filter     byte  // index into shardFilterTypes, 0 none
	filterTime int64 // Unix ms, for the timestamp filters
	maxResults int32
	stream     string
	streamID   string
	after      string // last shard id returned
}

func (t tokenSigner) encodePage(pt pageToken) string {
	p := make([]byte, 0, 32+len(pt.stream)+len(pt.streamID)+len(pt.after))
	p = binary.BigEndian.AppendUint64(p, uint64(pt.issued))
	p = append(p, pt.filter)
	p = binary.BigEndian.AppendUint64(p, uint64(pt.filterTime))
	p = binary.BigEndian.AppendUint32(p, uint32(pt.maxResults))
	p = appendShortString(p, pt.stream)
	p = appendShortString(p, pt.streamID)
	p = appendShortString(p, pt.after)
	return t.seal(tokenNextToken, p)
}

func (t tokenSigner) decodePage(s string) (pageToken, bool) {
	p, ok := t.open(tokenNextToken, s)
	if !ok || len(p) < 21 {
		return pageToken{}, false
	}
	var pt pageToken
	pt.issued = int64(binary.BigEndian.Uint64(p))
	pt.filter = p[8]
	pt.filterTime = int64(binary.BigEndian.Uint64(p[9:]))
	pt.maxResults = int32(binary.BigEndian.Uint32(p[17:]))
	p = p[21:]
	if pt.stream, p, ok = readShortString(p); !ok {
		return pageToken{}, false
	}
	if pt.streamID, p, ok = readShortString(p); !ok {
		return pageToken{}, false
	}
	if pt.after, p, ok = readShortString(p); !ok || len(p) != 0 {
		return pageToken{}, false
	}
	return pt, true
}

func appendShortString(b []byte, s string) []byte {
	if len(s) > 255 {
		s = s[:255]
	}
	b = append(b, byte(len(s)))
	return append(b, s...)
}

func readShortString(p []byte) (string, []byte, bool) {
	if len(p) < 1 || len(p) < 1+int(p[0]) {
		return "", nil, false
	}
	n := int(p[0])
	return string(p[1 : 1+n]), p[1+n:], true
}
