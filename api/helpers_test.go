package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/verify"
)

// Compile-time checks that the real implementations fit the interfaces.
var (
	_ api.KeyStore         = (*store.DB)(nil)
	_ api.InboxService     = (*store.DB)(nil)
	_ api.IdempotencyStore = (*store.DB)(nil)
	_ api.AlertStore       = (*store.DB)(nil)
	_ api.BudgetStore      = (*store.DB)(nil)
	_ api.Pinger           = (*store.DB)(nil)
	_ api.VerifyService    = (*verify.Service)(nil)
	_ verify.Store         = (*store.DB)(nil)
)

// clock is a settable clock shared by the store, verify and the server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeQueue stands in for the dispatcher only; it is the "handset" too:
// the texts it is given are what the recipient would read.
type fakeQueue struct {
	mu       sync.Mutex
	entries  []*fakeEntry // in the order the SMS were handed over
	optedOut map[string]bool
	// gate, when set, makes Enqueue wait for it; entered is signalled first.
	gate    chan struct{}
	entered chan struct{}
	n       int
}

// fakeEntry is one SMS: the queue's record of it (for Prepare the caller's
// message, whose ID the store sets when it saves it) and its plain text, as
// the handset will read it.
type fakeEntry struct {
	m    *simgate.Message
	text string
}

func newFakeQueue() *fakeQueue {
	return &fakeQueue{optedOut: map[string]bool{}}
}

func (q *fakeQueue) Enqueue(ctx context.Context, m *simgate.Message) error {
	q.mu.Lock()
	gate, entered := q.gate, q.entered
	q.mu.Unlock()
	if gate != nil {
		entered <- struct{}{}
		<-gate
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.optedOut[m.To] && m.VerificationID == "" {
		return simgate.Errorf(simgate.CodeForbidden, "%s opted out", m.To)
	}
	q.n++
	m.ID = fmt.Sprintf("msg_%04d", q.n)
	m.Status = simgate.StatusQueued
	m.CreatedAt, m.UpdatedAt = time.Now().UTC(), time.Now().UTC()
	c := *m
	q.entries = append(q.entries, &fakeEntry{m: &c, text: m.Text})
	return nil
}

// Prepare stands in for the dispatcher's: the store saves the message with
// its verification, in the state Prepare gives it (queued, its part too).
// Like the real one it keeps the code out of the text the store sees.
func (q *fakeQueue) Prepare(m *simgate.Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if m.Priority == 0 {
		m.Priority = simgate.PriorityVerification
	}
	m.Status, m.Reason = simgate.StatusQueued, "accepted"
	m.Parts = []simgate.Part{{Status: simgate.StatusQueued}}
	q.entries = append(q.entries, &fakeEntry{m: m, text: m.Text})
	m.Text = "sealed by the fake queue"
	return nil
}

func (q *fakeQueue) Wake() {}

// findLocked returns the entry of message id, or nil.
func (q *fakeQueue) findLocked(id string) *fakeEntry {
	for _, e := range q.entries {
		if e.m.ID == id {
			return e
		}
	}
	return nil
}

func (q *fakeQueue) Cancel(ctx context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.findLocked(id)
	if e == nil {
		return simgate.Errorf(simgate.CodeNotFound, "message %q not found", id)
	} else if e.m.Status != simgate.StatusQueued {
		return simgate.Errorf(simgate.CodeConflict, "message %s is %s", id, e.m.Status)
	}
	e.m.Status = simgate.StatusCanceled
	return nil
}

func (q *fakeQueue) Message(ctx context.Context, id string) (*simgate.Message, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.findLocked(id)
	if e == nil {
		return nil, simgate.Errorf(simgate.CodeNotFound, "message %q not found", id)
	}
	c := *e.m
	return &c, nil
}

// ListMessages pages newest first; the cursor is the index to start at.
func (q *fakeQueue) ListMessages(ctx context.Context, f simgate.MessageFilter) ([]*simgate.Message, string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var all []*simgate.Message
	for i := len(q.entries) - 1; i >= 0; i-- {
		m := q.entries[i].m
		if (f.Status == "" || m.Status == f.Status) && (f.To == "" || m.To == f.To) &&
			(f.VerificationID == "" || m.VerificationID == f.VerificationID) {
			c := *m
			all = append(all, &c)
		}
	}
	start := 0
	if f.Cursor != "" {
		if _, err := fmt.Sscan(f.Cursor, &start); err != nil {
			return nil, "", simgate.Errorf(simgate.CodeInvalid, "bad cursor")
		}
	}
	start = min(start, len(all))
	end := min(start+f.Limit, len(all))
	next := ""
	if end < len(all) {
		next = fmt.Sprint(end)
	}
	return all[start:end], next, nil
}

// texts returns what the handset of number received, oldest first.
func (q *fakeQueue) texts(number string) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []string
	for _, e := range q.entries {
		if e.m.To == number {
			out = append(out, e.text)
		}
	}
	return out
}

var codeRE = regexp.MustCompile(`code is ([0-9]+)`)

// lastCode reads the code from the newest SMS to number, as its owner would.
func (q *fakeQueue) lastCode(t testing.TB, number string) string {
	t.Helper()
	ts := q.texts(number)
	if len(ts) == 0 {
		t.Fatalf("no SMS to %s", number)
	}
	m := codeRE.FindStringSubmatch(ts[len(ts)-1])
	if m == nil {
		t.Fatalf("no code in %q", ts[len(ts)-1])
	}
	return m[1]
}

// fakeModems stands in for the modem pool (hardware, not the database).
type fakeModems struct {
	mu      sync.Mutex
	modems  []simgate.ModemStatus
	actions []string
}

func (f *fakeModems) Status() []simgate.ModemStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]simgate.ModemStatus(nil), f.modems...)
}

func (f *fakeModems) Ready() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.modems {
		if m.State == simgate.ModemReady {
			n++
		}
	}
	return n
}

func (f *fakeModems) set(name string, st simgate.ModemState, action string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, action+" "+name)
	for i := range f.modems {
		if f.modems[i].ID == name {
			f.modems[i].State = st
			return nil
		}
	}
	return fmt.Errorf("no modem %q", name)
}

func (f *fakeModems) Enable(name string) error  { return f.set(name, simgate.ModemReady, "enable") }
func (f *fakeModems) Disable(name string) error { return f.set(name, simgate.ModemDisabled, "disable") }
func (f *fakeModems) Drain(ctx context.Context, name string) error {
	return f.set(name, simgate.ModemDisabled, "drain")
}
func (f *fakeModems) Reset(ctx context.Context, name string) error {
	return f.set(name, simgate.ModemReady, "reset")
}

// USSD records the request and answers as a network would: a session for
// "*111#", done otherwise.
func (f *fakeModems) USSD(ctx context.Context, name, code, session string, cancel bool) (simgate.USSDResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, fmt.Sprintf("ussd %s code=%q session=%q cancel=%v", name, code, session, cancel))
	if code == "*111#" {
		return simgate.USSDResult{Status: simgate.USSDFurtherAction, Text: "1 Balance", Session: "ussd_1"}, nil
	}
	return simgate.USSDResult{Status: simgate.USSDDone, Text: "answer to " + code}, nil
}

// env is a server over a real SQLite store in t.TempDir.
type env struct {
	t      testing.TB
	db     *store.DB
	dbPath string
	clock  *clock
	queue  *fakeQueue
	modems *fakeModems
	logs   *syncBuffer
	srv    *api.Server
	ts     *httptest.Server
	verify *verify.Service
	// responses collects every response body, for the code leak test.
	respMu    sync.Mutex
	responses []string
}

type envOpts struct {
	api    func(*api.Options)
	verify func(*verify.Options)
	// dbPath and clock, when set, are used instead of a new database and
	// clock: a server started again over the same file.
	dbPath string
	clock  *clock
}

func newEnv(t testing.TB, eo envOpts) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}, queue: newFakeQueue(),
		logs: &syncBuffer{}}
	e.modems = &fakeModems{modems: []simgate.ModemStatus{
		{ID: "modem0", State: simgate.ModemReady, SignalDBm: -71, SignalBars: 4, Operator: "Test"},
		{ID: "modem1", State: simgate.ModemDown, Reason: "no SIM"},
	}}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.dbPath = filepath.Join(t.TempDir(), "simgate.db")
	if eo.dbPath != "" {
		e.dbPath = eo.dbPath
	}
	if eo.clock != nil {
		e.clock = eo.clock
	}
	db, err := store.Open(context.Background(), e.dbPath, store.Options{Now: e.clock.Now, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	e.db = db
	vo := verify.Options{Secret: bytes.Repeat([]byte("s"), 32), Now: e.clock.Now, Logger: logger}
	if eo.verify != nil {
		eo.verify(&vo)
	}
	if e.verify, err = verify.New(db, e.queue, vo); err != nil {
		t.Fatal(err)
	}
	opts := api.Options{
		Keys: db, Verify: e.verify, Services: e.verify, Messages: e.queue, Inbox: db, Modems: e.modems,
		Idempotency: db, Alerts: db, Budgets: db, DB: db, MinReadyModems: 1,
		Numbers: simgate.NumberPolicy{AllowAllCountries: true},
		Now:     e.clock.Now, Logger: logger,
	}
	if eo.api != nil {
		eo.api(&opts)
	}
	if e.srv, err = api.NewServer(opts); err != nil {
		t.Fatal(err)
	}
	e.ts = httptest.NewServer(e.srv.Handler())
	t.Cleanup(func() {
		e.ts.Close()
		db.Close()
	})
	return e
}

// key creates an API key with the given scopes and returns it.
func (e *env) key(scopes ...simgate.Scope) string {
	e.t.Helper()
	return e.serviceKey(nil, scopes...)
}

// serviceKey creates an API key limited to services (nil: to none) with
// the given scopes and returns it.
func (e *env) serviceKey(services []string, scopes ...simgate.Scope) string {
	e.t.Helper()
	key, k, err := api.NewAPIKey("test", scopes)
	if err != nil {
		e.t.Fatal(err)
	}
	k.Services = services
	if err := e.db.CreateAPIKey(context.Background(), k); err != nil {
		e.t.Fatal(err)
	}
	return key
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("bad JSON %q: %v", r.body, err)
	}
	return m
}

// do sends a request; body is marshalled unless it is a string or nil, and
// sent as application/json unless header says otherwise.
func (e *env) do(method, path, key string, body any, header ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	e.respMu.Lock()
	e.responses = append(e.responses, string(b))
	e.respMu.Unlock()
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// wantStatus fails unless r has the status, and, for problems, the code.
func wantStatus(t testing.TB, r resp, status int, code ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if len(code) > 0 {
		if got := r.header.Get("Content-Type"); got != "application/problem+json" {
			t.Fatalf("Content-Type = %q, want application/problem+json", got)
		}
		if got := r.json(t)["code"]; got != code[0] {
			t.Fatalf("code = %v, want %s; body %s", got, code[0], r.body)
		}
	}
}

func sorted(xs []string) []string {
	xs = append([]string(nil), xs...)
	sort.Strings(xs)
	return xs
}
