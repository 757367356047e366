package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/console"
)

// chromium returns the browser for the console test: $SIMGATE_CHROMIUM or
// Debian's /usr/bin/chromium. Without it the test skips, unless
// SIMGATE_REQUIRE_INTEROP=1 (as in CI), where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("SIMGATE_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("SIMGATE_REQUIRE_INTEROP") == "1" {
			t.Fatalf("chromium is not installed (%s) and SIMGATE_REQUIRE_INTEROP=1: apt-get install chromium", path)
		}
		t.Skipf("chromium is not installed (%s); apt-get install chromium, or set SIMGATE_CHROMIUM", path)
	}
	return path
}

// screenshotPath is where TestConsoleInBrowser saves a PNG of the modems
// page when SIMGATE_SCREENSHOT is set: /tmp/console-modems.png, or the
// variable's value when it names a .png file.
func screenshotPath() string {
	v := os.Getenv("SIMGATE_SCREENSHOT")
	switch {
	case v == "":
		return ""
	case strings.HasSuffix(v, ".png"):
		return v
	}
	return "/tmp/console-modems.png"
}

// chartCheck is what the test reads from one modem's charts.
type chartCheck struct {
	ID            string  `json:"id"`
	Slots         int     `json:"slots"`
	Sent          float64 `json:"sent"`
	Delivered     float64 `json:"delivered"`
	Failed        float64 `json:"failed"`
	CurrentSent   float64 `json:"currentSent"`
	SignalPoints  int     `json:"signalPoints"`
	CurrentSignal bool    `json:"currentSignal"`
	BalancePoints int     `json:"balancePoints"`
}

// TestConsoleInBrowser drives the console in headless Chromium against the
// real App over virtual modems: log in, one row per modem with its signal,
// each modem's charts of the last 24 hours, the queue's, disable a modem
// and see its state change, see a change made elsewhere arrive without a
// reload, open a message's history.
func TestConsoleInBrowser(t *testing.T) {
	exe := chromium(t)
	hourBefore := time.Now().UTC().Truncate(time.Hour)
	r := newAppRig(t, 2, nil)
	id := r.send("+4915123456789", "hello console")
	// More traffic for the charts: a message of two parts, and another.
	ids := []string{id, r.send("+4915123456780", strings.Repeat("long message ", 16)), r.send("+4915123456781", "third")}
	for _, mid := range ids {
		waitFor(t, 20*time.Second, "the messages delivered", func() bool { return r.messageStatus(mid) == simgate.StatusDelivered })
	}
	// The parts each modem sent, all delivered: what its chart must count.
	sentBy := map[string]int{}
	for _, mid := range ids {
		m, err := r.app.DB.FindMessage(context.Background(), mid)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m.Parts {
			sentBy[p.ModemID]++
		}
	}
	if n := sentBy["sim0"] + sentBy["sim1"]; n != 4 {
		t.Fatalf("parts sent by modem: %v; want 4 in all", sentBy)
	}
	// A balance reading of sim0, as a balance watch records it, and a
	// sample of the signal and the queue now rather than in a minute.
	amount := 4.2
	if err := r.app.DB.RecordBalance(context.Background(), "sim0", time.Time{}, &amount, "Balance: 4.20 EUR"); err != nil {
		t.Fatal(err)
	}
	if err := r.app.Sampler.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	hourAfter := time.Now().UTC().Truncate(time.Hour)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chromium")),
		chromedp.WindowSize(1400, 900),
	)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()

	// failed saves a screenshot in the test's temporary directory and fails.
	failed := func(what string, err error) {
		t.Helper()
		sctx, scancel := context.WithTimeout(browser, 10*time.Second)
		defer scancel()
		if shot, serr := chromedp.Run(sctx, chromedp.FullScreenshot(90)); serr == nil {
			p := filepath.Join(t.TempDir(), "console-failure.png")
			if os.WriteFile(p, shot, 0o600) == nil {
				t.Logf("screenshot: %s", p)
			}
		}
		t.Fatalf("%s: %v", what, err)
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			failed(what, err)
		}
	}
	evalInt := func(expr string) int {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[int](expr))
		if err != nil {
			failed(expr, err)
		}
		return v
	}
	evalStrings := func(expr string) []string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](expr))
		if err != nil {
			failed(expr, err)
		}
		return v
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	// Log in.
	step("open the console", chromedp.Navigate(r.base+"/console/"), chromedp.WaitVisible(css("#key")))
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasSuffix(loc, "/console/login") {
		t.Fatalf("not sent to the login page: %s, %v", loc, err)
	}
	step("log in",
		chromedp.SendKeys(css("#key"), r.admin),
		chromedp.Click(css("#login")),
		chromedp.WaitVisible(css("#modems")),
	)

	// The session cookie: Secure (accepted from http://127.0.0.1), HttpOnly,
	// SameSite=Strict, and not the key.
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{r.base + "/console/"}})
	if err != nil {
		failed("read cookies", err)
	}
	var session *network.Cookie
	for _, c := range res.Cookies {
		if c.Name == console.SessionCookie {
			session = c
		}
	}
	if session == nil || !session.Secure || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict || session.Value == r.admin {
		t.Fatalf("session cookie %+v", session)
	}

	// One row per modem, each with its signal; styles and script loaded
	// under the CSP.
	rows := evalInt(`document.querySelectorAll('#modems tbody tr[id^="modem-"]').length`)
	signals := evalStrings(`Array.from(document.querySelectorAll('#modems .dbm')).map(e => e.textContent)`)
	if rows != 2 || len(signals) != 2 {
		t.Fatalf("%d rows, signals %q; want 2 modems", rows, signals)
	}
	for _, s := range signals {
		if !regexp.MustCompile(`^-\d+ dBm$`).MatchString(s) {
			t.Fatalf("signal %q", s)
		}
	}
	if evalInt(`getComputedStyle(document.querySelector('header')).display === 'flex' ? 1 : 0`) != 1 {
		t.Fatal("the stylesheet did not apply")
	}

	// Each modem's charts: 24 hourly slots; the current hour holds the
	// traffic (unless the hour turned during the test: then the last two
	// do), one signal point per hour sampled, a balance for sim0 only.
	current := hourAfter.Format("2006-01-02T15:04Z")
	checks, err := chromedp.Run(ctx, chromedp.Evaluate[[]chartCheck](`Array.from(document.querySelectorAll('section.history')).map(s => {
		const sms = s.querySelector('figure[id$="-sms"]');
		const sum = (root, cls) => Array.from(root ? root.querySelectorAll('rect.bar.' + cls) : []).reduce((a, e) => a + Number(e.dataset.value), 0);
		const cur = s.querySelector('figure[id$="-sms"] g.slot[data-hour="`+current+`"]');
		return {
			id: s.id, slots: sms.querySelectorAll('svg g.slot').length,
			sent: sum(sms, 's-sent'), delivered: sum(sms, 's-delivered'), failed: sum(sms, 's-failed'), currentSent: sum(cur, 's-sent'),
			signalPoints: s.querySelectorAll('figure[id$="-signal"] circle.point').length,
			currentSignal: !!s.querySelector('figure[id$="-signal"] g.slot[data-hour="`+current+`"] circle.point'),
			balancePoints: s.querySelectorAll('figure[id$="-balance"] circle.point').length,
		};
	})`))
	if err != nil {
		failed("read the charts", err)
	}
	if len(checks) != 2 {
		t.Fatalf("charts of %d modems, want 2: %+v", len(checks), checks)
	}
	for _, c := range checks {
		modem := strings.TrimPrefix(c.ID, "history-")
		want := float64(sentBy[modem])
		if c.Slots != 24 || c.Sent != want || c.Delivered != want || c.Failed != 0 {
			t.Errorf("%s: %d slots, %v sent, %v delivered, %v failed; want 24 slots, %v sent and delivered, none failed",
				modem, c.Slots, c.Sent, c.Delivered, c.Failed, want)
		}
		if hourBefore.Equal(hourAfter) && (c.CurrentSent != want || c.SignalPoints != 1 || !c.CurrentSignal) {
			t.Errorf("%s: the current hour has %v sent and a signal point: %v (%d points in all); want %v sent and one point",
				modem, c.CurrentSent, c.CurrentSignal, c.SignalPoints, want)
		}
		if c.SignalPoints < 1 || c.SignalPoints > 2 {
			t.Errorf("%s: %d signal points, want 1, or 2 when the hour turned", modem, c.SignalPoints)
		}
		if wantBalance := map[string]int{"sim0": 1}[modem]; c.BalancePoints != wantBalance {
			t.Errorf("%s: %d balance points, want %d", modem, c.BalancePoints, wantBalance)
		}
	}
	// The charts are drawn under the CSP: no style attribute anywhere,
	// colours from the stylesheet.
	if n := evalInt(`document.querySelectorAll('[style]').length`); n != 0 {
		t.Fatalf("%d elements with a style attribute", n)
	}
	if fill := evalStrings(`[getComputedStyle(document.querySelector('rect.bar.s-sent')).fill]`); len(fill) != 1 || fill[0] != "rgb(9, 105, 218)" {
		t.Fatalf("a bar is filled with %q: the stylesheet's colours did not apply", fill)
	}
	if p := screenshotPath(); p != "" {
		shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			failed("take a screenshot", err)
		}
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of the modems page: %s", p)
	}

	// The queue's charts: waiting messages and the oldest one's age.
	step("open the queue", chromedp.Navigate(r.base+"/console/queue"), chromedp.WaitVisible(css(`#queue-charts`)))
	if n := evalInt(`document.querySelectorAll('#queue-charts figure svg').length`); n != 2 {
		t.Fatalf("%d queue charts, want 2", n)
	}
	if n := evalInt(`document.querySelectorAll('#chart-queue-depth g.slot').length`); n != 24 {
		t.Fatalf("the depth chart has %d slots, want 24", n)
	}
	if n := evalInt(`document.querySelectorAll('#chart-queue-depth circle.point').length`); n < 1 || n > 2 ||
		hourBefore.Equal(hourAfter) && evalInt(`document.querySelectorAll('#chart-queue-depth g.slot[data-hour="`+current+`"] circle.point').length`) != 1 {
		t.Fatalf("the depth chart has %d points, and none in the current hour; want one", n)
	}
	step("back to the modems", chromedp.Navigate(r.base+"/console/modems"), chromedp.WaitVisible(css("#modems")))

	// Disable sim0 with its button.
	step("disable sim0",
		chromedp.Click(css(`#modem-sim0 button[value="disable"]`)),
		chromedp.WaitVisible(css(`#modem-sim0[data-state="disabled"]`)),
		chromedp.WaitVisible(css(`.flash`)),
	)
	for _, s := range r.app.Pool.Status() {
		if s.ID == "sim0" && s.State != simgate.ModemDisabled {
			t.Fatalf("sim0 is %s after the console disabled it", s.State)
		}
	}

	// A change made through the API shows up without a reload: the script
	// swaps in the fragment.
	evalInt(`window.simgateMarker = 1`)
	if status, body := r.do("POST", "/v1/modems/sim0/enable", r.admin, nil); status != http.StatusOK {
		t.Fatalf("enable: %d %s", status, body)
	}
	step("see sim0 enabled", chromedp.WaitVisible(css(`#modem-sim0[data-state="ready"]`)))
	if evalInt(`window.simgateMarker === 1 ? 1 : 0`) != 1 {
		t.Fatal("the page was reloaded instead of refreshed in place")
	}

	// A message's status history.
	step("open the message",
		chromedp.Navigate(r.base+"/console/messages"),
		chromedp.WaitVisible(css(`#msg-`+id+` a`)),
		chromedp.Click(css(`#msg-`+id+` a`)),
		chromedp.WaitVisible(css(`#history`)),
	)
	history := evalStrings(`Array.from(document.querySelectorAll('#history tbody tr td:nth-child(2)')).map(e => e.textContent)`)
	if got := strings.Join(history, ","); !strings.HasPrefix(got, "queued,sending,sent") || !strings.HasSuffix(got, "delivered") {
		t.Fatalf("history %q", got)
	}

	step("log out", chromedp.Click(css(`header button`)), chromedp.WaitVisible(css("#key")))
	if html, err := chromedp.Run(ctx, chromedp.OuterHTML(css("html"))); err != nil || strings.Contains(html, r.admin) {
		t.Fatalf("login page after logout: %v", err)
	}
}

// consoleClient logs in over plain HTTP and keeps the cookies by hand: Go's
// cookie jar, unlike browsers, sends no Secure cookie over http.
type consoleClient struct {
	t       *testing.T
	base    string
	cookies map[string]string
	c       *http.Client
}

func newConsoleClient(t *testing.T, base string) *consoleClient {
	return &consoleClient{t: t, base: base, cookies: map[string]string{}, c: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *consoleClient) do(method, path string, form url.Values, header ...string) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *consoleClient) csrf(page string) string {
	c.t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		c.t.Fatalf("no CSRF token in:\n%s", page)
	}
	return m[1]
}

// The console's controls without a browser: CSP and cookie attributes,
// login CSRF, admin keys only, the session's CSRF token and origin check on
// every action, fragments, logout.
func TestConsoleHTTP(t *testing.T) {
	r := newAppRig(t, 1, nil)
	c := newConsoleClient(t, r.base)

	resp, _ := c.do("GET", "/console/modems", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("unauthenticated: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(got, "default-src 'self'") {
		t.Fatalf("CSP %q", got)
	}
	resp, page := c.do("GET", "/console/login", nil)
	loginToken := c.csrf(page)
	if strings.Contains(page, "<script>") || strings.Contains(page, "style=") {
		t.Fatal("inline script or style")
	}

	// Login CSRF, a key without admin, a wrong key.
	if resp, _ := c.do("POST", "/console/login", url.Values{"key": {r.admin}, "csrf": {"forged"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login with a forged token: %d", resp.StatusCode)
	}
	_, page = c.do("GET", "/console/login", nil)
	loginToken = c.csrf(page)
	for _, key := range []string{r.sender, "sg_wrong"} {
		if resp, _ := c.do("POST", "/console/login", url.Values{"key": {key}, "csrf": {loginToken}}); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("login with %.6s...: %d", key, resp.StatusCode)
		}
		_, page = c.do("GET", "/console/login", nil)
		loginToken = c.csrf(page)
	}
	resp, _ = c.do("POST", "/console/login", url.Values{"key": {r.admin}, "csrf": {loginToken}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	var setCookie string
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, console.SessionCookie+"=") {
			setCookie = v
		}
	}
	for _, attr := range []string{"Path=/console/", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(setCookie, attr) {
			t.Errorf("session cookie %q lacks %s", setCookie, attr)
		}
	}
	if strings.Contains(setCookie, r.admin) {
		t.Fatal("the key is in the cookie")
	}

	resp, page = c.do("GET", "/console/modems", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="modem-sim0"`) {
		t.Fatalf("modems: %d\n%s", resp.StatusCode, page)
	}
	token := c.csrf(page)
	if token == loginToken {
		t.Fatal("the session reuses the login token")
	}
	// The fragment is the table alone.
	_, frag := c.do("GET", "/console/modems?fragment=1", nil)
	if !strings.HasPrefix(strings.TrimSpace(frag), `<table id="modems">`) || strings.Contains(frag, "<html") {
		t.Fatalf("fragment:\n%s", frag)
	}

	// Actions need the session's token, from this origin.
	for _, bad := range []struct {
		form   url.Values
		header []string
	}{
		{url.Values{}, nil},
		{url.Values{"csrf": {"forged"}}, nil},
		{url.Values{"csrf": {token}}, []string{"Origin", "https://evil.example"}},
	} {
		if resp, _ := c.do("POST", "/console/modems/sim0/disable", bad.form, bad.header...); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("disable with %v %v: %d", bad.form, bad.header, resp.StatusCode)
		}
	}
	if resp, _ := c.do("GET", "/console/modems/sim0/disable", nil); resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET on an action: %d", resp.StatusCode)
	}
	if r.app.Pool.Status()[0].State == simgate.ModemDisabled {
		t.Fatal("a refused request disabled the modem")
	}

	// USSD from the modems page: a menu, the reply with its session, and
	// a forged token refused.
	if resp, _ := c.do("POST", "/console/modems/sim0/ussd", url.Values{"csrf": {"forged"}, "code": {"*111#"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("USSD with a forged token: %d", resp.StatusCode)
	}
	if !strings.Contains(page, `action="/console/modems/sim0/ussd"`) {
		t.Fatal("no USSD box on the modems page")
	}
	resp, page = c.do("POST", "/console/modems/sim0/ussd", url.Values{"csrf": {token}, "code": {"*111#"}}, "Origin", r.base)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "1 Balance\n2 Data") || !strings.Contains(page, `name="session" value="ussd_`) {
		t.Fatalf("USSD menu: %d\n%s", resp.StatusCode, page)
	}
	session := page[strings.Index(page, `name="session" value="`)+len(`name="session" value="`):]
	session = session[:strings.IndexByte(session, '"')]
	resp, page = c.do("POST", "/console/modems/sim0/ussd", url.Values{"csrf": {token}, "session": {session}, "reply": {"1"}}, "Origin", r.base)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Your balance is 12.50 EUR") {
		t.Fatalf("USSD reply: %d\n%s", resp.StatusCode, page)
	}
	resp, _ = c.do("POST", "/console/modems/sim0/disable", url.Values{"csrf": {token}}, "Origin", r.base)
	if resp.StatusCode != http.StatusSeeOther || r.app.Pool.Status()[0].State != simgate.ModemDisabled {
		t.Fatalf("disable: %d, state %s", resp.StatusCode, r.app.Pool.Status()[0].State)
	}
	// The message after it is one of the console's own, by its code; the
	// text of a link someone else made is not shown.
	if _, page := c.do("GET", resp.Header.Get("Location"), nil); !strings.Contains(page, "sim0 disabled.") {
		t.Fatalf("no message after the action:\n%s", page)
	}
	for _, q := range []string{"?done=Your+account+is+locked,+call+555", "?done=disable&modem=Call+555", "?done=disable&modem=nope"} {
		if _, page := c.do("GET", "/console/modems"+q, nil); strings.Contains(page, "555") || strings.Contains(page, "disabled.") {
			t.Fatalf("%s: the page shows text from the link", q)
		}
	}

	// Every page renders.
	id := r.send("+4915123456789", "hi")
	for _, p := range []string{"queue", "messages", "messages/" + id, "inbox", "verifications"} {
		if resp, page := c.do("GET", "/console/"+p, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d\n%s", p, resp.StatusCode, page)
		}
	}
	if resp, _ := c.do("GET", "/console/messages/msg_nope", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown message: %d", resp.StatusCode)
	}

	// Logout ends the session on the server, not just in the browser.
	old := c.cookies[console.SessionCookie]
	if resp, _ := c.do("POST", "/console/logout", url.Values{"csrf": {token}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	c.cookies[console.SessionCookie] = old
	if resp, _ := c.do("GET", "/console/modems?fragment=1", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old session after logout: %d", resp.StatusCode)
	}
}
