package simgate

import (
	"crypto/sha256"
	"fmt"
	"slices"
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
	// Services limits the key to the verifications (and services) of
	// these services; empty: every service. Only keys whose scopes are
	// verify and send may be limited (StoredServices says why).
	Services []string
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

// StoredServices checks the service limit of k before a store keeps it,
// and returns it as the stores keep it (comma-separated, as
// ParseServices reads it; "" for none): service ids (IsServiceID), each
// once, and only on a key whose scopes are verify and send. The read and
// admin scopes see every message, modem and verification's SMS whatever
// the limit, and admin opens the console, so a limit on them would promise
// what the key does not keep. Whether the services exist is the store's to
// check. Its errors have CodeInvalid.
func (k *APIKey) StoredServices() (string, error) {
	if len(k.Services) == 0 {
		return "", nil
	}
	for _, sc := range k.Scopes {
		if sc != ScopeVerify && sc != ScopeSend {
			return "", Errorf(CodeInvalid, "an api key limited to services may have only the verify and send scopes, not %s: "+
				"read and admin see every message and modem whatever the limit", sc)
		}
	}
	for i, id := range k.Services {
		if !IsServiceID(id) {
			return "", Errorf(CodeInvalid, "services[%d] is %q, not a service id (\"VA\" and 32 lowercase hex digits)", i, id)
		} else if slices.Contains(k.Services[:i], id) {
			return "", Errorf(CodeInvalid, "services[%d]: service %s is named twice", i, id)
		}
	}
	return strings.Join(k.Services, ","), nil
}

// ParseServices reads a service limit as the stores keep it
// (StoredServices): nil for "".
func ParseServices(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// AllowsService reports whether the key may use the service id: any
// service when it is not limited (ServiceAllowed).
func (k *APIKey) AllowsService(id string) bool { return ServiceAllowed(k.Services, id) }

// ServiceFor returns the service that a request of k is about: the one it
// names, or, when it names none, the default service for a key that is
// not limited to services and the one service of a key limited to one. A
// service that is not the key's is CodeNotFound, as one that does not
// exist is (the store's answer), so that a key cannot learn which services
// exist; one not written as an id is CodeInvalid, and so is naming none
// with a key limited to several.
func (k *APIKey) ServiceFor(named string) (string, error) {
	switch {
	case named != "" && !IsServiceID(named):
		return "", Errorf(CodeInvalid, "service must be a service id: \"VA\" and 32 lowercase hex digits")
	case named != "" && !k.AllowsService(named):
		return "", ServiceNotFound(named)
	case named != "":
		return named, nil
	case len(k.Services) == 0:
		return DefaultServiceID, nil
	case len(k.Services) == 1:
		return k.Services[0], nil
	}
	return "", Errorf(CodeInvalid, "service is required: this API key is limited to the services %s", strings.Join(k.Services, ", "))
}

// ServiceNotFound is the error for a service that does not exist or that
// the caller may not use: the same for both, so that a caller cannot tell
// them apart.
func ServiceNotFound(id string) *Error {
	return Errorf(CodeNotFound, "service %s not found", id)
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
