package api_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/verify"
)

const number = "+4915123456789"

func TestVerificationApprove(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeVerify)

	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "reference": "signup-42"})
	wantStatus(t, r, http.StatusCreated)
	v := r.json(t)
	id := v["id"].(string)
	for k, want := range map[string]any{"to": number, "status": "pending", "send_count": 1.0, "reference": "signup-42",
		"delivery_status": "queued", "attempts_left": 5.0, "code_length": 6.0} {
		if got := v[k]; got != want {
			t.Fatalf("%s = %v, want %v (%s)", k, got, want, r.body)
		}
	}
	if exp, _ := time.Parse(time.RFC3339, v["expires_at"].(string)); !exp.Equal(e.clock.Now().Add(10 * time.Minute)) {
		t.Fatalf("expires_at = %v, want now+10m", exp)
	}
	code := e.queue.lastCode(t, number)
	if len(code) != 6 {
		t.Fatalf("code %q is not 6 digits", code)
	}
	m, _ := e.queue.Message(context.Background(), v["message_id"].(string))
	if got, want := m.Priority, simgate.PriorityVerification; got != want {
		t.Fatalf("priority = %v, want %v", got, want)
	}
	if !m.ExpiresAt.Equal(e.clock.Now().Add(10 * time.Minute)) {
		t.Fatalf("SMS expiry = %v, want the verification's", m.ExpiresAt)
	}

	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	r = e.do("POST", "/v1/verifications/check", key, map[string]any{"id": id, "code": wrong})
	wantStatus(t, r, http.StatusOK)
	if c := r.json(t); c["status"] != "pending" || c["valid"] != false || c["attempts_left"] != 4.0 {
		t.Fatalf("wrong code: %s", r.body)
	}

	r = e.do("POST", "/v1/verifications/check", key, map[string]any{"to": number, "code": code})
	wantStatus(t, r, http.StatusOK)
	if c := r.json(t); c["status"] != "approved" || c["valid"] != true || c["approved_at"] == nil {
		t.Fatalf("right code: %s", r.body)
	}
	// Once only.
	r = e.do("POST", "/v1/verifications/check", key, map[string]any{"id": id, "code": code})
	wantStatus(t, r, http.StatusConflict, "conflict")

	r = e.do("GET", "/v1/verifications/"+id, key, nil)
	wantStatus(t, r, http.StatusOK)
	if got := r.json(t)["status"]; got != "approved" {
		t.Fatalf("status = %v, want approved", got)
	}
	r = e.do("GET", "/v1/verifications/ver_nope", key, nil)
	wantStatus(t, r, http.StatusNotFound, "not_found")
}

func TestVerificationConcurrentChecks(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeVerify)
	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number})
	wantStatus(t, r, http.StatusCreated)
	id := r.json(t)["id"].(string)
	code := e.queue.lastCode(t, number)

	const n = 50
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i] = e.do("POST", "/v1/verifications/check", key, map[string]any{"id": id, "code": code}).status
		}()
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if got, want := count[http.StatusOK], 1; got != want {
		t.Fatalf("approvals = %d, want %d (statuses %v)", got, want, count)
	}
	if got, want := count[http.StatusConflict], n-1; got != want {
		t.Fatalf("already-approved answers = %d, want %d (statuses %v)", got, want, count)
	}
}

func TestVerificationResendNewCode(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeVerify)
	r1 := e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "reference": "a"})
	wantStatus(t, r1, http.StatusCreated)
	code1 := e.queue.lastCode(t, number)
	e.clock.Add(time.Minute)
	r2 := e.do("POST", "/v1/verifications", key, map[string]any{"to": number})
	wantStatus(t, r2, http.StatusCreated)
	v1, v2 := r1.json(t), r2.json(t)
	if v1["id"] != v2["id"] {
		t.Fatalf("resend made a new verification: %v, %v", v1["id"], v2["id"])
	}
	if got, want := v2["send_count"], 2.0; got != want {
		t.Fatalf("send_count = %v, want %v", got, want)
	}
	if got, want := v2["reference"], "a"; got != want {
		t.Fatalf("reference = %v, want %v", got, want)
	}
	code2 := e.queue.lastCode(t, number)
	if len(e.queue.texts(number)) != 2 {
		t.Fatalf("texts = %d, want 2", len(e.queue.texts(number)))
	}
	if code1 != code2 {
		// The old code was replaced: it fails (and counts as a failure).
		r := e.do("POST", "/v1/verifications/check", key, map[string]any{"to": number, "code": code1})
		if got := r.json(t)["status"]; got != "pending" {
			t.Fatalf("old code: %s", r.body)
		}
	}
	r := e.do("POST", "/v1/verifications/check", key, map[string]any{"to": number, "code": code2})
	if got := r.json(t)["valid"]; got != true {
		t.Fatalf("new code: %s", r.body)
	}
}

func TestVerificationSendLimit(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeVerify)
	for i := range 5 {
		wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": number}), http.StatusCreated)
		e.clock.Add(time.Second * time.Duration(i+1))
	}
	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number})
	wantStatus(t, r, http.StatusTooManyRequests, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	if got, want := len(e.queue.texts(number)), 5; got != want {
		t.Fatalf("SMS = %d, want %d", got, want)
	}
	alerts, _ := e.db.ListAlerts(context.Background(), 0, 0)
	if len(alerts) != 1 || alerts[0].Kind != simgate.AlertSendLimit || alerts[0].Subject != number {
		t.Fatalf("alerts = %+v", alerts)
	}
	// Another number is not affected; the window slides.
	wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": "+4915123456780"}), http.StatusCreated)
	e.clock.Add(10 * time.Minute)
	wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": number}), http.StatusCreated)
}

func TestVerificationMaxChecks(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeVerify)
	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "code_length": 8})
	id := r.json(t)["id"].(string)
	code := e.queue.lastCode(t, number)
	wrong := "00000000"
	if code == wrong {
		wrong = "11111111"
	}
	for i := 1; i <= 5; i++ {
		r := e.do("POST", "/v1/verifications/check", key, map[string]any{"id": id, "code": wrong})
		wantStatus(t, r, http.StatusOK)
		want := "pending"
		if i == 5 {
			want = "max_attempts_reached"
		}
		if got := r.json(t)["status"]; got != want {
			t.Fatalf("check %d: status %v, want %s", i, got, want)
		}
	}
	r = e.do("POST", "/v1/verifications/check", key, map[string]any{"id": id, "code": code})
	wantStatus(t, r, http.StatusConflict, "conflict")
	alerts, _ := e.db.ListAlerts(context.Background(), 0, 0)
	if len(alerts) != 1 || alerts[0].Kind != simgate.AlertMaxAttempts {
		t.Fatalf("alerts = %+v", alerts)
	}
}

func TestVerificationExpiry(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeVerify)
	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "ttl": "2m"})
	id := r.json(t)["id"].(string)
	code := e.queue.lastCode(t, number)
	if !strings.Contains(e.queue.texts(number)[0], "expires in 2 min.") {
		t.Fatalf("text %q does not give the TTL", e.queue.texts(number)[0])
	}
	e.clock.Add(2*time.Minute - time.Millisecond)
	if got := e.do("GET", "/v1/verifications/"+id, key, nil).json(t)["status"]; got != "pending" {
		t.Fatalf("before expiry: %v", got)
	}
	e.clock.Add(time.Millisecond)
	if got := e.do("GET", "/v1/verifications/"+id, key, nil).json(t)["status"]; got != "expired" {
		t.Fatalf("at expiry: %v", got)
	}
	r = e.do("POST", "/v1/verifications/check", key, map[string]any{"id": id, "code": code})
	wantStatus(t, r, http.StatusConflict, "conflict")

	for _, ttl := range []any{"30s", "25h", 86401} {
		r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "ttl": ttl})
		wantStatus(t, r, http.StatusBadRequest, "invalid")
	}
}

func TestVerificationFailureCap(t *testing.T) {
	e := newEnv(t, envOpts{verify: func(o *verify.Options) { o.FailureCap = 3; o.MaxChecks = 2 }})
	key := e.key(simgate.ScopeVerify)
	check := func(id, code string) resp {
		return e.do("POST", "/v1/verifications/check", key, map[string]any{"id": id, "code": code})
	}
	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "code_length": 10})
	id1 := r.json(t)["id"].(string)
	check(id1, "0000000000")
	check(id1, "0000000000") // max_attempts_reached: 2 failures
	r = e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "code_length": 10})
	wantStatus(t, r, http.StatusCreated)
	id2 := r.json(t)["id"].(string)
	if id2 == id1 {
		t.Fatal("a finished verification was resent")
	}
	check(id2, "0000000000") // 3rd failure: the cap
	code := e.queue.lastCode(t, number)
	wantStatus(t, check(id2, code), http.StatusTooManyRequests, "rate_limited")
	r = e.do("POST", "/v1/verifications", key, map[string]any{"to": number})
	wantStatus(t, r, http.StatusTooManyRequests, "rate_limited")
	if got, want := len(e.queue.texts(number)), 2; got != want {
		t.Fatalf("SMS = %d, want %d", got, want)
	}
	kinds := []string{}
	alerts, _ := e.db.ListAlerts(context.Background(), 0, 0)
	for _, a := range alerts {
		kinds = append(kinds, a.Kind)
	}
	if got, want := strings.Join(sorted(kinds), ","), simgate.AlertFailureCap+","+simgate.AlertMaxAttempts; got != want {
		t.Fatalf("alerts = %s, want %s", got, want)
	}
}

func TestVerificationNotifyOwner(t *testing.T) {
	e := newEnv(t, envOpts{verify: func(o *verify.Options) { o.NotifyOwner = true; o.MaxChecks = 1 }})
	key := e.key(simgate.ScopeVerify)
	for range 2 {
		r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "code_length": 10})
		e.do("POST", "/v1/verifications/check", key, map[string]any{"id": r.json(t)["id"], "code": "0000000000"})
	}
	var notices int
	for _, text := range e.queue.texts(number) {
		if strings.HasPrefix(text, "Someone tried") {
			notices++
		}
	}
	if got, want := notices, 1; got != want {
		t.Fatalf("owner notices = %d, want %d (one a day)", got, want)
	}
}

func TestVerificationCancel(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeVerify)
	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number})
	v := r.json(t)
	r = e.do("POST", "/v1/verifications/"+v["id"].(string)+"/cancel", key, nil)
	wantStatus(t, r, http.StatusOK)
	if got := r.json(t)["status"]; got != "canceled" {
		t.Fatalf("status = %v", got)
	}
	wantStatus(t, e.do("POST", "/v1/verifications/"+v["id"].(string)+"/cancel", key, nil), http.StatusConflict, "conflict")
	r = e.do("POST", "/v1/verifications/check", key, map[string]any{"id": v["id"], "code": e.queue.lastCode(t, number)})
	wantStatus(t, r, http.StatusConflict, "conflict")
}

// TestCodeNeverStored searches the database files, the logs and every
// response for the codes the handsets received.
func TestCodeNeverStored(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeVerify, simgate.ScopeRead)
	var codes []string
	for i := range 20 {
		to := fmt.Sprintf("+49151%08d", 10000000+i)
		r := e.do("POST", "/v1/verifications", key, map[string]any{"to": to, "code_length": 10}, "Idempotency-Key", "k"+to)
		wantStatus(t, r, http.StatusCreated)
		id := r.json(t)["id"].(string)
		code := e.queue.lastCode(t, to)
		codes = append(codes, code)
		e.do("GET", "/v1/verifications/"+id, key, nil)
		e.do("GET", "/v1/messages/"+r.json(t)["message_id"].(string), key, nil)
		e.do("GET", "/v1/messages", key, nil)
		switch i % 3 {
		case 0:
			e.do("POST", "/v1/verifications/check", key, map[string]any{"id": id, "code": code})
		case 1:
			e.do("POST", "/v1/verifications/check", key, map[string]any{"id": id, "code": "0000000000"})
		}
	}
	// Replayed idempotent responses are stored: read those too.
	e.do("POST", "/v1/verifications", key, map[string]any{"to": "+4915110000000", "code_length": 10}, "Idempotency-Key", "k+4915110000000")

	var files []string
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(e.dbPath + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			t.Fatalf("%s%s is empty", e.dbPath, suffix)
		}
		files = append(files, string(b))
	}
	haystacks := map[string]string{"database": files[0], "wal": files[1], "logs": e.logs.String(),
		"responses": strings.Join(e.responses, "\n")}
	for _, code := range codes {
		for where, h := range haystacks {
			if strings.Contains(h, code) {
				t.Errorf("code %s found in the %s", code, where)
			}
		}
	}
	if !strings.Contains(e.logs.String(), "verification sent") {
		t.Fatal("the logs captured nothing")
	}
	if strings.Contains(e.logs.String(), key) || strings.Contains(e.logs.String(), key[len(api.KeyPrefix):]) {
		t.Fatal("the API key is in the logs")
	}
}

func TestVerificationNumbers(t *testing.T) {
	e := newEnv(t, envOpts{api: func(o *api.Options) {
		o.Numbers = simgate.NumberPolicy{AllowedCountries: []string{"DE"}, DefaultRegion: "DE"}
	}})
	key := e.key(simgate.ScopeVerify)
	for _, c := range []struct{ to, want string }{
		{"", "required"},
		{"hello", "not a phone number"},
		{"+4915", "not a valid"},
		{"+493012345678", "fixed line"},
		{"+33612345678", "country FR is not allowed; allow it with verify.allowed_countries"},
		{"+12015550123", "country US"},
	} {
		t.Run(c.to, func(t *testing.T) {
			r := e.do("POST", "/v1/verifications", key, map[string]any{"to": c.to})
			wantStatus(t, r, http.StatusBadRequest, "invalid")
			if d := r.json(t)["detail"].(string); !strings.Contains(d, c.want) {
				t.Fatalf("detail %q does not say %q", d, c.want)
			}
		})
	}
	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": "015123456789"})
	wantStatus(t, r, http.StatusCreated)
	if got, want := r.json(t)["to"], number; got != want {
		t.Fatalf("to = %v, want %v", got, want)
	}

	// Nothing is allowed until countries are configured.
	e2 := newEnv(t, envOpts{api: func(o *api.Options) { o.Numbers = simgate.NumberPolicy{} }})
	wantStatus(t, e2.do("POST", "/v1/verifications", e2.key(simgate.ScopeVerify), map[string]any{"to": number}), http.StatusBadRequest, "invalid")
}

func TestVerificationBadRequests(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeVerify)
	for name, c := range map[string]struct {
		path   string
		body   any
		status int
		code   string
	}{
		"unknown field":   {"/v1/verifications", `{"to":"+4915123456789","colour":"red"}`, 400, "invalid"},
		"two objects":     {"/v1/verifications", `{"to":"+4915123456789"}{}`, 400, "invalid"},
		"not json":        {"/v1/verifications", `to=+4915123456789`, 400, "invalid"},
		"empty":           {"/v1/verifications", ``, 400, "invalid"},
		"oversized":       {"/v1/verifications", `{"to":"+4915123456789","reference":"` + strings.Repeat("x", 17<<10) + `"}`, 413, "too_large"},
		"long reference":  {"/v1/verifications", map[string]any{"to": number, "reference": strings.Repeat("é", 129)}, 400, "invalid"},
		"code length 3":   {"/v1/verifications", map[string]any{"to": number, "code_length": 3}, 400, "invalid"},
		"code length 11":  {"/v1/verifications", map[string]any{"to": number, "code_length": 11}, 400, "invalid"},
		"check both":      {"/v1/verifications/check", map[string]any{"id": "x", "to": number, "code": "1234"}, 400, "invalid"},
		"check neither":   {"/v1/verifications/check", map[string]any{"code": "1234"}, 400, "invalid"},
		"check bad code":  {"/v1/verifications/check", map[string]any{"id": "x", "code": "12a4"}, 400, "invalid"},
		"check unknown":   {"/v1/verifications/check", map[string]any{"id": "ver_x", "code": "1234"}, 404, "not_found"},
		"check no verify": {"/v1/verifications/check", map[string]any{"to": "+4915123456780", "code": "1234"}, 404, "not_found"},
	} {
		t.Run(name, func(t *testing.T) {
			wantStatus(t, e.do("POST", c.path, key, c.body), c.status, c.code)
		})
	}
	if n := len(e.queue.texts(number)); n != 0 {
		t.Fatalf("%d SMS sent for bad requests", n)
	}
}

func TestIdempotency(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeVerify, simgate.ScopeSend)
	body := map[string]any{"to": number}
	r1 := e.do("POST", "/v1/verifications", key, body, "Idempotency-Key", "abc")
	wantStatus(t, r1, http.StatusCreated)
	r2 := e.do("POST", "/v1/verifications", key, body, "Idempotency-Key", "abc")
	wantStatus(t, r2, http.StatusCreated)
	if string(r1.body) != string(r2.body) || r2.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay differs: %s vs %s", r1.body, r2.body)
	}
	if got, want := len(e.queue.texts(number)), 1; got != want {
		t.Fatalf("SMS = %d, want %d", got, want)
	}
	// Another body with the same key: 422.
	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": "+4915123456780"}, "Idempotency-Key", "abc")
	wantStatus(t, r, http.StatusUnprocessableEntity, "idempotency_key_mismatch")
	// Keys are per API key: another key may use "abc".
	other := e.key(simgate.ScopeVerify)
	wantStatus(t, e.do("POST", "/v1/verifications", other, map[string]any{"to": "+4915123456780"}, "Idempotency-Key", "abc"), http.StatusCreated)
	// A failed request releases its key.
	wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": "bad"}, "Idempotency-Key", "def"), http.StatusBadRequest)
	wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": "bad"}, "Idempotency-Key", "def"), http.StatusBadRequest)
	// Kept for 24 h, then forgotten.
	e.clock.Add(24*time.Hour - time.Second)
	wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": "+4915123456780"}, "Idempotency-Key", "abc"), http.StatusUnprocessableEntity)
	e.clock.Add(time.Second)
	wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": "+4915123456781"}, "Idempotency-Key", "abc"), http.StatusCreated)

	// A duplicate while the first is in flight: 409.
	e.queue.mu.Lock()
	e.queue.gate, e.queue.entered = make(chan struct{}), make(chan struct{}, 1)
	gate, entered := e.queue.gate, e.queue.entered
	e.queue.mu.Unlock()
	msg := map[string]any{"to": number, "text": "hello"}
	done := make(chan resp)
	go func() { done <- e.do("POST", "/v1/messages", key, msg, "Idempotency-Key", "flight") }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached the queue")
	}
	wantStatus(t, e.do("POST", "/v1/messages", key, msg, "Idempotency-Key", "flight"), http.StatusConflict, "conflict")
	e.queue.mu.Lock()
	e.queue.gate = nil
	e.queue.mu.Unlock()
	close(gate)
	select {
	case r := <-done:
		wantStatus(t, r, http.StatusCreated)
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never finished")
	}
	wantStatus(t, e.do("POST", "/v1/messages", key, msg, "Idempotency-Key", "flight"), http.StatusCreated)
	if got, want := len(e.queue.texts(number)), 2; got != want {
		t.Fatalf("SMS = %d, want %d", got, want)
	}
}

// TestVerificationTextFromConfig: a verify key picks a configured app name
// or locale by key but never writes the text of the code SMS.
func TestVerificationTextFromConfig(t *testing.T) {
	e := newEnv(t, envOpts{verify: func(o *verify.Options) {
		o.AppName = "Acme"
		o.AppNames = map[string]string{"shop": "Acme Shop"}
		o.Templates = map[string]string{"en": verify.DefaultTemplate, "de": "Ihr {app}-Code: {code}"}
	}})
	key := e.key(simgate.ScopeVerify)
	refuse := func(body map[string]any, want ...string) {
		t.Helper()
		r := e.do("POST", "/v1/verifications", key, body)
		wantStatus(t, r, http.StatusBadRequest, "invalid")
		d, _ := r.json(t)["detail"].(string)
		for _, w := range want {
			if !strings.Contains(d, w) {
				t.Fatalf("detail %q does not say %q", d, w)
			}
		}
	}
	for _, name := range []string{"Evil Bank: call +4915199999999 or visit http://evil.example", "Acme Shop", "SHOP", strings.Repeat("x", 65)} {
		refuse(map[string]any{"to": number, "app_name": name}, "app_name", "verify.app_names")
	}
	if n := len(e.queue.texts(number)); n != 0 {
		t.Fatalf("%d SMS queued for refused app names", n)
	}

	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "app_name": "shop", "locale": "de"})
	wantStatus(t, r, http.StatusCreated)
	if got, want := r.json(t)["app_name"], "Acme Shop"; got != want {
		t.Fatalf("app_name = %v, want %v", got, want)
	}
	if got := e.queue.texts(number)[0]; !regexp.MustCompile(`^Ihr Acme Shop-Code: [0-9]{6}$`).MatchString(got) {
		t.Fatalf("text = %q, want the de template with the configured app name", got)
	}
	r = e.do("POST", "/v1/verifications", key, map[string]any{"to": "+4915123456780"})
	wantStatus(t, r, http.StatusCreated)
	if got, want := r.json(t)["app_name"], "Acme"; got != want {
		t.Fatalf("default app_name = %v, want %v", got, want)
	}
}

// TestVerificationStrength: codes shorter than 6 digits and lifetimes over
// 10 minutes (NIST SP 800-63B) are refused unless the configuration allows
// them.
func TestVerificationStrength(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeVerify)
	for _, c := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"to": number, "code_length": 4}, "verify.min_code_length"},
		{map[string]any{"to": number, "code_length": 5}, "verify.min_code_length"},
		{map[string]any{"to": number, "ttl": "11m"}, "verify.max_ttl"},
		{map[string]any{"to": number, "ttl": 601}, "verify.max_ttl"},
		{map[string]any{"to": number, "ttl": "1h"}, "verify.max_ttl"},
	} {
		r := e.do("POST", "/v1/verifications", key, c.body)
		wantStatus(t, r, http.StatusBadRequest, "invalid")
		if d, _ := r.json(t)["detail"].(string); !strings.Contains(d, c.want) {
			t.Fatalf("%v: detail %q does not name %s", c.body, d, c.want)
		}
	}
	if n := len(e.queue.texts(number)); n != 0 {
		t.Fatalf("%d SMS queued for refused requests", n)
	}
	wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "code_length": 6, "ttl": "10m"}),
		http.StatusCreated)

	// An operator may allow shorter codes and longer lifetimes.
	e = newEnv(t, envOpts{verify: func(o *verify.Options) { o.MinCodeLength = 4; o.MaxTTL = time.Hour }})
	key = e.key(simgate.ScopeVerify)
	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "code_length": 4, "ttl": "1h"})
	wantStatus(t, r, http.StatusCreated)
	if got := e.queue.lastCode(t, number); len(got) != 4 {
		t.Fatalf("code %q, want 4 digits", got)
	}
	wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": "+4915123456780", "ttl": "61m"}),
		http.StatusBadRequest, "invalid")
}

// oneSIM is the SIM every missed call goes to (the pool picks it in
// production: cmd/simgate's tests run that on virtual modems).
type oneSIM struct{}

const simNumber = "+4917011111111"

func (oneSIM) PickCallee(to, prefer string) (string, string, error) { return "modem0", simNumber, nil }

// A missed-call verification answers with the number to call and sends no
// SMS; a code check is a conflict; the call from its number approves it.
// It takes no SMS budget, but the per-number limit; without modems it is
// unavailable, and unknown channels are refused.
func TestVerificationMissedCall(t *testing.T) {
	e := newEnv(t, envOpts{
		verify: func(o *verify.Options) { o.Callees = oneSIM{} },
		api: func(o *api.Options) {
			o.Limits.GlobalPerHour = 1
			o.Limits.PerNumber = api.Rate{PerSecond: 0.001, Burst: 2}
		},
	})
	key := e.key(simgate.ScopeVerify)

	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "channel": "missed_call", "reference": "signup-7"})
	wantStatus(t, r, http.StatusCreated)
	v := r.json(t)
	id := v["id"].(string)
	for k, want := range map[string]any{"to": number, "status": "pending", "channel": "missed_call", "call_to": simNumber,
		"send_count": 1.0, "reference": "signup-7", "attempts": 0.0, "service": simgate.DefaultServiceID} {
		if got := v[k]; got != want {
			t.Fatalf("%s = %v, want %v (%s)", k, got, want, r.body)
		}
	}
	for _, k := range []string{"code_length", "attempts_left", "message_id", "delivery_status"} {
		if got, ok := v[k]; ok {
			t.Errorf("%s = %v in a missed-call verification (%s)", k, got, r.body)
		}
	}
	if texts := e.queue.texts(number); len(texts) != 0 {
		t.Fatalf("SMS sent: %q", texts)
	}

	r = e.do("POST", "/v1/verifications/check", key, map[string]any{"id": id, "code": "123456"})
	wantStatus(t, r, http.StatusConflict, "conflict")
	if !strings.Contains(string(r.body), "missed_call") || !strings.Contains(string(r.body), simNumber) {
		t.Fatalf("the check's error does not say why: %s", r.body)
	}

	if ok, err := e.verify.HandleCall(context.Background(), &simgate.InboundCall{ModemID: "modem0", From: number, FromE164: number,
		At: e.clock.Now()}); err != nil || !ok {
		t.Fatalf("the call: %v, %v", ok, err)
	}
	r = e.do("GET", "/v1/verifications/"+id, key, nil)
	wantStatus(t, r, http.StatusOK)
	if g := r.json(t); g["status"] != "approved" || g["channel"] != "missed_call" || g["call_to"] != simNumber || g["approved_at"] == nil {
		t.Fatalf("after the call: %s", r.body)
	}

	// No SMS budget taken: the one SMS of the hour still goes.
	wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": "+4915123456780", "channel": "missed_call"}), http.StatusCreated)
	r = e.do("POST", "/v1/verifications", key, map[string]any{"to": "+4915123456781"})
	wantStatus(t, r, http.StatusCreated)
	if g := r.json(t); g["channel"] != "sms" || g["code_length"] != 6.0 || g["attempts_left"] != 5.0 || g["call_to"] != nil {
		t.Fatalf("an SMS verification: %s", r.body)
	}
	// The per-number limit holds: a third start for the number is refused.
	r = e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "channel": "missed_call"})
	wantStatus(t, r, http.StatusCreated)
	r = e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "channel": "missed_call"})
	wantStatus(t, r, http.StatusTooManyRequests, "rate_limited")
	if !strings.Contains(string(r.body), "limits.per_number") {
		t.Fatalf("the refusal does not name the limit: %s", r.body)
	}

	for body, code := range map[string]string{
		`{"to":"+4915123456782","channel":"voice"}`:                       "invalid",
		`{"to":"+4915123456782","channel":"missed_call","code_length":6}`: "invalid",
		// Before the service's refusal of custom codes (403): a missed
		// call has no code in any service.
		`{"to":"+4915123456782","channel":"missed_call","custom_code":"123456"}`: "invalid",
	} {
		wantStatus(t, e.do("POST", "/v1/verifications", key, body), http.StatusBadRequest, code)
	}

	plain := newEnv(t, envOpts{})
	r = plain.do("POST", "/v1/verifications", plain.key(simgate.ScopeVerify), map[string]any{"to": number, "channel": "missed_call"})
	wantStatus(t, r, http.StatusServiceUnavailable, "unavailable")
}
