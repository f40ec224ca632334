package auth

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Algorithm is the only signing algorithm accepted.
const Algorithm = "AWS4-HMAC-SHA256"

// terminator ends every credential scope.
const terminator = "aws4_request"

// timeFormat is the ISO 8601 basic format of X-Amz-Date.
const timeFormat = "20060102T150405Z"

// maxPresignExpiry is the longest X-Amz-Expires accepted: a week, as AWS.
const maxPresignExpiry = 7 * 24 * 60 * 60

// Credential is the parsed Credential parameter: an access key and the
// scope it signs for.
type Credential struct {
	AccessKeyID string
	Date        string // YYYYMMDD
	Region      string
	Service     string
	Terminator  string
}

// Scope is the credential scope as it appears in the string to sign.
func (c Credential) Scope() string {
	return c.Date + "/" + c.Region + "/" + c.Service + "/" + c.Terminator
}

// ParseCredential splits "AKID/date/region/service/aws4_request". Only the
// number of elements is checked here; their values are checked against
// the request by the Verifier.
func ParseCredential(s string) (Credential, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 5 {
		return Credential{}, incomplete("Credential must have exactly 5 slash-delimited elements, "+
			"e.g. keyid/date/region/service/term, got '"+s+"'", "malformed credential")
	}
	return Credential{parts[0], parts[1], parts[2], parts[3], parts[4]}, nil
}

// Signed is what a request claims about its signature, from the
// Authorization header or the presigned query.
type Signed struct {
	Credential Credential
	// SignedHeaders are the header names, lower case, in the order given.
	SignedHeaders []string
	// signedHeadersRaw is the list as sent, which the canonical request
	// repeats.
	signedHeadersRaw string
	Signature        string
	// Presigned is set for query-string authentication.
	Presigned bool
	// Date is X-Amz-Date (or Date); Expires is X-Amz-Expires in seconds,
	// presigned requests only.
	Date    time.Time
	dateRaw string
	Expires int64
	// SecurityToken is X-Amz-Security-Token, empty without one.
	SecurityToken string
}

// ParseAuthorization parses an Authorization header value. Missing parts
// give Kinesis' IncompleteSignatureException naming each one; the date
// comes from the request headers (hasDate tells whether it has one).
func ParseAuthorization(h string, hasDate bool) (Signed, error) {
	var s Signed
	alg, rest, _ := strings.Cut(h, " ")
	var cred, signed, sig string
	var have [3]bool
	if alg == Algorithm {
		for _, kv := range strings.Split(rest, ",") {
			kv = strings.TrimSpace(kv)
			if kv == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return s, incomplete("'"+kv+"' not a valid key=value pair (missing equal-sign) in Authorization header: '"+h+"'.",
					"malformed Authorization header")
			}
			switch k {
			case "Credential":
				cred, have[0] = v, true
			case "SignedHeaders":
				signed, have[1] = v, true
			case "Signature":
				sig, have[2] = v, true
			}
		}
	}
	var msg strings.Builder
	if !have[0] {
		msg.WriteString("Authorization header requires 'Credential' parameter. ")
	}
	if !have[2] {
		msg.WriteString("Authorization header requires 'Signature' parameter. ")
	}
	if !have[1] {
		msg.WriteString("Authorization header requires 'SignedHeaders' parameter. ")
	}
	if !hasDate {
		msg.WriteString("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ")
	}
	if msg.Len() > 0 {
		msg.WriteString("Authorization=" + h)
		return s, incomplete(msg.String(), "incomplete Authorization header")
	}
	c, err := ParseCredential(cred)
	if err != nil {
		return s, err
	}
	s.Credential = c
	s.signedHeadersRaw = signed
	s.SignedHeaders = strings.Split(signed, ";")
	s.Signature = sig
	return s, nil
}

// presignParams are the query parameters of a presigned request, in the
// order AWS names the missing ones.
var presignParams = [...]string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date"}

// IsPresigned reports whether a query string carries SigV4 parameters.
func IsPresigned(q url.Values) bool {
	for _, p := range presignParams {
		if _, ok := q[p]; ok {
			return true
		}
	}
	return false
}

// ParsePresigned parses the SigV4 parameters of a presigned query.
func ParsePresigned(q url.Values) (Signed, error) {
	var s Signed
	var msg strings.Builder
	for _, p := range presignParams {
		if q.Get(p) == "" {
			msg.WriteString("AWS query-string parameters must include '" + p + "'. ")
		}
	}
	if msg.Len() > 0 {
		msg.WriteString("Re-examine the query-string parameters.")
		return s, incomplete(msg.String(), "incomplete presigned query")
	}
	if alg := q.Get("X-Amz-Algorithm"); alg != Algorithm {
		return s, incomplete("Unsupported AWS 'algorithm': '"+alg+"'", "unsupported algorithm")
	}
	c, err := ParseCredential(q.Get("X-Amz-Credential"))
	if err != nil {
		return s, err
	}
	s.Credential = c
	s.signedHeadersRaw = q.Get("X-Amz-SignedHeaders")
	s.SignedHeaders = strings.Split(s.signedHeadersRaw, ";")
	s.Signature = q.Get("X-Amz-Signature")
	s.Presigned = true
	s.SecurityToken = q.Get("X-Amz-Security-Token")
	d, err := parseDate(q.Get("X-Amz-Date"))
	if err != nil {
		return s, err
	}
	s.Date, s.dateRaw = d, q.Get("X-Amz-Date")
	s.Expires = 900 // the SDKs' default when none is given
	if e := q.Get("X-Amz-Expires"); e != "" {
		n, perr := strconv.ParseInt(e, 10, 64)
		if perr != nil || n < 0 {
			return s, incomplete("X-Amz-Expires should be a number", "bad X-Amz-Expires")
		}
		if n > maxPresignExpiry {
			return s, invalid("X-Amz-Expires must be less than a week (in seconds) that is 604800", "X-Amz-Expires too long")
		}
		s.Expires = n
	}
	return s, nil
}

// parseDate parses X-Amz-Date's basic ISO 8601 form.
func parseDate(v string) (time.Time, error) {
	t, err := time.Parse(timeFormat, v)
	if err != nil {
		return time.Time{}, incomplete("Date must be in ISO-8601 'basic format'. Got '"+v+"'. "+
			"See http://en.wikipedia.org/wiki/ISO_8601", "bad date")
	}
	return t, nil
}

// parseHTTPDate parses the Date header, the fallback for X-Amz-Date.
func parseHTTPDate(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC1123, v)
	if err != nil {
		if t2, err2 := time.Parse(timeFormat, v); err2 == nil {
			return t2, nil
		}
		return time.Time{}, incomplete("Date must be in ISO-8601 'basic format'. Got '"+v+"'. "+
			"See http://en.wikipedia.org/wiki/ISO_8601", "bad date")
	}
	return t.UTC(), nil
}
