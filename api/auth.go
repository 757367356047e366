package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/simgate/simgate"
)

// KeyPrefix starts every API key, so that leaked keys are easy to find
// (secret scanners) and to tell from other tokens.
const KeyPrefix = "sg_"

// NewAPIKey makes a key named name with the given scopes: "sg_" and 256
// random bits in base64url. It returns the key, to show once, and the record
// to store (store.CreateAPIKey), which holds only its SHA-256 and its first
// characters.
func NewAPIKey(name string, scopes []simgate.Scope) (key string, k *simgate.APIKey, err error) {
	if len(scopes) == 0 {
		return "", nil, simgate.Errorf(simgate.CodeInvalid, "an api key needs at least one scope")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	key = KeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(key))
	return key, &simgate.APIKey{
		Name:   name,
		Prefix: key[:len(KeyPrefix)+6],
		Hash:   sum[:],
		Scopes: append([]simgate.Scope(nil), scopes...),
	}, nil
}

type ctxKey int

const keyCtx ctxKey = iota

// apiKeyFrom returns the authenticated key of a request.
func apiKeyFrom(ctx context.Context) *simgate.APIKey {
	k, _ := ctx.Value(keyCtx).(*simgate.APIKey)
	return k
}

// queryCredentials are query parameters that look like a credential.
var queryCredentials = []string{"api_key", "apikey", "key", "token", "access_token", "auth"}

// authenticate returns the request's API key. It refuses a key in the query
// string (400) before anything else: URLs are logged by proxies and
// servers, so such a key must be treated as leaked.
func (s *Server) authenticate(r *http.Request) (*simgate.APIKey, error) {
	q := r.URL.Query()
	for name, vs := range q {
		for _, c := range queryCredentials {
			if strings.EqualFold(name, c) {
				return nil, simgate.Errorf(simgate.CodeInvalid, "API keys are accepted only in the Authorization: Bearer header, never in the URL; revoke a key that was sent in one")
			}
		}
		for _, v := range vs {
			if strings.HasPrefix(v, KeyPrefix) {
				return nil, simgate.Errorf(simgate.CodeInvalid, "API keys are accepted only in the Authorization: Bearer header, never in the URL; revoke a key that was sent in one")
			}
		}
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, simgate.Errorf(simgate.CodeUnauthorized, "missing Authorization: Bearer header")
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(token, KeyPrefix) || len(token) > 256 {
		return nil, simgate.Errorf(simgate.CodeUnauthorized, "the Authorization header must be \"Bearer sg_...\"")
	}
	sum := sha256.Sum256([]byte(token))
	k, err := s.opts.Keys.FindAPIKeyByHash(r.Context(), sum[:])
	if simgate.ErrorCode(err) == simgate.CodeNotFound {
		return nil, simgate.Errorf(simgate.CodeUnauthorized, "unknown or revoked API key")
	} else if err != nil {
		return nil, err
	}
	s.touch(r.Context(), k)
	return k, nil
}

// touch writes a key's last use at most once a minute.
func (s *Server) touch(ctx context.Context, k *simgate.APIKey) {
	now := s.opts.Now()
	s.touchMu.Lock()
	last, ok := s.touched[k.ID]
	if ok && now.Sub(last) < time.Minute {
		s.touchMu.Unlock()
		return
	}
	if len(s.touched) > 10_000 {
		clear(s.touched)
	}
	s.touched[k.ID] = now
	s.touchMu.Unlock()
	if err := s.opts.Keys.TouchAPIKey(ctx, k.ID); err != nil {
		s.log.Warn("cannot record api key use", "key", k.ID, "error", err)
	}
}
