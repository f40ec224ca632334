package bench

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"strconv"

	"github.com/runnel/runnel/internal/b64"
)

// headerSize is the size of the header every record payload starts with; see
// the package documentation for its layout.
const headerSize = 36

const payloadVersion = 1

var (
	// errNotBench reports a payload that does not start with this tool's
	// header (too short, wrong magic or version).
	errNotBench = errors.New("bench: not a bench record")
	// errChecksum reports a payload whose checksum does not match.
	errChecksum = errors.New("bench: checksum mismatch")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is the decoded fixed part of a record payload.
type header struct {
	Run      uint32
	Producer uint32
	Seq      uint64
	Sent     int64 // Unix nanoseconds of the first send attempt
	Key      uint32
}

// sealRecord writes h into the first headerSize bytes of b and the checksum
// over the whole of b; the body (b[headerSize:]) must already be in place.
func sealRecord(b []byte, h header) {
	b[0], b[1], b[2], b[3] = 'R', 'B', payloadVersion, 0
	binary.BigEndian.PutUint32(b[4:], h.Run)
	binary.BigEndian.PutUint32(b[8:], h.Producer)
	binary.BigEndian.PutUint64(b[12:], h.Seq)
	binary.BigEndian.PutUint64(b[20:], uint64(h.Sent))
	binary.BigEndian.PutUint32(b[28:], h.Key)
	binary.BigEndian.PutUint32(b[32:], recordChecksum(b))
}

func recordChecksum(b []byte) uint32 {
	c := crc32.Update(0, castagnoli, b[:32])
	return crc32.Update(c, castagnoli, b[headerSize:])
}

// decodeRecord parses and checks the header of a payload. It returns
// errNotBench when b is not a bench record at all and errChecksum when it
// looks like one but its content does not match its checksum. The caller
// checks the run id. decodeRecord does not retain b.
func decodeRecord(b []byte) (header, error) {
	if len(b) < headerSize || b[0] != 'R' || b[1] != 'B' || b[2] != payloadVersion {
		return header{}, errNotBench
	}
	if binary.BigEndian.Uint32(b[32:]) != recordChecksum(b) {
		return header{}, errChecksum
	}
	return header{
		Run:      binary.BigEndian.Uint32(b[4:]),
		Producer: binary.BigEndian.Uint32(b[8:]),
		Seq:      binary.BigEndian.Uint64(b[12:]),
		Sent:     int64(binary.BigEndian.Uint64(b[20:])),
		Key:      binary.BigEndian.Uint32(b[28:]),
	}, nil
}

// Shape names the kind of body a record carries after its header.
type Shape string

// The record shapes. They matter to a server only through their size and
// compressibility, and to a reader of a dumped stream through realism.
const (
	// ShapeRandom is uniformly random bytes (incompressible).
	ShapeRandom Shape = "random"
	// ShapeClickstream is a JSON web/app event (page view, click, purchase).
	ShapeClickstream Shape = "clickstream"
	// ShapeIoT is a small JSON sensor reading.
	ShapeIoT Shape = "iot"
	// ShapeLogs is application log lines in a common text format.
	ShapeLogs Shape = "logs"
)

func (s Shape) valid() bool {
	switch s {
	case ShapeRandom, ShapeClickstream, ShapeIoT, ShapeLogs:
		return true
	}
	return false
}

// bodyWriter builds record bodies for one producer. Not safe for concurrent
// use.
type bodyWriter struct {
	shape Shape
	rng   *rand.Rand
	noise []byte // random printable bytes used as padding and random bodies

	// noise64 is the standard base64 encoding of noise, made on first use;
	// see encodeData.
	noise64 []byte
}

func newBodyWriter(shape Shape, rng *rand.Rand) *bodyWriter {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
	noise := make([]byte, 64<<10)
	for i := range noise {
		if shape == ShapeRandom {
			noise[i] = byte(rng.Uint32())
		} else {
			noise[i] = alphabet[rng.IntN(len(alphabet))]
		}
	}
	return &bodyWriter{shape: shape, rng: rng, noise: noise}
}

// fill writes a body of exactly len(b) bytes into b. key is the record's
// partition key, now the send time in Unix nanoseconds. A random body is
// one run of the noise: fill returns its offset there, a multiple of 3
// (see encodeData); it returns -1 for any other body.
func (w *bodyWriter) fill(b []byte, key string, seq uint64, now int64) int {
	n := len(b)
	if n == 0 {
		return -1
	}
	var out []byte
	switch w.shape {
	case ShapeClickstream:
		out = w.clickstream(b[:0:n], key, seq, now, n)
	case ShapeIoT:
		out = w.iot(b[:0:n], key, seq, now, n)
	case ShapeLogs:
		out = w.logs(b[:0:n], key, seq, now, n)
	default:
		if n <= len(w.noise) {
			off := 3 * w.rng.IntN((len(w.noise)-n)/3+1)
			copy(b, w.noise[off:])
			return off
		}
		w.pad(b)
		return -1
	}
	// For sizes smaller than a shape's skeleton the appends outgrew b and
	// moved to a new array: keep what fits.
	if &out[0] != &b[0] {
		copy(b, out)
	}
	return -1
}

// The header's encoding ends on a whole base64 quantum, so that the body's
// encoding does not depend on the header.
const _ = -(headerSize % 3)

// encodeData appends the standard base64 encoding of a record's data to
// dst. When off is not negative, the record's body (data[headerSize:]) is
// the noise at off, as fill made it, and its encoding is mostly copied from
// the noise's, which is the same text because off is a multiple of 3: the
// load tool then spends little of the machine it shares with the server
// on base64.
func (w *bodyWriter) encodeData(dst, data []byte, off int) []byte {
	if off < 0 || len(data) < headerSize {
		return b64.AppendEncode(dst, data)
	}
	if w.noise64 == nil {
		w.noise64 = b64.AppendEncode(nil, w.noise)
	}
	body := data[headerSize:]
	whole := len(body) / 3 * 3
	dst = b64.AppendEncode(dst, data[:headerSize])
	dst = append(dst, w.noise64[off/3*4:(off+whole)/3*4]...)
	return b64.AppendEncode(dst, body[whole:])
}

// pad fills b with noise taken at a random offset.
func (w *bodyWriter) pad(b []byte) {
	for len(b) > 0 {
		off := w.rng.IntN(len(w.noise))
		k := copy(b, w.noise[off:])
		b = b[k:]
	}
}

// jsonPad appends `,"pad":"...."}` so that the result is exactly n bytes long
// (or closes the object if there is no room for padding).
func (w *bodyWriter) jsonPad(out []byte, n int) []byte {
	const pre, post = `,"pad":"`, `"}`
	room := n - len(out) - len(pre) - len(post)
	if room < 0 {
		return append(out, '}')
	}
	out = append(out, pre...)
	start := len(out)
	out = append(out, make([]byte, room)...)
	w.pad(out[start:])
	return append(out, post...)
}

var (
	clickEvents = []string{"page_view", "page_view", "page_view", "click", "click", "scroll", "add_to_cart", "search", "purchase"}
	clickPaths  = []string{"/", "/products", "/products/", "/cart", "/checkout", "/search?q=", "/account", "/blog/"}
	userAgents  = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
	}
	logLevels   = []string{"INFO", "INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"}
	logMethods  = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	logStatuses = []int{200, 200, 200, 200, 201, 204, 301, 400, 404, 500, 503}
)

func (w *bodyWriter) clickstream(out []byte, key string, seq uint64, now int64, n int) []byte {
	r := w.rng
	out = append(out, `{"event":"`...)
	out = append(out, clickEvents[r.IntN(len(clickEvents))]...)
	out = append(out, `","user_id":"`...)
	out = append(out, key...)
	out = append(out, `","session_id":"`...)
	out = strconv.AppendUint(out, r.Uint64()>>16, 36)
	out = append(out, `","seq":`...)
	out = strconv.AppendUint(out, seq, 10)
	out = append(out, `,"ts":`...)
	out = strconv.AppendInt(out, now/1e6, 10)
	out = append(out, `,"url":"https://shop.example.com`...)
	out = append(out, clickPaths[r.IntN(len(clickPaths))]...)
	out = strconv.AppendInt(out, int64(r.IntN(100000)), 10)
	out = append(out, `","referrer":"https://www.example.org/","user_agent":"`...)
	out = append(out, userAgents[r.IntN(len(userAgents))]...)
	out = append(out, `","geo":{"country":"`...)
	out = append(out, "DEFRUSGBJPBRIN"[2*r.IntN(7):][:2]...)
	out = append(out, `","city_id":`...)
	out = strconv.AppendInt(out, int64(r.IntN(50000)), 10)
	out = append(out, `},"viewport":{"w":`...)
	out = strconv.AppendInt(out, int64(320+r.IntN(1600)), 10)
	out = append(out, `,"h":`...)
	out = strconv.AppendInt(out, int64(480+r.IntN(900)), 10)
	out = append(out, '}')
	return w.jsonPad(out, n)
}

func (w *bodyWriter) iot(out []byte, key string, seq uint64, now int64, n int) []byte {
	r := w.rng
	out = append(out, `{"device_id":"`...)
	out = append(out, key...)
	out = append(out, `","ts":`...)
	out = strconv.AppendInt(out, now/1e6, 10)
	out = append(out, `,"seq":`...)
	out = strconv.AppendUint(out, seq, 10)
	out = append(out, `,"temp_c":`...)
	out = strconv.AppendFloat(out, 15+r.Float64()*15, 'f', 2, 64)
	out = append(out, `,"humidity":`...)
	out = strconv.AppendFloat(out, 30+r.Float64()*40, 'f', 1, 64)
	out = append(out, `,"battery_v":`...)
	out = strconv.AppendFloat(out, 3.3+r.Float64()*0.9, 'f', 2, 64)
	return w.jsonPad(out, n)
}

func (w *bodyWriter) logs(out []byte, key string, seq uint64, now int64, n int) []byte {
	r := w.rng
	for len(out) < n {
		out = appendTimestamp(out, now)
		out = append(out, ' ')
		out = append(out, logLevels[r.IntN(len(logLevels))]...)
		out = append(out, " ["...)
		out = append(out, key...)
		out = append(out, "] req="...)
		out = strconv.AppendUint(out, seq, 16)
		out = append(out, '-')
		out = strconv.AppendUint(out, uint64(r.Uint32()), 16)
		out = append(out, ' ')
		out = append(out, logMethods[r.IntN(len(logMethods))]...)
		out = append(out, " /api/v2/orders/"...)
		out = strconv.AppendInt(out, int64(r.IntN(1000000)), 10)
		out = append(out, " status="...)
		out = strconv.AppendInt(out, int64(logStatuses[r.IntN(len(logStatuses))]), 10)
		out = append(out, " duration_ms="...)
		out = strconv.AppendInt(out, int64(r.ExpFloat64()*20), 10)
		out = append(out, " msg=\"request handled\" trace="...)
		start := len(out)
		out = append(out, make([]byte, 16+r.IntN(48))...)
		w.pad(out[start:])
		out = append(out, '\n')
	}
	return out[:n]
}

// appendTimestamp appends t (Unix nanoseconds) as an RFC 3339 UTC time with
// milliseconds, without the cost of time.Format.
func appendTimestamp(out []byte, t int64) []byte {
	secs := t / 1e9
	ms := (t % 1e9) / 1e6
	days := secs / 86400
	rem := secs % 86400
	y, m, d := civil(days)
	out = appendPadded(out, y, 4)
	out = append(out, '-')
	out = appendPadded(out, m, 2)
	out = append(out, '-')
	out = appendPadded(out, d, 2)
	out = append(out, 'T')
	out = appendPadded(out, rem/3600, 2)
	out = append(out, ':')
	out = appendPadded(out, rem%3600/60, 2)
	out = append(out, ':')
	out = appendPadded(out, rem%60, 2)
	out = append(out, '.')
	out = appendPadded(out, ms, 3)
	return append(out, 'Z')
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's algorithm).
func civil(z int64) (y, m, d int64) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func appendPadded(out []byte, v int64, width int) []byte {
	var buf [20]byte
	s := strconv.AppendInt(buf[:0], v, 10)
	for i := len(s); i < width; i++ {
		out = append(out, '0')
	}
	return append(out, s...)
}
