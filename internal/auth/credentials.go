package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"time"
)

// Principal is the identity a request was signed as. The policy evaluator
// (package iam) reads it from the request's context with FromContext.
type Principal struct {
	// AccessKeyID is the key the request was signed with.
	AccessKeyID string
	// UserName is the user's name in the credentials file.
	UserName string
	// ARN is the principal's ARN, arn:aws:iam::<account>:user/<name>
	// unless the file says otherwise.
	ARN string
	// Account is the 12-digit account the principal belongs to.
	Account string
	// Policies are the user's identity policy documents, raw JSON as in
	// the file. Owned by the credentials set: not to be modified.
	Policies [][]byte
	// Temporary is set for temporary credentials (a session token).
	Temporary bool
	// Unverified is set when no credentials are configured: the key is
	// whatever the client sent and the signature was not checked.
	Unverified bool
}

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal a request was authenticated as, nil
// when the request was not authenticated.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// key is one access key of the credentials set.
type key struct {
	secret       string
	sessionToken string    // empty for long-term keys
	expires      time.Time // zero for long-term keys
	principal    *Principal

	// signing caches the last derived signing key: clients sign all day
	// with one scope.
	signing atomic.Pointer[derivedKey]
}

// derivedKey is a signing key and the scope it was derived for.
type derivedKey struct {
	scope string
	key   []byte
}

// signingKey derives (or takes from the cache) the key for a scope, c's.
func (k *key) signingKey(scope string, c Credential) []byte {
	if d := k.signing.Load(); d != nil && d.scope == scope {
		return d.key
	}
	d := &derivedKey{scope: scope, key: deriveKey(k.secret, c.Date, c.Region, c.Service)}
	k.signing.Store(d)
	return d.key
}

// Credentials is an immutable set of users and their keys, as read from a
// credentials file.
type Credentials struct {
	keys  map[string]*key
	users int
}

// Users is the number of users in the set.
func (c *Credentials) Users() int { return c.users }

// Keys is the number of access keys in the set.
func (c *Credentials) Keys() int { return len(c.keys) }

// The credentials file's JSON form (docs/SECURITY.md).
type fileJSON struct {
	Users []userJSON `json:"users"`
}

type userJSON struct {
	Name     string            `json:"name"`
	Account  string            `json:"account"`
	ARN      string            `json:"arn"`
	Keys     []keyJSON         `json:"keys"`
	Policies []json.RawMessage `json:"policies"`
}

type keyJSON struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	SessionToken    string `json:"session_token"`
	Expiration      string `json:"expiration"`
}

var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	keyIDRE   = regexp.MustCompile(`^[A-Za-z0-9]{3,128}$`)
	userRE    = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
)

// LoadCredentials reads a credentials file. Users without an account take
// defaultAccount.
func LoadCredentials(path, defaultAccount string) (*Credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read credentials: %w", err)
	}
	c, err := ParseCredentials(data, defaultAccount)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseCredentials parses a credentials file's content. Every problem is
// reported with the user and key it concerns, so that an operator can fix
// the file.
func ParseCredentials(data []byte, defaultAccount string) (*Credentials, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileJSON
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("auth: credentials file is not valid: %w", err)
	}
	if dec.More() {
		return nil, errors.New("auth: credentials file has data after its JSON object")
	}
	c := &Credentials{keys: map[string]*key{}, users: len(f.Users)}
	names := map[string]bool{}
	for i, u := range f.Users {
		where := fmt.Sprintf("users[%d]", i)
		if u.Name != "" {
			where += " (" + u.Name + ")"
		}
		if !userRE.MatchString(u.Name) {
			return nil, fmt.Errorf("auth: %s: name must be 1-64 letters, digits or +=,.@_-", where)
		}
		if names[u.Name] {
			return nil, fmt.Errorf("auth: %s: user named twice", where)
		}
		names[u.Name] = true
		account := u.Account
		if account == "" {
			account = defaultAccount
		}
		if !accountRE.MatchString(account) {
			return nil, fmt.Errorf("auth: %s: account %q is not 12 digits", where, account)
		}
		arn := u.ARN
		if arn == "" {
			arn = "arn:aws:iam::" + account + ":user/" + u.Name
		} else if !strings.HasPrefix(arn, "arn:aws:") || strings.Count(arn, ":") < 5 {
			return nil, fmt.Errorf("auth: %s: arn %q is not an ARN (arn:aws:iam::<account>:user/<name>)", where, arn)
		}
		p := &Principal{UserName: u.Name, ARN: arn, Account: account}
		for j, doc := range u.Policies {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(doc, &obj); err != nil {
				return nil, fmt.Errorf("auth: %s: policies[%d] is not a JSON object: %w", where, j, err)
			}
			p.Policies = append(p.Policies, []byte(doc))
		}
		if len(u.Keys) == 0 {
			return nil, fmt.Errorf("auth: %s: no keys", where)
		}
		for j, k := range u.Keys {
			kw := fmt.Sprintf("%s keys[%d]", where, j)
			if !keyIDRE.MatchString(k.AccessKeyID) {
				return nil, fmt.Errorf("auth: %s: access_key_id must be 3-128 letters and digits", kw)
			}
			if k.SecretAccessKey == "" {
				return nil, fmt.Errorf("auth: %s: secret_access_key is empty", kw)
			}
			if _, dup := c.keys[k.AccessKeyID]; dup {
				return nil, fmt.Errorf("auth: %s: access key %s appears twice", kw, k.AccessKeyID)
			}
			nk := &key{secret: k.SecretAccessKey, sessionToken: k.SessionToken}
			if k.Expiration != "" {
				t, err := time.Parse(time.RFC3339, k.Expiration)
				if err != nil {
					return nil, fmt.Errorf("auth: %s: expiration %q: use RFC 3339, e.g. 2026-12-31T23:59:59Z", kw, k.Expiration)
				}
				nk.expires = t
			}
			if (k.SessionToken == "") != nk.expires.IsZero() {
				return nil, fmt.Errorf("auth: %s: temporary credentials need both session_token and expiration", kw)
			}
			kp := *p
			kp.AccessKeyID = k.AccessKeyID
			kp.Temporary = k.SessionToken != ""
			nk.principal = &kp
			c.keys[k.AccessKeyID] = nk
		}
	}
	return c, nil
}
