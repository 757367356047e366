package api_test

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/verify"
)

// servicesEnv is a server whose gateway sends to DE and AT.
func servicesEnv(t *testing.T) *env {
	return newEnv(t, envOpts{verify: func(o *verify.Options) { o.AllowedCountries = []string{"DE", "AT"} }})
}

// createService creates a service with an admin key and returns its id.
func (e *env) createService(admin string, body map[string]any) string {
	e.t.Helper()
	r := e.do("POST", "/v1/services", admin, body)
	wantStatus(e.t, r, http.StatusCreated)
	return r.json(e.t)["id"].(string)
}

// Services are created by admin keys only, with their settings checked
// and the errors naming the setting; they are shown as they apply (the
// gateway's settings where they set none), and a key limited to services
// lists and gets only those.
func TestServices(t *testing.T) {
	e := servicesEnv(t)
	admin := e.key(simgate.ScopeAdmin)
	r := e.do("POST", "/v1/services", admin, map[string]any{"friendly_name": "Shop", "code_length": 8, "ttl": "5m",
		"templates": map[string]string{"de": "Dein {app}-Code ist {code}.\nGib ihn nicht weiter."}, "allowed_countries": []string{"DE"},
		"custom_code_allowed": true})
	wantStatus(t, r, http.StatusCreated)
	shop := r.json(t)
	a := shop["id"].(string)
	if !simgate.IsServiceID(a) {
		t.Fatalf("id %q is not a service id", a)
	}
	for k, want := range map[string]any{"friendly_name": "Shop", "code_length": 8.0, "ttl": 300.0, "custom_code_allowed": true,
		"default": false, "created_at": "2026-11-23T12:00:00Z"} {
		if got := shop[k]; got != want {
			t.Fatalf("%s = %v, want %v (%s)", k, got, want, r.body)
		}
	}
	e.clock.Add(time.Second)
	b := e.createService(admin, map[string]any{"friendly_name": "Bank"})

	// Settings it leaves out are the gateway's (here the defaults).
	r = e.do("GET", "/v1/services/"+b, admin, nil)
	wantStatus(t, r, http.StatusOK)
	bank := r.json(t)
	for k, want := range map[string]any{"friendly_name": "Bank", "code_length": 6.0, "ttl": 600.0, "custom_code_allowed": false} {
		if got := bank[k]; got != want {
			t.Fatalf("%s = %v, want %v (%s)", k, got, want, r.body)
		}
	}
	if ts, cs := bank["templates"].(map[string]any), bank["allowed_countries"].([]any); len(ts) != 0 || len(cs) != 0 {
		t.Fatalf("templates %v, countries %v; want none of its own", ts, cs)
	}

	for name, c := range map[string]struct {
		body map[string]any
		want string
	}{
		"no name":          {map[string]any{"code_length": 8}, "friendly_name is required"},
		"short code":       {map[string]any{"friendly_name": "x", "code_length": 4}, "code_length must be verify.min_code_length (6) to 10"},
		"long ttl":         {map[string]any{"friendly_name": "x", "ttl": "1h"}, "ttl must be between 1m0s and verify.max_ttl (10m0s)"},
		"no code":          {map[string]any{"friendly_name": "x", "templates": map[string]string{"fr": "Bonjour"}}, "templates.fr must contain {code}"},
		"a locale":         {map[string]any{"friendly_name": "x", "templates": map[string]string{"f r": "{code}"}}, "templates are keyed by locale"},
		"a country":        {map[string]any{"friendly_name": "x", "allowed_countries": []string{"de"}}, "allowed_countries[0] must be a two-letter ISO 3166 code"},
		"another country":  {map[string]any{"friendly_name": "x", "allowed_countries": []string{"DE", "FR"}}, "allowed_countries[1] is FR, which the gateway does not send to"},
		"a control":        {map[string]any{"friendly_name": "x\u200ey"}, "friendly_name character 2 is U+200E"},
		"an unknown field": {map[string]any{"friendly_name": "x", "code": "1"}, "unknown key"},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.do("POST", "/v1/services", admin, c.body)
			wantStatus(t, r, http.StatusBadRequest, "invalid")
			if got := r.json(t)["detail"].(string); !strings.Contains(got, c.want) {
				t.Fatalf("detail %q does not say %q", got, c.want)
			}
		})
	}
	wantStatus(t, e.do("POST", "/v1/services", e.key(simgate.ScopeVerify), map[string]any{"friendly_name": "x"}),
		http.StatusForbidden, "forbidden")

	ids := func(key string) []string {
		t.Helper()
		r := e.do("GET", "/v1/services", key, nil)
		wantStatus(t, r, http.StatusOK)
		var out []string
		for _, s := range r.json(t)["services"].([]any) {
			out = append(out, s.(map[string]any)["id"].(string))
		}
		return out
	}
	if got, want := strings.Join(ids(e.key(simgate.ScopeVerify)), ","), strings.Join([]string{simgate.DefaultServiceID, a, b}, ","); got != want {
		t.Fatalf("an unlimited key lists %s, want %s", got, want)
	}
	onlyA := e.serviceKey([]string{a}, simgate.ScopeVerify)
	if got := ids(onlyA); len(got) != 1 || got[0] != a {
		t.Fatalf("a key limited to %s lists %v", a, got)
	}
	wantStatus(t, e.do("GET", "/v1/services/"+a, onlyA, nil), http.StatusOK)
	other := e.do("GET", "/v1/services/"+b, onlyA, nil)
	wantStatus(t, other, http.StatusNotFound, "not_found")
	missing := simgate.NewServiceID()
	none := e.do("GET", "/v1/services/"+missing, admin, nil)
	wantStatus(t, none, http.StatusNotFound, "not_found")
	if got, want := other.json(t)["detail"], strings.ReplaceAll(none.json(t)["detail"].(string), missing, b); got != want {
		t.Fatalf("another's service: %q; want what one that does not exist says, %q", got, want)
	}
	r = e.do("GET", "/v1/services/"+simgate.DefaultServiceID, admin, nil)
	wantStatus(t, r, http.StatusOK)
	if d := r.json(t); d["default"] != true || d["friendly_name"] != "simgate" || d["code_length"] != 6.0 {
		t.Fatalf("the default service: %s", r.body)
	}
}

// A key limited to service A does not see service B's verifications: by
// id (get, cancel, check) and by number they are not found, as those that
// do not exist are, and nothing about them changes; creating one in B is
// not found either. One number has a pending verification in each.
func TestServiceIsolation(t *testing.T) {
	e := servicesEnv(t)
	admin := e.key(simgate.ScopeAdmin)
	a := e.createService(admin, map[string]any{"friendly_name": "Shop"})
	b := e.createService(admin, map[string]any{"friendly_name": "Bank"})
	keyA := e.serviceKey([]string{a}, simgate.ScopeVerify)
	keyB := e.serviceKey([]string{b}, simgate.ScopeVerify)
	all := e.key(simgate.ScopeVerify)

	// Each key's one service is where its verifications go.
	r := e.do("POST", "/v1/verifications", keyA, map[string]any{"to": number})
	wantStatus(t, r, http.StatusCreated)
	inA := r.json(t)
	codeA := e.queue.lastCode(t, number)
	r = e.do("POST", "/v1/verifications", keyB, map[string]any{"to": number})
	wantStatus(t, r, http.StatusCreated)
	inB := r.json(t)
	codeB := e.queue.lastCode(t, number)
	idA, idB := inA["id"].(string), inB["id"].(string)
	if inA["service"] != a || inB["service"] != b || idA == idB || inB["send_count"] != 1.0 {
		t.Fatalf("in A: %v; in B: %v; want one new verification in each", inA, inB)
	}
	if texts := e.queue.texts(number); !strings.Contains(texts[0], "Your Shop code") || !strings.Contains(texts[1], "Your Bank code") {
		t.Fatalf("texts %q; want each service's name", texts)
	}

	notFound := e.do("GET", "/v1/verifications/ver_nosuch", keyA, nil)
	wantStatus(t, notFound, http.StatusNotFound, "not_found")
	hidden := func(r resp) {
		t.Helper()
		wantStatus(t, r, http.StatusNotFound, "not_found")
		if got, want := r.json(t)["detail"], notFound.json(t)["detail"]; got != want {
			t.Fatalf("detail %q, want what one that does not exist says, %q", got, want)
		}
	}
	hidden(e.do("GET", "/v1/verifications/"+idB, keyA, nil))
	hidden(e.do("POST", "/v1/verifications/"+idB+"/cancel", keyA, nil))
	hidden(e.do("POST", "/v1/verifications/check", keyA, map[string]any{"id": idB, "code": codeB}))
	hidden(e.do("POST", "/v1/verifications/check", keyA, map[string]any{"id": idB, "code": codeB, "service": a}))
	wantStatus(t, e.do("POST", "/v1/verifications/check", keyA, map[string]any{"to": number, "code": codeB, "service": b}),
		http.StatusNotFound, "not_found")
	wantStatus(t, e.do("POST", "/v1/verifications", keyA, map[string]any{"to": number, "service": b}), http.StatusNotFound, "not_found")
	// An unlimited key that names the wrong service does not find it either.
	hidden(e.do("POST", "/v1/verifications/check", all, map[string]any{"id": idB, "code": codeB, "service": a}))

	// B's verification is as it was: pending, no attempt counted, one SMS.
	r = e.do("GET", "/v1/verifications/"+idB, all, nil)
	wantStatus(t, r, http.StatusOK)
	if v := r.json(t); v["status"] != "pending" || v["attempts"] != 0.0 || v["send_count"] != 1.0 || v["service"] != b {
		t.Fatalf("B's verification after A's key tried it: %s", r.body)
	}
	if got := len(e.queue.texts(number)); got != 2 {
		t.Fatalf("%d SMS, want 2", got)
	}

	// By number, each key checks its own service's verification.
	r = e.do("POST", "/v1/verifications/check", keyA, map[string]any{"to": number, "code": codeA})
	wantStatus(t, r, http.StatusOK)
	if v := r.json(t); v["id"] != idA || v["status"] != "approved" {
		t.Fatalf("A's check by number: %s", r.body)
	}
	r = e.do("POST", "/v1/verifications/check", keyB, map[string]any{"to": number, "code": codeB})
	wantStatus(t, r, http.StatusOK)
	if v := r.json(t); v["id"] != idB || v["status"] != "approved" {
		t.Fatalf("B's check by number: %s", r.body)
	}
	// An unlimited key sees both.
	for id, service := range map[string]string{idA: a, idB: b} {
		r := e.do("GET", "/v1/verifications/"+id, all, nil)
		wantStatus(t, r, http.StatusOK)
		if got := r.json(t)["service"]; got != service {
			t.Fatalf("service of %s = %v, want %s", id, got, service)
		}
	}

	// A key limited to several services names one.
	both := e.serviceKey([]string{a, b}, simgate.ScopeVerify)
	r = e.do("POST", "/v1/verifications", both, map[string]any{"to": "+4915123456780"})
	wantStatus(t, r, http.StatusBadRequest, "invalid")
	if !strings.Contains(r.json(t)["detail"].(string), "service is required") {
		t.Fatalf("detail: %s", r.body)
	}
	wantStatus(t, e.do("POST", "/v1/verifications", both, map[string]any{"to": "+4915123456780", "service": b}), http.StatusCreated)
	wantStatus(t, e.do("POST", "/v1/verifications", both, map[string]any{"to": "+4915123456780", "service": "VAxyz"}),
		http.StatusBadRequest, "invalid")
}

// The send limit is the number's across services: a second service does
// not give one number more SMS.
func TestServicesShareSendLimit(t *testing.T) {
	e := servicesEnv(t)
	admin := e.key(simgate.ScopeAdmin)
	a := e.createService(admin, map[string]any{"friendly_name": "Shop"})
	key := e.key(simgate.ScopeVerify)
	for i := range 5 {
		body := map[string]any{"to": number}
		if i%2 == 1 {
			body["service"] = a
		}
		wantStatus(t, e.do("POST", "/v1/verifications", key, body), http.StatusCreated)
	}
	wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "service": a}),
		http.StatusTooManyRequests, "rate_limited")
	wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": number}),
		http.StatusTooManyRequests, "rate_limited")
}

// A service's settings apply where a request gives none: its name, code
// length, TTL, template and countries; a request's own code length and
// TTL still win.
func TestServiceSettings(t *testing.T) {
	e := servicesEnv(t)
	admin := e.key(simgate.ScopeAdmin)
	a := e.createService(admin, map[string]any{"friendly_name": "Shop", "code_length": 8, "ttl": "5m",
		"templates": map[string]string{"de": "Dein {app}-Code: {code}, {ttl_minutes} min"}, "allowed_countries": []string{"DE"}})
	key := e.key(simgate.ScopeVerify)

	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "service": a, "locale": "de"})
	wantStatus(t, r, http.StatusCreated)
	v := r.json(t)
	if v["code_length"] != 8.0 || v["locale"] != "de" || v["app_name"] != "Shop" {
		t.Fatalf("in the service: %s", r.body)
	}
	if exp, _ := time.Parse(time.RFC3339, v["expires_at"].(string)); !exp.Equal(e.clock.Now().Add(5 * time.Minute)) {
		t.Fatalf("expires_at = %v, want now+5m", exp)
	}
	if texts := e.queue.texts(number); !strings.HasPrefix(texts[0], "Dein Shop-Code: ") || !strings.HasSuffix(texts[0], ", 5 min") ||
		len(strings.TrimSuffix(strings.TrimPrefix(texts[0], "Dein Shop-Code: "), ", 5 min")) != 8 {
		t.Fatalf("text %q, want the service's template with 8 digits", texts[0])
	}
	// A locale the service has no template for takes the gateway's.
	r = e.do("POST", "/v1/verifications", key, map[string]any{"to": "+4915123456780", "service": a, "locale": "en", "code_length": 6, "ttl": 120})
	wantStatus(t, r, http.StatusCreated)
	if v := r.json(t); v["code_length"] != 6.0 || v["locale"] != "en" {
		t.Fatalf("the request's own settings: %s", r.body)
	}
	if code := e.queue.lastCode(t, "+4915123456780"); len(code) != 6 || !strings.Contains(e.queue.texts("+4915123456780")[0], "Your Shop code") {
		t.Fatalf("code %q in %q", code, e.queue.texts("+4915123456780"))
	}
	// Austria is the gateway's, not the service's.
	r = e.do("POST", "/v1/verifications", key, map[string]any{"to": "+436641234567", "service": a})
	wantStatus(t, r, http.StatusBadRequest, "invalid")
	if got := r.json(t)["detail"].(string); !strings.Contains(got, "sends codes to DE only; to is a number of AT") {
		t.Fatalf("detail %q", got)
	}
	wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": "+436641234567"}), http.StatusCreated)
}

// A custom code is taken only where the service allows it, in the form a
// code has; it is sent, checked, and never stored, logged or answered in
// plain text; and it cannot go with an Idempotency-Key, whose record keeps
// a hash of the request.
func TestCustomCodes(t *testing.T) {
	e := servicesEnv(t)
	admin := e.key(simgate.ScopeAdmin)
	custom := e.createService(admin, map[string]any{"friendly_name": "Shop", "custom_code_allowed": true})
	plain := e.createService(admin, map[string]any{"friendly_name": "Bank"})
	key := e.key(simgate.ScopeVerify)
	const code = "48291735"

	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "service": custom, "custom_code": code})
	wantStatus(t, r, http.StatusCreated)
	v := r.json(t)
	if v["code_length"] != 8.0 {
		t.Fatalf("code_length = %v, want the custom code's 8", v["code_length"])
	}
	if got := e.queue.lastCode(t, number); got != code {
		t.Fatalf("the SMS has the code %q, want %q", got, code)
	}
	r = e.do("POST", "/v1/verifications/check", key, map[string]any{"id": v["id"], "code": code})
	wantStatus(t, r, http.StatusOK)
	if got := r.json(t)["status"]; got != "approved" {
		t.Fatalf("check with the custom code: %s", r.body)
	}

	for name, c := range map[string]struct {
		body   map[string]any
		header []string
		status int
		code   string
		want   string
	}{
		"default service": {map[string]any{"to": number, "custom_code": code}, nil, http.StatusForbidden, "forbidden", "does not allow custom codes"},
		"plain service":   {map[string]any{"to": number, "service": plain, "custom_code": code}, nil, http.StatusForbidden, "forbidden", "does not allow custom codes"},
		"letters":         {map[string]any{"to": number, "service": custom, "custom_code": "4829a7"}, nil, http.StatusBadRequest, "invalid", "custom_code must be 6 to 10 digits"},
		"short":           {map[string]any{"to": number, "service": custom, "custom_code": "4829"}, nil, http.StatusBadRequest, "invalid", "custom_code must be 6 to 10 digits"},
		"length":          {map[string]any{"to": number, "service": custom, "custom_code": code, "code_length": 6}, nil, http.StatusBadRequest, "invalid", "code_length is 6, but custom_code has 8 digits"},
		"idempotency key": {map[string]any{"to": number, "service": custom, "custom_code": code}, []string{"Idempotency-Key", "k1"}, http.StatusBadRequest, "invalid", "cannot have an Idempotency-Key"},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.do("POST", "/v1/verifications", key, c.body, c.header...)
			wantStatus(t, r, c.status, c.code)
			if got := r.json(t)["detail"].(string); !strings.Contains(got, c.want) {
				t.Fatalf("detail %q does not say %q", got, c.want)
			}
		})
	}
	// The refused Idempotency-Key reserved nothing: a drawn code takes it.
	wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "service": custom}, "Idempotency-Key", "k1"),
		http.StatusCreated)
	if got := len(e.queue.texts(number)); got != 2 {
		t.Fatalf("%d SMS, want 2: the refusals sent none", got)
	}

	var haystacks []string
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(e.dbPath + suffix)
		if err != nil {
			t.Fatal(err)
		}
		haystacks = append(haystacks, string(b))
	}
	haystacks = append(haystacks, e.logs.String(), strings.Join(e.responses, "\n"))
	for i, h := range haystacks {
		if strings.Contains(h, code) {
			t.Errorf("the custom code is in %s", []string{"the database", "the WAL", "the logs", "a response"}[i])
		}
	}
	if !strings.Contains(e.logs.String(), "custom_code=true") {
		t.Fatal("the logs do not say a custom code was sent")
	}
}
