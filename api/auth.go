package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
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

// queryCredentials are query parameter names that look like a credential,
// compared in lower case with everything but letters and digits left out
// (so "api_key", "API-Key" and "apikey" are one).
var queryCredentials = map[string]bool{
	"apikey": true, "key": true, "token": true, "accesstoken": true, "auth": true,
	"authorization": true, "xapikey": true, "bearer": true,
}

// keyInText finds an API key: the prefix and at least 40 characters of
// base64url, not inside a longer word (an id such as "msg_...").
var keyInText = regexp.MustCompile(`(^|[^A-Za-z0-9])` + KeyPrefix + `[A-Za-z0-9_-]{40,}`)

// credentialInQuery reports whether a raw query string holds a credential,
// however a proxy or server in front might read it: pairs split on "&" and
// on ";" (Go's url.ParseQuery drops pairs with ";", others split there),
// names and values unescaped until they no longer change (a double-encoded
// "api%255Fkey" is "api_key" to some hop), names compared without case or
// punctuation.
func credentialInQuery(raw string) bool {
	for _, pair := range strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' }) {
		name, value, _ := strings.Cut(pair, "=")
		for _, n := range unescapings(name) {
			if queryCredentials[credentialName(n)] || keyInText.MatchString(n) {
				return true
			}
		}
		for _, v := range unescapings(value) {
			if keyInText.MatchString(v) {
				return true
			}
		}
	}
	return keyInText.MatchString(raw)
}

// unescapings returns s and what it unescapes to, again and again, a few
// times: query (+ is a space) and path (+ is +) unescaping both.
func unescapings(s string) []string {
	out := []string{s}
	for cur := s; len(out) < 8; {
		next, err := url.QueryUnescape(cur)
		if err != nil {
			next, err = url.PathUnescape(cur)
		}
		if err != nil || next == cur {
			break
		}
		out = append(out, next)
		cur = next
	}
	return out
}

// credentialName is name in lower case with only its letters and digits.
func credentialName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// authenticate returns the request's API key. It refuses a key in the query
// string (400) before anything else: URLs are logged by proxies and
// servers, so such a key must be treated as leaked.
func (s *Server) authenticate(r *http.Request) (*simgate.APIKey, error) {
	if credentialInQuery(r.URL.RawQuery) {
		return nil, simgate.Errorf(simgate.CodeInvalid, "API keys are accepted only in the Authorization: Bearer header, never in the URL; revoke a key that was sent in one")
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, simgate.Errorf(simgate.CodeUnauthorized, "missing Authorization header: Bearer with an API key, or Basic with a key made for Twilio's clients")
	}
	var sum [sha256.Size]byte
	switch scheme, token, _ := strings.Cut(h, " "); {
	case strings.EqualFold(scheme, "Bearer") && strings.HasPrefix(token, KeyPrefix) && len(token) <= 256:
		sum = sha256.Sum256([]byte(token))
	case strings.EqualFold(scheme, "Basic"):
		var err error
		if sum, err = basicCredential(r); err != nil {
			return nil, err
		}
	default:
		return nil, simgate.Errorf(simgate.CodeUnauthorized, "the Authorization header must be \"Bearer sg_...\" or Basic with an account or API key SID and its secret")
	}
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
