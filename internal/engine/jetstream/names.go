package jetstream

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// maxStreamName is the longest JetStream stream name the engine creates.
// nats-server refuses names longer than 255 bytes; a log whose escaped name
// would not fit is named by a hash of its name instead (the name itself is
// kept in the stream's metadata either way).
const maxStreamName = 255

// escapeToken returns s with every byte outside [A-Za-z0-9-] written as '_'
// followed by two hex digits, so that the result is a valid JetStream stream
// name and a valid NATS subject token, and distinct names stay distinct.
func escapeToken(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "_%02X", c)
		}
	}
	return b.String()
}

// logNames are the JetStream names of one incarnation of a log. A log
// deleted and created again is a new stream with new subjects, so a handle
// to the old one finds nothing instead of the new one's records.
type logNames struct {
	id      string // the incarnation: a random id given by CreateLog
	stream  string // the JetStream stream
	subject string // the subject of each batch's last record while the log is open
	body    string // the subject of the other records of a batch ("" for subject)
	sealed  string // the subject the stream listens on once sealed (nobody publishes there)
	notify  string // the subject the stream republishes each stored message's headers to
}

func (e *Engine) names(log, id string) logNames {
	tok := escapeToken(log)
	stream := e.opts.Prefix + "_L_" + tok + "_" + id
	if len(stream) > maxStreamName {
		sum := sha256.Sum256([]byte(log))
		tok = "H" + hex.EncodeToString(sum[:])
		stream = e.opts.Prefix + "_L_" + tok + "_" + id
	}
	subj := strings.ToLower(e.opts.Prefix)
	n := logNames{
		id:      id,
		stream:  stream,
		subject: subj + ".log." + tok + "." + id,
		sealed:  subj + ".sealed." + tok + "." + id,
		notify:  subj + ".notify." + tok + "." + id,
	}
	if strings.HasSuffix(id, batchEnds) {
		n.body = n.subject + ".b"
	}
	return n
}

// batchEnds ends the incarnation id of a log whose batches end on its
// subject: their other records go to a subject of their own (body), so that
// the stream republishes one notice per batch rather than one per record,
// and the last message on subject is still the stream's last message (a
// batch is stored whole). Logs made before have every record on subject.
const batchEnds = "-e"

// Metadata keys are a path ("streams/orders", "leases/<id>/<app>/<shard>").
// In the KV bucket each '/' becomes a '.' so that a key's path segments are
// subject tokens (List filters by them); every other byte outside
// [A-Za-z0-9_-] is written as '=' and two hex digits, and an empty segment
// as a lone '=' (NATS tokens cannot be empty).

func encodeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = encodeSegment(s)
	}
	return strings.Join(segs, ".")
}

func encodeSegment(s string) string {
	if s == "" {
		return "="
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}

func decodeKey(k string) (string, error) {
	segs := strings.Split(k, ".")
	for i, s := range segs {
		if s == "=" {
			segs[i] = ""
			continue
		}
		var b strings.Builder
		for j := 0; j < len(s); j++ {
			if s[j] != '=' {
				b.WriteByte(s[j])
				continue
			}
			if j+3 > len(s) {
				return "", fmt.Errorf("jetstream: malformed metadata key %q", k)
			}
			v, err := hex.DecodeString(s[j+1 : j+3])
			if err != nil {
				return "", fmt.Errorf("jetstream: malformed metadata key %q", k)
			}
			b.WriteByte(v[0])
			j += 2
		}
		segs[i] = b.String()
	}
	return strings.Join(segs, "/"), nil
}

// subjects are the subjects the open log's stream listens on.
func (n logNames) subjects() []string {
	if n.body == "" {
		return []string{n.subject}
	}
	return []string{n.subject, n.body}
}
