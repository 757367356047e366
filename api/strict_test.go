package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
)

// Tests from "Hardening from an attacker's point of view": input is taken
// only as written, and refused (with what is wrong and where) rather than
// changed.

// wantDetail fails unless r is a 400 invalid problem whose detail holds
// each of want.
func wantDetail(t testing.TB, r resp, status int, code string, want ...string) {
	t.Helper()
	wantStatus(t, r, status, code)
	d, _ := r.json(t)["detail"].(string)
	for _, w := range want {
		if !strings.Contains(d, w) {
			t.Fatalf("detail %q does not say %q", d, w)
		}
	}
}

func TestNumbersOnlyAsWritten(t *testing.T) {
	e := newEnv(t, envOpts{api: func(o *api.Options) {
		o.Numbers = simgate.NumberPolicy{AllowAllCountries: true, DefaultRegion: "DE"}
	}})
	send, verify := e.key(simgate.ScopeSend), e.key(simgate.ScopeVerify)
	for _, c := range []struct{ to, want string }{
		// phonenumbers reads letters as keypad digits: +4915122233344.
		{"+49151ABCDEFGH", `letter 'A' at character 7: a phone number is written as + and digits only`},
		{"+4915123456789;ext=1", "extension"},
		{"+4915123456789x123", "extension"},
		{"+4915123456789 ext. 12", "extension"},
		{"+4915123456789#1", "extension"},
		{"+49 151 23456789", `' ' at character 4`},
		{"+49-151-23456789", `'-' at character 4`},
		{"(0151) 23456789", `'(' at character 1`},
		{" +4915123456789", "starts with a space"},
		{"+4915123456789\n", "U+000A at character 15"},
		{"+４９15123456789", `'４' at character 2`}, // fullwidth digits
		{"++4915123456789", `'+' at character 2`},
	} {
		t.Run(c.to, func(t *testing.T) {
			wantDetail(t, e.do("POST", "/v1/messages", send, map[string]any{"to": c.to, "text": "hi"}), 400, "invalid", c.want)
			wantDetail(t, e.do("POST", "/v1/verifications", verify, map[string]any{"to": c.to}), 400, "invalid", c.want)
		})
	}
	if n := len(e.queue.entries); n != 0 {
		t.Fatalf("%d SMS queued for refused numbers", n)
	}
	// As written, digits only: E.164, and the national form with a region.
	for _, to := range []string{number, "015123456789"} {
		r := e.do("POST", "/v1/messages", send, map[string]any{"to": to, "text": "hi"})
		wantStatus(t, r, http.StatusCreated)
		if got := r.json(t)["to"]; got != number {
			t.Fatalf("to = %v, want %s", got, number)
		}
	}
}

func TestNumberTypes(t *testing.T) {
	cases := []struct{ to, kind, key string }{
		{"+447012345678", "a personal number (+44 70...)", "personal_number"},
		{"+4970012345678", "a personal number (+49 70...)", "personal_number"},
		{"+447640123456", "a pager (+44 76...)", "pager"},
		{"+445612345678", "a VoIP number (+44 56...)", "voip"},
		{"+493012345678", "a fixed line (+49 30...)", "fixed_line"},
	}
	e := newEnv(t, envOpts{})
	send, verify := e.key(simgate.ScopeSend), e.key(simgate.ScopeVerify)
	for _, c := range cases {
		t.Run(c.to, func(t *testing.T) {
			want := []string{c.kind, "not allowed", "allow the type " + c.key + " with verify.allowed_number_types"}
			wantDetail(t, e.do("POST", "/v1/messages", send, map[string]any{"to": c.to, "text": "hi"}), 400, "invalid", want...)
			wantDetail(t, e.do("POST", "/v1/verifications", verify, map[string]any{"to": c.to}), 400, "invalid", want...)
		})
	}
	// Mobile numbers, and those a plan does not tell from fixed lines.
	for _, to := range []string{number, "+447712345678", "+12015550123"} {
		wantStatus(t, e.do("POST", "/v1/messages", send, map[string]any{"to": to, "text": "hi"}), http.StatusCreated)
	}
	// Looking a number up is not sending to it.
	wantStatus(t, e.do("GET", "/v1/messages?to="+url.QueryEscape("+447012345678"), e.key(simgate.ScopeRead), nil), http.StatusOK)

	// The operator allows a type.
	e2 := newEnv(t, envOpts{api: func(o *api.Options) { o.Numbers.AllowedNumberTypes = []string{"personal_number"} }})
	wantStatus(t, e2.do("POST", "/v1/messages", e2.key(simgate.ScopeSend), map[string]any{"to": "+447012345678", "text": "hi"}), http.StatusCreated)
	wantStatus(t, e2.do("POST", "/v1/verifications", e2.key(simgate.ScopeVerify), map[string]any{"to": "+4970012345678"}), http.StatusCreated)
	wantDetail(t, e2.do("POST", "/v1/messages", e2.key(simgate.ScopeSend), map[string]any{"to": "+447640123456", "text": "hi"}), 400, "invalid", "pager")

	if _, err := api.NewServer(api.Options{Keys: e.db, Numbers: simgate.NumberPolicy{AllowedNumberTypes: []string{"personal"}}}); err == nil ||
		!strings.Contains(err.Error(), `"personal"`) {
		t.Fatalf("NewServer with an unknown number type: %v", err)
	}
}

func TestBodyOnlyAsWritten(t *testing.T) {
	e := newEnv(t, envOpts{})
	send, verify := e.key(simgate.ScopeSend), e.key(simgate.ScopeVerify)
	for name, c := range map[string]struct {
		path, body string
		want       []string
	}{
		"duplicate key":        {"/v1/messages", `{"to":"+4915123456789","to":"+4915123456780","text":"hi"}`, []string{`"to" comes twice`}},
		"duplicate key escape": {"/v1/messages", `{"to":"+4915123456789","t\u006f":"+4915123456780","text":"hi"}`, []string{`"to" comes twice`}},
		"upper-case key":       {"/v1/messages", `{"TO":"+4915123456789","text":"hi"}`, []string{`"TO"`, "case-sensitive", `"to"`}},
		"title-case key":       {"/v1/messages", `{"to":"+4915123456789","Text":"hi"}`, []string{`"Text"`, "case-sensitive", `"text"`}},
		"long s key":           {"/v1/messages", `{"to":"+4915123456789","text":"hi","\u017fend_at":"2026-12-01T00:00:00Z"}`, []string{"\u017fend_at", "case-sensitive", `"send_at"`}},
		"unknown key":          {"/v1/verifications", `{"to":"+4915123456789","colour":"red"}`, []string{`unknown key "colour"`}},
		"not an object":        {"/v1/verifications", `["to"]`, []string{"JSON object"}},
		"null":                 {"/v1/verifications", `null`, []string{"JSON object"}},
		"invalid UTF-8":        {"/v1/messages", "{\"to\":\"+4915123456789\",\"text\":\"h\xffi\"}", []string{"not valid UTF-8", "byte 32"}},
		"overlong UTF-8":       {"/v1/messages", "{\"to\":\"+4915123456789\",\"text\":\"\xc0\xaf\"}", []string{"not valid UTF-8"}},
		"lone high surrogate":  {"/v1/messages", `{"to":"+4915123456789","text":"a\ud800b"}`, []string{`"text"`, "unpaired", "surrogate"}},
		"lone low surrogate":   {"/v1/messages", `{"to":"+4915123456789","text":"\udc00"}`, []string{`"text"`, "surrogate"}},
		"high then not low":    {"/v1/messages", `{"to":"+4915123456789","text":"\ud83d\u0041"}`, []string{`"text"`, "surrogate"}},
		"surrogate at end":     {"/v1/messages", `{"to":"+4915123456789","text":"\uD83D"}`, []string{`"text"`, "surrogate"}},
		"surrogate in key":     {"/v1/messages", `{"to":"+4915123456789","text":"hi","\ud800":1}`, []string{"surrogate"}},
		"bell in text":         {"/v1/messages", `{"to":"+4915123456789","text":"a\u0007b"}`, []string{"text", "U+0007", "character 2", "newline"}},
		"tab in text":          {"/v1/messages", `{"to":"+4915123456789","text":"a\tb"}`, []string{"text", "U+0009"}},
		"CR in text":           {"/v1/messages", `{"to":"+4915123456789","text":"a\r\nb"}`, []string{"text", "U+000D"}},
		"NUL in text":          {"/v1/messages", `{"to":"+4915123456789","text":"a\u0000"}`, []string{"text", "U+0000"}},
		"C1 in text":           {"/v1/messages", `{"to":"+4915123456789","text":"a\u0085"}`, []string{"text", "U+0085"}},
		"line separator":       {"/v1/messages", `{"to":"+4915123456789","text":"a\u2028"}`, []string{"text", "U+2028"}},
		"newline in app_name":  {"/v1/verifications", `{"to":"+4915123456789","app_name":"Shop\nYour code is 0000"}`, []string{"app_name", "U+000A"}},
		"control in reference": {"/v1/verifications", `{"to":"+4915123456789","reference":"a\u001bb"}`, []string{"reference", "U+001B"}},
	} {
		t.Run(name, func(t *testing.T) {
			key := send
			if strings.HasPrefix(c.path, "/v1/verifications") {
				key = verify
			}
			wantDetail(t, e.do("POST", c.path, key, c.body), 400, "invalid", c.want...)
		})
	}
	if n := len(e.queue.entries); n != 0 {
		t.Fatalf("%d SMS queued for refused bodies", n)
	}
	// A newline in a text, a surrogate pair and escaped keys are text as
	// written.
	r := e.do("POST", "/v1/messages", send, `{"t\u006f":"+4915123456789","text":"line 1\nline 2 \ud83d\ude00"}`)
	wantStatus(t, r, http.StatusCreated)
	if got, want := r.json(t)["text"], "line 1\nline 2 😀"; got != want {
		t.Fatalf("text = %q, want %q", got, want)
	}
}

func TestContentType(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeSend)
	body := map[string]any{"to": number, "text": "hi"}
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
		"application/json; charset=latin1", "application/json; charset=utf-16", "application/json; foo=bar",
		"application/jsonx", "application/problem+json", "application/json, text/plain"} {
		t.Run(ct, func(t *testing.T) {
			wantDetail(t, e.do("POST", "/v1/messages", key, body, "Content-Type", ct), http.StatusUnsupportedMediaType,
				"unsupported_media_type", "application/json")
		})
	}
	if n := len(e.queue.entries); n != 0 {
		t.Fatalf("%d SMS queued for refused bodies", n)
	}
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON; Charset=UTF-8"} {
		wantStatus(t, e.do("POST", "/v1/messages", key, body, "Content-Type", ct), http.StatusCreated)
	}
	// A POST without a body needs no Content-Type.
	wantStatus(t, e.do("POST", "/v1/messages/msg_0001/cancel", key, nil), http.StatusOK)
}

func TestExpiresAtMax(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeSend)
	now := e.clock.Now()
	msg := func(at time.Time) map[string]any {
		return map[string]any{"to": number, "text": "hi", "expires_at": at.Format(time.RFC3339)}
	}
	wantDetail(t, e.do("POST", "/v1/messages", key, msg(now.Add(7*24*time.Hour+time.Second))), 400, "invalid",
		"expires_at", "more than 7 days ahead", "queue.max_expiry")
	wantDetail(t, e.do("POST", "/v1/messages", key, msg(now.AddDate(100, 0, 0))), 400, "invalid", "expires_at")
	wantStatus(t, e.do("POST", "/v1/messages", key, msg(now.Add(7*24*time.Hour))), http.StatusCreated)

	e2 := newEnv(t, envOpts{api: func(o *api.Options) { o.MaxExpiry = 90 * time.Minute }})
	key = e2.key(simgate.ScopeSend)
	wantDetail(t, e2.do("POST", "/v1/messages", key, msg(now.Add(2*time.Hour))), 400, "invalid", "more than 1h30m0s ahead")
	wantStatus(t, e2.do("POST", "/v1/messages", key, msg(now.Add(time.Hour))), http.StatusCreated)
}

func TestKeyInQueryEverySpelling(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeRead)
	for _, q := range []string{
		"?a=1;api_key=x",
		"?a=1;token=x",
		"?a=1;foo=" + key,
		"?API_KEY=x",
		"?Api-Key=x",
		"?apiKey=x",
		"?x-api-key=x",
		"?access_token=x",
		"?accessToken=x",
		"?authorization=x",
		"?api%5Fkey=x",
		"?api%5fkey=x",
		"?%61pi_key=x",
		"?api%255Fkey=x",
		"?api+key=x",
		"?api_key",
		"?api_key[]=x",
		"?a=1&&;;token=x",
		"?foo=Bearer%20" + key,
		"?foo=Bearer+" + key,
		"?foo=" + url.QueryEscape(url.QueryEscape(key)),
		"?" + key,
		"?limit=1;" + key,
	} {
		t.Run(q, func(t *testing.T) {
			wantDetail(t, e.do("GET", "/v1/messages"+q, key, nil), 400, "invalid", "Authorization: Bearer")
		})
	}
	// Other parameters, ids with "sg_" inside, and ";" alone pass.
	for _, q := range []string{"?limit=1", "?cursor=msg_0001", "?status=queued;x=1", "?to=%2B4915123456789"} {
		if r := e.do("GET", "/v1/messages"+q, key, nil); r.status == http.StatusBadRequest &&
			strings.Contains(r.json(t)["detail"].(string), "Authorization") {
			t.Fatalf("%s refused as a key: %s", q, r.body)
		}
	}
}
