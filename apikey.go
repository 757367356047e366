package simgate

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"time"
)

// Scope is a permission an API key carries.
type Scope string

// Scopes.
const (
	ScopeVerify Scope = "verify" // create and check verifications
	ScopeSend   Scope = "send"   // send messages
	ScopeRead   Scope = "read"   // read messages, inbox, modems
	ScopeAdmin  Scope = "admin"  // modem control, keys, console
)

// ParseScopes parses a comma-separated scope list such as "verify,send".
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch Scope(f) {
		case ScopeVerify, ScopeSend, ScopeRead, ScopeAdmin:
			out = append(out, Scope(f))
		case "":
		default:
			return nil, fmt.Errorf("unknown scope %q (want verify, send, read or admin)", f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scope given (want verify, send, read or admin)")
	}
	return out, nil
}

// APIKey is a client credential. Only the SHA-256 of the key is stored; the
// key itself is shown once, when it is created.
type APIKey struct {
	ID         string
	Name       string
	Prefix     string // the first characters of the key, to tell keys apart in lists
	Hash       []byte // SHA-256 of the whole key
	Scopes     []Scope
	CreatedAt  time.Time
	RevokedAt  time.Time // zero while valid
	LastUsedAt time.Time
}

// StoredScopes checks k before a store keeps it, and returns its scopes as
// the stores keep them (comma-separated, as ParseScopes reads them): the
// hash must be a SHA-256 and the scopes known, one at least. Its errors
// have CodeInvalid.
func (k *APIKey) StoredScopes() (string, error) {
	if len(k.Hash) != sha256.Size {
		return "", Errorf(CodeInvalid, "api key hash is %d bytes, want a SHA-256 (%d)", len(k.Hash), sha256.Size)
	} else if len(k.Scopes) == 0 {
		return "", Errorf(CodeInvalid, "api key has no scope")
	}
	s := make([]string, len(k.Scopes))
	for i, sc := range k.Scopes {
		s[i] = string(sc)
	}
	joined := strings.Join(s, ",")
	if _, err := ParseScopes(joined); err != nil {
		return "", Errorf(CodeInvalid, "%v", err)
	}
	return joined, nil
}

// Has reports whether the key carries scope s. The admin scope implies all.
func (k *APIKey) Has(s Scope) bool {
	for _, have := range k.Scopes {
		if have == s || have == ScopeAdmin {
			return true
		}
	}
	return false
}
