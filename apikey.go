package simgate

import (
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

// Has reports whether the key carries scope s. The admin scope implies all.
func (k *APIKey) Has(s Scope) bool {
	for _, have := range k.Scopes {
		if have == s || have == ScopeAdmin {
			return true
		}
	}
	return false
}
