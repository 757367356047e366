package console_test

import (
	"context"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/console"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/store/storetest"
)

// The browser flows of the console (with Chromium) are tested in
// cmd/simgate; these are the rules of its login and sessions, over a real
// store.

type env struct {
	t   *testing.T
	db  *store.DB
	c   *console.Console
	srv *httptest.Server
}

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith is newEnv with the nodes sharing the database.
func newEnvWith(t *testing.T, nodes console.Nodes) *env {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "simgate.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q, err := queue.New(queue.Options{Store: db, Sender: modem.NewPool(modem.PoolOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	c, err := console.New(console.Options{Keys: db, Sessions: db, Modems: modem.NewPool(modem.PoolOptions{}), Nodes: nodes, Messages: q, Records: db, History: db})
	if err != nil {
		t.Fatal(err)
	}
	// TLS: the session cookie is Secure.
	srv := httptest.NewTLSServer(c)
	t.Cleanup(srv.Close)
	return &env{t: t, db: db, c: c, srv: srv}
}

// key stores a new API key with the given scopes and returns it.
func (e *env) key(scopes ...simgate.Scope) (string, *simgate.APIKey) {
	e.t.Helper()
	key, k, err := api.NewAPIKey("console test", scopes)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.CreateAPIKey(context.Background(), k); err != nil {
		e.t.Fatal(err)
	}
	return key, k
}

// browser is a client with cookies that does not follow redirects.
// browser is a client of its own, with its own cookie jar (the test
// server's Client is one shared value: each browser gets a copy).
func (e *env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Transport:     e.srv.Client().Transport,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get fetches path and returns the response with its body.
func (e *env) get(c *http.Client, path string) (*http.Response, string) {
	e.t.Helper()
	res, err := c.Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := res.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return res, sb.String()
}

// login opens the login page and posts key with the page's CSRF token.
func (e *env) login(c *http.Client, key string) *http.Response {
	e.t.Helper()
	_, page := e.get(c, "/console/login")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		e.t.Fatalf("login page without a CSRF field: %s", page)
	}
	return e.post(c, "/console/login", url.Values{"csrf": {m[1]}, "key": {key}})
}

func (e *env) post(c *http.Client, path string, form url.Values) *http.Response {
	e.t.Helper()
	res, err := c.PostForm(e.srv.URL+path, form)
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	return res
}

func sessionCookie(res *http.Response) *http.Cookie {
	for _, ck := range res.Cookies() {
		if ck.Name == console.SessionCookie && ck.Value != "" {
			return ck
		}
	}
	return nil
}

// An admin key logs in to a session cookie that is Secure, HttpOnly and
// SameSite=Strict; revoking the key ends the session.
func TestLogin_AdminKey(t *testing.T) {
	e := newEnv(t)
	key, k := e.key(simgate.ScopeAdmin)
	b := e.browser()
	res := e.login(b, key)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/modems" {
		t.Fatalf("login: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	ck := sessionCookie(res)
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console/" {
		t.Fatalf("session cookie %+v", ck)
	}
	if strings.Contains(ck.Value, key) {
		t.Fatal("the session cookie holds the API key")
	}
	if res, body := e.get(b, "/console/modems"); res.StatusCode != http.StatusOK || !strings.Contains(body, "Modems") {
		t.Fatalf("modems page: %d", res.StatusCode)
	}
	if err := e.db.RevokeAPIKey(context.Background(), k.ID); err != nil {
		t.Fatal(err)
	}
	if res, _ := e.get(b, "/console/modems"); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/login" {
		t.Fatalf("after revoking the key: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
}

// A key without the admin scope, an unknown key and a login without the
// form's token are refused, without a session.
func TestLogin_Refused(t *testing.T) {
	e := newEnv(t)
	sendKey, _ := e.key(simgate.ScopeSend, simgate.ScopeRead)
	for _, tc := range []struct {
		name string
		key  string
		want int
	}{
		{"no admin scope", sendKey, http.StatusUnauthorized},
		{"unknown key", "sg_notakey", http.StatusUnauthorized},
	} {
		res := e.login(e.browser(), tc.key)
		if res.StatusCode != tc.want || sessionCookie(res) != nil {
			t.Errorf("%s: %d, session %v; want %d and none", tc.name, res.StatusCode, sessionCookie(res) != nil, tc.want)
		}
	}
	adminKey, _ := e.key(simgate.ScopeAdmin)
	b := e.browser()
	e.get(b, "/console/login")
	if res := e.post(b, "/console/login", url.Values{"csrf": {"forged"}, "key": {adminKey}}); res.StatusCode != http.StatusForbidden || sessionCookie(res) != nil {
		t.Fatalf("login with a forged token: %d", res.StatusCode)
	}
}

// After LoginFailures failed logins an address is refused, even with a
// good key, until the limit refills; another address is not affected.
func TestLogin_FailuresLimited(t *testing.T) {
	e := newEnv(t)
	adminKey, _ := e.key(simgate.ScopeAdmin)
	b := e.browser()
	for i := range console.LoginFailures {
		if res := e.login(b, "sg_wrong"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, res.StatusCode)
		}
	}
	res := e.login(b, adminKey)
	if res.StatusCode != http.StatusTooManyRequests || sessionCookie(res) != nil {
		t.Fatalf("good key after %d failures: %d, want 429 without a session", console.LoginFailures, res.StatusCode)
	}
	if ra := res.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}
	// The test server sees every client at 127.0.0.1; another address,
	// straight to the handler, still gets to try.
	get := httptest.NewRequest(http.MethodGet, "/console/login", nil)
	get.RemoteAddr = "192.0.2.7:4000"
	rec := httptest.NewRecorder()
	e.c.ServeHTTP(rec, get)
	m := csrfField.FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatal("login page without a CSRF field")
	}
	post := httptest.NewRequest(http.MethodPost, "/console/login", strings.NewReader(url.Values{"csrf": {m[1]}, "key": {"sg_wrong"}}.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.RemoteAddr = "192.0.2.7:4000"
	for _, ck := range rec.Result().Cookies() {
		post.AddCookie(ck)
	}
	rec = httptest.NewRecorder()
	e.c.ServeHTTP(rec, post)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("a failed login from another address: %d, want 401", rec.Code)
	}
}

// A console action needs the session's CSRF token.
func TestAction_NeedsCSRF(t *testing.T) {
	e := newEnv(t)
	key, _ := e.key(simgate.ScopeAdmin)
	b := e.browser()
	e.login(b, key)
	if res := e.post(b, "/console/modems/m0/disable", url.Values{"csrf": {"forged"}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("action with a forged token: %d", res.StatusCode)
	}
	if res := e.post(e.browser(), "/console/modems/m0/disable", url.Values{}); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("action without a session: %d", res.StatusCode)
	}
}

// Concurrent failed logins are limited as strictly as one after another:
// a try is counted before the key is looked up. Before, they all passed the
// check before any was counted.
func TestLogin_ConcurrentFailuresLimited(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 4 * console.LoginFailures {
		wg.Add(1)
		b := e.browser() // a cookie jar each; all from one address
		go func() {
			defer wg.Done()
			res := e.login(b, "sg_wrong")
			mu.Lock()
			codes[res.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if got := codes[http.StatusUnauthorized]; got > console.LoginFailures {
		t.Fatalf("%d concurrent failures were looked up (%v), want at most %d", got, codes, console.LoginFailures)
	}
}

// The verifications page shows each verification's service and channel,
// the number a missed call goes to, and no failed checks for a missed-call
// verification, which takes no code.
func TestVerificationsShowServiceAndChannel(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := &simgate.Service{FriendlyName: "Shop"}
	if err := e.db.CreateService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	v := &simgate.Verification{To: "+4915123456789", CodeLength: 6, MaxAttempts: 5, ExpiresAt: time.Now().Add(time.Minute), ServiceID: svc.ID}
	storetest.StartVerification(t, e.db, v, make([]byte, 32))
	call := &simgate.Verification{To: "+4915123456780", Channel: simgate.ChannelMissedCall, CallTo: "+4917011111111", CallModem: "sim0",
		CodeLength: 6, MaxAttempts: 5, ExpiresAt: time.Now().Add(time.Minute)}
	storetest.StartVerification(t, e.db, call, nil)
	key, _ := e.key(simgate.ScopeAdmin)
	b := e.browser()
	e.login(b, key)
	res, page := e.get(b, "/console/verifications")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("verifications page: %d\n%s", res.StatusCode, page)
	}
	for _, c := range []struct {
		v     *simgate.Verification
		cells []string
	}{
		{v, []string{`<td class="mono">` + svc.ID + `</td>`, `<td>sms</td>`, `<td class="num">0 / 5</td>`}},
		{call, []string{`<td class="mono">` + simgate.DefaultServiceID + `</td>`, `<td>missed_call <span class="muted">to +4917011111111</span></td>`,
			`<td class="num"><span class="muted" title="a call approves it, not a code">-</span></td>`}},
	} {
		_, row, ok := strings.Cut(page, `<tr id="ver-`+c.v.ID+`">`)
		if !ok {
			t.Fatalf("no row of %s:\n%s", c.v.ID, page)
		}
		row, _, _ = strings.Cut(html.UnescapeString(row), "</tr>")
		for _, cell := range c.cells {
			if !strings.Contains(row, cell) {
				t.Errorf("the row of %s has no %s:\n%s", c.v.ID, cell, row)
			}
		}
	}
}
