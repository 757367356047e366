// Package console is simgate's admin console: server-rendered HTML pages for
// people who would rather look than read JSON. It shows the modems (with
// enable, disable and drain buttons), the queue, recent messages with their
// status history, inbound SMS and verifications (never their codes).
//
// # Sessions
//
// An admin logs in with an API key that has the admin scope. The key is
// checked and forgotten: the browser gets a random session token in a
// cookie that is Secure, HttpOnly and SameSite=Strict, scoped to the
// console's path, and the store keeps only the token's SHA-256 with an expiry
// and the id of the key, so that revoking the key ends the session. Browsers
// accept Secure cookies from http://localhost and 127.0.0.1, which are
// potentially trustworthy origins; anywhere else, serve the console over TLS.
//
// Failed logins are limited per client address (LoginFailures in a burst,
// then one more each LoginFailureInterval; Retry-After says when): guessing a
// 128-bit key is hopeless anyway, but the limit keeps a script from turning
// the login form into a load test, and the warnings in the log stay few.
//
// # CSRF
//
// Every action is a POST carrying the session's synchronizer token (random,
// stored with the session, compared in constant time); a POST whose Origin
// header names another origin is refused too. The login form carries a
// token of its own, tied to a short-lived cookie (double submit), against
// login CSRF.
//
// # Pages
//
// Pages are html/template with embedded assets: no CDN, no inline script or
// style, under a Content-Security-Policy of default-src 'self'. The live part
// of each page is also served alone (?fragment=1), which a small script
// fetches every few seconds and swaps in; without JavaScript every page has a
// plain Refresh link and every action is an ordinary form.
//
// # Charts
//
// The modems page shows each modem's last 24 hours, the queue page the
// queue's, as small SVG charts drawn on the server (chart.go): no script,
// colours from console.css by class. They read hourly rollups from the store:
// SMS parts sent, delivered and failed, counted by the store as they happen;
// the signal and the queue's depth and oldest age, sampled once a minute by
// a Sampler; and the SIMs' balance readings.
package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/simgate/simgate"
)

// Sessions keeps console sessions. *store.DB satisfies it.
type Sessions interface {
	// CreateConsoleSession stores a session by the SHA-256 of its token.
	CreateConsoleSession(ctx context.Context, tokenHash []byte, apiKeyID, csrf string, ttl time.Duration) error
	// FindConsoleSession returns the session's key id and CSRF token; a
	// CodeNotFound error when there is none, it expired or its key was
	// revoked.
	FindConsoleSession(ctx context.Context, tokenHash []byte) (apiKeyID, csrf string, err error)
	// DeleteConsoleSession ends a session.
	DeleteConsoleSession(ctx context.Context, tokenHash []byte) error
}

// Keys finds API keys. *store.DB satisfies it.
type Keys interface {
	// FindAPIKeyByHash returns the unrevoked key with the given SHA-256; a
	// CodeNotFound error when there is none.
	FindAPIKeyByHash(ctx context.Context, hash []byte) (*simgate.APIKey, error)
}

// Modems reports on and controls the modems. *modem.Pool satisfies it.
type Modems interface {
	Status() []simgate.ModemStatus
	Enable(name string) error
	Disable(name string) error
	Drain(ctx context.Context, name string) error
	// USSD runs a USSD request: a code, or a reply to (or with cancel the
	// end of) an open session. Errors carry simgate codes.
	USSD(ctx context.Context, name, code, session string, cancel bool) (simgate.USSDResult, error)
}

// Nodes lists the nodes sharing the database. *cluster.Cluster satisfies
// it.
type Nodes interface {
	Nodes() []simgate.NodeStatus
}

// Messages reads the queue. *queue.Dispatcher satisfies it.
type Messages interface {
	ListMessages(ctx context.Context, f simgate.MessageFilter) ([]*simgate.Message, string, error)
	// Message returns a message with its parts and events; CodeNotFound.
	Message(ctx context.Context, id string) (*simgate.Message, error)
	Stats(ctx context.Context) (simgate.QueueStats, error)
}

// Records lists inbound SMS and verifications. *store.DB satisfies it.
type Records interface {
	RecentInboundMessages(ctx context.Context, limit int) ([]*simgate.InboundMessage, error)
	RecentVerifications(ctx context.Context, limit int) ([]*simgate.Verification, error)
}

// History reads the hourly rollups that the charts show. *store.DB
// satisfies it.
type History interface {
	// ModemHours returns every modem's rollups for the hours that began at
	// or after since, oldest first.
	ModemHours(ctx context.Context, since time.Time) ([]simgate.ModemHour, error)
	// QueueHours returns the queue's rollups for the hours that began at or
	// after since, oldest first.
	QueueHours(ctx context.Context, since time.Time) ([]simgate.QueueHour, error)
	// Balances returns every modem's balance readings taken at or after
	// since, oldest first.
	Balances(ctx context.Context, since time.Time) ([]simgate.BalanceReading, error)
}

// Options configure a Console. Every service is required.
type Options struct {
	Keys     Keys
	Sessions Sessions
	Modems   Modems
	// Nodes, when set, adds the nodes sharing the database to the modems
	// page (shown when there are several).
	Nodes    Nodes
	Messages Messages
	Records  Records
	History  History
	// Prefix is the path the console is mounted at (default "/console/").
	Prefix string
	// SessionTTL is how long a login lasts (default 12 h).
	SessionTTL time.Duration
	// Refresh is how often the pages refresh themselves with JavaScript
	// (default 5 s).
	Refresh time.Duration
	// DrainTimeout bounds how long the drain button waits for the sends in
	// flight (default 60 s).
	DrainTimeout time.Duration
	Now          simgate.Clock
	Logger       *slog.Logger
}

// Failed-login limit per client address.
const (
	LoginFailures        = 5
	LoginFailureInterval = 12 * time.Second
	// maxLoginClients bounds the addresses remembered; past it they are
	// forgotten all at once, which only ever makes the limit more lenient.
	maxLoginClients = 10_000
)

// Cookie names. The login cookie holds the login form's CSRF token.
const (
	SessionCookie = "simgate_session"
	loginCookie   = "simgate_login"
)

// ContentSecurityPolicy is sent with every console response.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console serves the admin console.
type Console struct {
	opts  Options
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux

	failMu   sync.Mutex
	failures map[string]*rate.Limiter // failed logins by client address
}

var pageNames = []string{"modems", "ussd", "queue", "messages", "message", "inbox", "verifications", "error"}

// New returns a Console.
func New(opts Options) (*Console, error) {
	if opts.Keys == nil || opts.Sessions == nil || opts.Modems == nil || opts.Messages == nil || opts.Records == nil ||
		opts.History == nil {
		return nil, errors.New("cannot create console: a service is missing")
	}
	if opts.Prefix == "" {
		opts.Prefix = "/console/"
	}
	if !strings.HasPrefix(opts.Prefix, "/") || !strings.HasSuffix(opts.Prefix, "/") {
		return nil, fmt.Errorf("cannot create console: prefix %q must start and end with /", opts.Prefix)
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.Refresh <= 0 {
		opts.Refresh = 5 * time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{opts: opts, log: opts.Logger, pages: map[string]*template.Template{}, failures: map[string]*rate.Limiter{}}
	funcs := template.FuncMap{"fmtTime": fmtTime, "fmtAge": fmtAge, "pct": func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("cannot parse console templates: %w", err)
		}
		c.pages[name] = t
	}
	t, err := template.New("login").Funcs(funcs).ParseFS(templateFS, "templates/login.html")
	if err != nil {
		return nil, fmt.Errorf("cannot parse console templates: %w", err)
	}
	c.pages["login"] = t

	p := opts.Prefix
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET "+p+"static/", http.StripPrefix(p+"static/", staticHandler(http.FileServerFS(static))))
	m.HandleFunc("GET "+p+"login", c.loginPage)
	m.HandleFunc("POST "+p+"login", c.login)
	m.HandleFunc("POST "+p+"logout", c.auth(c.logout))
	m.HandleFunc("GET "+p+"{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, p+"modems", http.StatusSeeOther)
	})
	m.HandleFunc("GET "+p+"modems", c.auth(c.modems))
	m.HandleFunc("POST "+p+"modems/{id}/ussd", c.auth(c.modemUSSD))
	m.HandleFunc("POST "+p+"modems/{id}/{action}", c.auth(c.modemAction))
	m.HandleFunc("GET "+p+"queue", c.auth(c.queue))
	m.HandleFunc("GET "+p+"messages", c.auth(c.messages))
	m.HandleFunc("GET "+p+"messages/{id}", c.auth(c.message))
	m.HandleFunc("GET "+p+"inbox", c.auth(c.inbox))
	m.HandleFunc("GET "+p+"verifications", c.auth(c.verifications))
	m.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	c.mux = m
	return c, nil
}

// ServeHTTP serves the console, with its security headers on every response.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

func staticHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// session is the logged-in admin of a request.
type session struct {
	tokenHash []byte
	apiKeyID  string
	csrf      string
}

type sessionHandler func(w http.ResponseWriter, r *http.Request, s *session)

// auth finds the request's session, or sends the browser to the login page;
// for a POST it also checks the origin and the CSRF token.
func (c *Console) auth(h sessionHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.session(r)
		if err != nil {
			if simgate.ErrorCode(err) != simgate.CodeNotFound {
				c.log.Error("cannot look up console session", "error", err)
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			if r.Method == http.MethodGet && r.URL.Query().Get("fragment") == "" {
				http.Redirect(w, r, c.opts.Prefix+"login", http.StatusSeeOther)
				return
			}
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			if !sameOrigin(r) {
				http.Error(w, "cross-origin request refused", http.StatusForbidden)
				return
			}
			if !equal(r.PostFormValue("csrf"), s.csrf) {
				c.log.Warn("console request with a bad CSRF token", "path", r.URL.Path, "remote", r.RemoteAddr)
				http.Error(w, "the form is stale or forged: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		h(w, r, s)
	}
}

func (c *Console) session(r *http.Request) (*session, error) {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return nil, simgate.Errorf(simgate.CodeNotFound, "no session")
	}
	sum := sha256.Sum256([]byte(ck.Value))
	id, csrf, err := c.opts.Sessions.FindConsoleSession(r.Context(), sum[:])
	if err != nil {
		return nil, err
	}
	return &session{tokenHash: sum[:], apiKeyID: id, csrf: csrf}, nil
}

// sameOrigin reports whether a POST came from a page of this host: an
// Origin header, when the browser sends one, must name it.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *Console) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	ck := &http.Cookie{
		Name: name, Value: value, Path: c.opts.Prefix,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	}
	if maxAge < 0 {
		ck.MaxAge = -1
	} else {
		ck.MaxAge = int(maxAge.Seconds())
	}
	http.SetCookie(w, ck)
}

// loginView is what the login page shows.
type loginView struct {
	Base, CSRF, Error string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, err := c.session(r); err == nil {
		http.Redirect(w, r, c.opts.Prefix+"modems", http.StatusSeeOther)
		return
	}
	c.renderLogin(w, http.StatusOK, "")
}

func (c *Console) renderLogin(w http.ResponseWriter, status int, msg string) {
	token := randomToken()
	c.setCookie(w, loginCookie, token, 30*time.Minute)
	c.render(w, status, c.pages["login"], "login", loginView{Base: c.opts.Prefix, CSRF: token, Error: msg})
}

// loginLimiter returns the failed-login bucket of the request's client.
func (c *Console) loginLimiter(r *http.Request) *rate.Limiter {
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		addr = r.RemoteAddr
	}
	c.failMu.Lock()
	defer c.failMu.Unlock()
	l := c.failures[addr]
	if l == nil {
		if len(c.failures) >= maxLoginClients {
			clear(c.failures)
		}
		l = rate.NewLimiter(rate.Every(LoginFailureInterval), LoginFailures)
		c.failures[addr] = l
	}
	return l
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	lim := c.loginLimiter(r)
	now := c.opts.Now()
	// A try is reserved before the key is looked at, so that concurrent
	// failures cannot all pass the check before any of them is counted; a
	// good key gives it back.
	try := lim.ReserveN(now, 1)
	if !try.OK() || try.DelayFrom(now) > 0 {
		secs := int((try.DelayFrom(now) + time.Second).Seconds())
		try.CancelAt(now)
		// Refused before the key is looked at, right or wrong.
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		c.renderLogin(w, http.StatusTooManyRequests,
			fmt.Sprintf("Too many failed logins from your address. Try again in %d seconds.", secs))
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || !sameOrigin(r) || !equal(r.PostFormValue("csrf"), ck.Value) {
		try.CancelAt(now)
		c.renderLogin(w, http.StatusForbidden, "The login form expired. Try again.")
		return
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	sum := sha256.Sum256([]byte(key))
	k, err := c.opts.Keys.FindAPIKeyByHash(r.Context(), sum[:])
	if err != nil && simgate.ErrorCode(err) != simgate.CodeNotFound {
		try.CancelAt(now)
		c.log.Error("cannot look up API key", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if k == nil || !k.Has(simgate.ScopeAdmin) {
		// The reserved try is spent. The key itself is never logged.
		c.log.Warn("console login refused", "remote", r.RemoteAddr, "known_key", k != nil)
		c.renderLogin(w, http.StatusUnauthorized, "That is not a valid admin API key.")
		return
	}
	try.CancelAt(now)
	token, csrf := randomToken(), randomToken()
	th := sha256.Sum256([]byte(token))
	if err := c.opts.Sessions.CreateConsoleSession(r.Context(), th[:], k.ID, csrf, c.opts.SessionTTL); err != nil {
		c.log.Error("cannot create console session", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	c.log.Info("console login", "key", k.ID, "remote", r.RemoteAddr)
	c.setCookie(w, loginCookie, "", -1)
	c.setCookie(w, SessionCookie, token, c.opts.SessionTTL)
	http.Redirect(w, r, c.opts.Prefix+"modems", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := c.opts.Sessions.DeleteConsoleSession(r.Context(), s.tokenHash); err != nil {
		c.log.Error("cannot delete console session", "error", err)
	}
	c.setCookie(w, SessionCookie, "", -1)
	http.Redirect(w, r, c.opts.Prefix+"login", http.StatusSeeOther)
}

// menuItem is one entry of the navigation.
type menuItem struct{ Path, Label string }

var menu = []menuItem{
	{"modems", "Modems"}, {"queue", "Queue"}, {"messages", "Messages"}, {"inbox", "Inbox"}, {"verifications", "Verifications"},
}

// view is what every page's layout gets.
type view struct {
	Base, Title, Nav string
	Menu             []menuItem
	CSRF             string
	Flash, Error     string
	Refresh          int
	FragmentURL      string
	Now              time.Time
	Data             any
}

// page renders a page, or only its live part for ?fragment=1.
func (c *Console) page(w http.ResponseWriter, r *http.Request, s *session, name, nav, title string, data any) {
	v := view{
		Base: c.opts.Prefix, Title: title, Nav: nav, Menu: menu, CSRF: s.csrf,
		Flash: c.flash(r), Refresh: int(c.opts.Refresh.Seconds()), Now: c.opts.Now(), Data: data,
	}
	q := url.Values{"fragment": {"1"}}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		q.Set("cursor", cur)
	}
	v.FragmentURL = r.URL.Path + "?" + q.Encode()
	tmpl := "layout"
	if r.URL.Query().Get("fragment") != "" {
		tmpl = "live"
	}
	c.render(w, http.StatusOK, c.pages[name], tmpl, v)
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, msg := http.StatusInternalServerError, "Something went wrong; see the server's log."
	switch simgate.ErrorCode(err) {
	case simgate.CodeNotFound:
		status, msg = http.StatusNotFound, simgate.ErrorMessage(err)
	case simgate.CodeInvalid, simgate.CodeConflict:
		status, msg = http.StatusBadRequest, simgate.ErrorMessage(err)
	default:
		c.log.Error("console request failed", "path", r.URL.Path, "error", err)
	}
	v := view{Base: c.opts.Prefix, Title: http.StatusText(status), Menu: menu, CSRF: s.csrf, Error: msg, Now: c.opts.Now()}
	c.render(w, status, c.pages["error"], "layout", v)
}

// render executes into a buffer first, so that a template error is a clean
// 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, status int, t *template.Template, name string, data any) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		c.log.Error("cannot render console page", "template", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// modemsView is the modems page: the table, then each modem's charts.
type modemsView struct {
	// Nodes are the nodes sharing the database, shown when there are
	// several.
	Nodes   []simgate.NodeStatus
	Modems  []simgate.ModemStatus
	History []modemHistory
	// NoHistory says the charts could not be read; the table and its
	// buttons work without them.
	NoHistory bool
}

func (c *Console) modems(w http.ResponseWriter, r *http.Request, s *session) {
	v := modemsView{Modems: c.opts.Modems.Status()}
	if c.opts.Nodes != nil {
		if nodes := c.opts.Nodes.Nodes(); len(nodes) > 1 {
			v.Nodes = nodes
		}
	}
	start := chartStart(c.opts.Now())
	hours, err := c.opts.History.ModemHours(r.Context(), start)
	var balances []simgate.BalanceReading
	if err == nil {
		balances, err = c.opts.History.Balances(r.Context(), start)
	}
	if err != nil {
		c.log.Error("cannot read the modems' history", "error", err)
		v.NoHistory = true
	} else {
		for n, m := range v.Modems {
			v.History = append(v.History, modemCharts(n, m.ID, start, hours, balances))
		}
	}
	c.page(w, r, s, "modems", "modems", "Modems", v)
}

func (c *Console) modemAction(w http.ResponseWriter, r *http.Request, s *session) {
	id, action := r.PathValue("id"), r.PathValue("action")
	var err error
	switch action {
	case "enable":
		err = c.opts.Modems.Enable(id)
	case "disable":
		err = c.opts.Modems.Disable(id)
	case "drain":
		ctx, cancel := context.WithTimeout(r.Context(), c.opts.DrainTimeout)
		err = c.opts.Modems.Drain(ctx, id)
		cancel()
	default:
		c.fail(w, r, s, simgate.Errorf(simgate.CodeNotFound, "no action %q", action))
		return
	}
	if err != nil {
		c.log.Warn("console modem action failed", "modem", id, "action", action, "key", s.apiKeyID, "error", err)
		c.fail(w, r, s, simgate.Errorf(simgate.CodeConflict, "cannot %s %s: %v", action, id, err))
		return
	}
	c.log.Info("console modem action", "modem", id, "action", action, "key", s.apiKeyID)
	http.Redirect(w, r, c.opts.Prefix+"modems?"+url.Values{"done": {action}, "modem": {id}}.Encode(), http.StatusSeeOther)
}

// doneText are the only messages a page shows after an action, by the code
// in ?done=: the text of a link someone else made is never shown.
var doneText = map[string]string{"enable": "enabled", "disable": "disabled", "drain": "drained and disabled"}

// flash is the message of ?done=CODE&modem=NAME, for a known code and a
// configured modem; "" otherwise.
func (c *Console) flash(r *http.Request) string {
	q := r.URL.Query()
	text, ok := doneText[q.Get("done")]
	if !ok {
		return ""
	}
	for _, m := range c.opts.Modems.Status() {
		if m.ID == q.Get("modem") {
			return m.ID + " " + text + "."
		}
	}
	return ""
}

// ussdView is the answer to a USSD request.
type ussdView struct {
	ModemID, Code string
	Result        simgate.USSDResult
}

// modemUSSD sends the form's USSD code (or the reply to, or the cancel of,
// the session an earlier answer opened) and shows the network's answer. The
// answer goes into the page, never into a URL.
func (c *Console) modemUSSD(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	code, session := r.PostFormValue("code"), r.PostFormValue("session")
	cancel := r.PostFormValue("cancel") != ""
	if session != "" {
		code = r.PostFormValue("reply")
	}
	res, err := c.opts.Modems.USSD(r.Context(), id, code, session, cancel)
	if err != nil {
		c.log.Warn("console USSD failed", "modem", id, "key", s.apiKeyID, "error", err)
		c.fail(w, r, s, err)
		return
	}
	c.log.Info("console USSD", "modem", id, "status", res.Status, "key", s.apiKeyID)
	c.page(w, r, s, "ussd", "modems", "USSD on "+id, ussdView{ModemID: id, Code: code, Result: res})
}

// queueView is the queue page.
type queueView struct {
	Priorities []simgate.Priority
	Rows       []queueRow
	OldestAt   time.Time
	OldestAge  time.Duration
	Stats      simgate.QueueStats
	Charts     []template.HTML
}

type queueRow struct {
	Status simgate.MessageStatus
	Counts []int
	Total  int
}

func (c *Console) queue(w http.ResponseWriter, r *http.Request, s *session) {
	st, err := c.opts.Messages.Stats(r.Context())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	v := queueView{
		Priorities: []simgate.Priority{simgate.PriorityVerification, simgate.PriorityHigh, simgate.PriorityNormal, simgate.PriorityLow},
		OldestAt:   st.OldestQueuedAt, OldestAge: st.OldestQueuedAge, Stats: st,
	}
	for _, status := range []simgate.MessageStatus{simgate.StatusScheduled, simgate.StatusAccepted, simgate.StatusQueued, simgate.StatusSending, simgate.StatusSent} {
		row := queueRow{Status: status}
		for _, p := range v.Priorities {
			n := st.Depth[status][p]
			row.Counts = append(row.Counts, n)
			row.Total += n
		}
		v.Rows = append(v.Rows, row)
	}
	start := chartStart(c.opts.Now())
	hours, err := c.opts.History.QueueHours(r.Context(), start)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	v.Charts = queueCharts(start, hours)
	c.page(w, r, s, "queue", "queue", "Queue", v)
}

func (c *Console) messages(w http.ResponseWriter, r *http.Request, s *session) {
	ms, next, err := c.opts.Messages.ListMessages(r.Context(), simgate.MessageFilter{Cursor: r.URL.Query().Get("cursor"), Limit: 50})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.page(w, r, s, "messages", "messages", "Recent messages", struct {
		Messages []*simgate.Message
		Next     string
	}{ms, next})
}

func (c *Console) message(w http.ResponseWriter, r *http.Request, s *session) {
	m, err := c.opts.Messages.Message(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if m.VerificationID != "" {
		m.Text = "" // it held a code; the store erases it too once sent
	}
	c.page(w, r, s, "message", "messages", "Message "+m.ID, m)
}

func (c *Console) inbox(w http.ResponseWriter, r *http.Request, s *session) {
	ms, err := c.opts.Records.RecentInboundMessages(r.Context(), 100)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.page(w, r, s, "inbox", "inbox", "Inbound SMS", ms)
}

func (c *Console) verifications(w http.ResponseWriter, r *http.Request, s *session) {
	vs, err := c.opts.Records.RecentVerifications(r.Context(), 100)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	for _, v := range vs {
		v.CodeHash = nil
	}
	c.page(w, r, s, "verifications", "verifications", "Verifications", vs)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func fmtAge(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}
