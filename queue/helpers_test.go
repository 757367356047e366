package queue_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/modem/sim"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store"
)

// The wiring cmd will do, checked at compile time.
var (
	_ queue.Sender     = (*modem.Pool)(nil)
	_ queue.Store      = (*store.DB)(nil)
	_ modem.UsageStore = (*store.DB)(nil)
	_ modem.Subscriber = (*forward)(nil)
)

// testDeadline bounds every test here, so that a hang fails the test.
const testDeadline = 60 * time.Second

// testClock is the wall clock, or base when it is set, plus an offset that
// tests move forward instead of sleeping.
type testClock struct {
	mu   sync.Mutex
	base time.Time // zero: the wall clock
	off  time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.base.IsZero() {
		return time.Now().Add(c.off)
	}
	return c.base.Add(c.off)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// forward hands modem events to the dispatcher, as cmd will.
type forward struct {
	q atomic.Pointer[queue.Dispatcher]
}

func (f *forward) HandleEvent(ctx context.Context, ev modem.Event) error {
	q := f.q.Load()
	if q == nil {
		return errors.New("no dispatcher yet")
	}
	switch ev.Kind {
	case modem.EventReport:
		return q.HandleReport(ctx, ev.Report)
	case modem.EventInbound:
		return q.HandleInbound(ctx, ev.Inbound)
	}
	return nil
}

// env is a database, virtual modems, a pool on them and, once openQueue ran,
// a dispatcher.
type env struct {
	t      testing.TB
	ctx    context.Context
	clk    *testClock
	dbPath string
	db     *store.DB
	net    *sim.Network
	mods   []*sim.Modem
	pool   *modem.Pool
	fwd    *forward
	q      *queue.Dispatcher
}

type envConfig struct {
	modems int
	sim    func(i int, c *sim.Config)
	pool   func(o *modem.PoolOptions)
	modem  func(i int, c *modem.Config)
	dbPath string // reuse a database
	sync   string // store.Options.Synchronous
}

func newEnv(t testing.TB, cfg envConfig) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, clk: &testClock{}, fwd: &forward{}}

	dir := t.TempDir()
	popts := modem.PoolOptions{Options: modem.Options{
		Logger:          testLogger(t),
		Subscriber:      e.fwd,
		CommandTimeout:  2 * time.Second,
		Candidates:      []string{filepath.Join(dir, "*")},
		MinBackoff:      50 * time.Millisecond,
		MaxBackoff:      200 * time.Millisecond,
		QuarantineAfter: 50,
		QuarantineFor:   time.Second,
		LateWait:        2 * time.Second,
	}}
	if cfg.pool != nil {
		cfg.pool(&popts)
	}
	e.dbPath = cfg.dbPath
	if e.dbPath == "" {
		e.dbPath = filepath.Join(t.TempDir(), "simgate.db")
	}
	var err error
	e.db, err = store.Open(ctx, e.dbPath, store.Options{Now: e.clk.Now, Synchronous: cfg.sync})
	if err != nil {
		t.Fatalf("cannot open database: %v", err)
	}
	t.Cleanup(func() { e.db.Close() })
	popts.Usage = e.db
	// NewPool builds the GSM charset tables the sim also uses, before either
	// runs (a data race in the library otherwise).
	e.pool = modem.NewPool(popts)

	n := max(cfg.modems, 1)
	scfgs := make([]sim.Config, n)
	for i := range scfgs {
		scfgs[i] = sim.Config{Name: fmt.Sprintf("modem%d", i), SubmitLatency: 5 * time.Millisecond, ReportDelay: 20 * time.Millisecond}
		if cfg.sim != nil {
			cfg.sim(i, &scfgs[i])
		}
	}
	e.net = sim.NewNetwork()
	mods, err := e.net.Start(dir, scfgs...)
	if err != nil {
		t.Fatalf("cannot start virtual modems: %v", err)
	}
	e.mods = mods
	t.Cleanup(func() { e.net.Close() })

	var mcfgs []modem.Config
	for i, m := range mods {
		c := modem.Config{Name: fmt.Sprintf("m%d", i), Device: m.Path()}
		if cfg.modem != nil {
			cfg.modem(i, &c)
		}
		mcfgs = append(mcfgs, c)
	}
	if err := e.pool.Open(ctx, mcfgs); err != nil {
		t.Fatalf("pool Open: %v", err)
	}
	t.Cleanup(func() { e.pool.Close() })
	if err := e.pool.WaitReady(ctx, len(mcfgs)); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return e
}

// newQueue makes the dispatcher with test defaults (no sweeper, the env's
// database and the pool as Store and Sender unless opts has them) without
// opening it.
func (e *env) newQueue(opts queue.Options) *queue.Dispatcher {
	if opts.Store == nil {
		opts.Store = e.db
	}
	opts.Now = e.clk.Now
	if opts.Sender == nil {
		opts.Sender = e.pool
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(e.t)
	}
	if opts.Workers == 0 {
		opts.Workers = len(e.mods)
	}
	q, err := queue.New(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.q = q
	e.fwd.q.Store(e.q)
	e.t.Cleanup(func() { e.q.Close() })
	return e.q
}

// openQueue makes and opens the dispatcher.
func (e *env) openQueue(opts queue.Options) *queue.Dispatcher {
	q := e.newQueue(opts)
	if err := q.Open(e.ctx); err != nil {
		e.t.Fatalf("queue Open: %v", err)
	}
	return q
}

func (e *env) enqueue(m *simgate.Message) *simgate.Message {
	e.t.Helper()
	if err := e.q.Enqueue(e.ctx, m); err != nil {
		e.t.Fatalf("Enqueue(%s): %v", m.To, err)
	}
	return m
}

// waitStatus waits until message id has status want and returns it.
func (e *env) waitStatus(id string, want simgate.MessageStatus) *simgate.Message {
	e.t.Helper()
	var m *simgate.Message
	waitFor(e.t, fmt.Sprintf("message %s to be %s", id, want), func() bool {
		var err error
		if m, err = e.db.FindMessage(e.ctx, id); err != nil {
			e.t.Fatal(err)
		}
		return m.Status == want
	}, func() string { return fmt.Sprintf("last: %s %q events %+v", m.Status, m.Reason, m.Events) })
	return m
}

// waitFor polls cond until it holds, failing the test after 30 s.
func waitFor(t testing.TB, what string, cond func() bool, detail func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			d := ""
			if detail != nil {
				d = ": " + detail()
			}
			t.Fatalf("timed out waiting for %s%s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// insertVerification adds a verification row directly: the verify
// package's store methods are not this package's concern.
func (e *env) insertVerification(id, to string, status simgate.VerificationStatus, expires time.Time) {
	e.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+e.dbPath+"?_busy_timeout=5000&_foreign_keys=on")
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	var hash any
	if status == simgate.VerificationPending {
		hash = make([]byte, 32)
	}
	now := e.clk.Now().UnixMilli()
	if _, err := db.Exec(`
		INSERT INTO verifications (id, to_number, status, code_hash, code_length, max_attempts, expires_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, 6, 5, ?, ?, ?)
	`, id, to, status, hash, expires.UnixMilli(), now, now); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) verificationStatus(id string) simgate.VerificationStatus {
	e.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+e.dbPath+"?_busy_timeout=5000")
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	var s simgate.VerificationStatus
	if err := db.QueryRow(`SELECT status FROM verifications WHERE id = ?`, id).Scan(&s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// submissionsTo returns the network's submissions to number.
func (e *env) submissionsTo(number string) []sim.Submission {
	var out []sim.Submission
	for _, s := range e.net.Submissions() {
		if strings.TrimPrefix(s.To, "+") == strings.TrimPrefix(number, "+") {
			out = append(out, s)
		}
	}
	return out
}

func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func hasEvent(m *simgate.Message, status simgate.MessageStatus, reasonPart string) bool {
	for _, ev := range m.Events {
		if ev.Status == status && strings.Contains(ev.Reason, reasonPart) {
			return true
		}
	}
	return false
}

// execSQL runs a statement on the database file directly, for states the
// store's API does not make (another component's tables, a crash).
func (e *env) execSQL(q string, args ...any) {
	e.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+e.dbPath+"?_busy_timeout=5000&_foreign_keys=on")
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q, args...); err != nil {
		e.t.Fatal(err)
	}
}

// newDBEnv is an env with a database and no modems, for a dispatcher whose
// Sender is a fakeSender.
func newDBEnv(t testing.TB) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, clk: &testClock{}, fwd: &forward{}}
	e.dbPath = filepath.Join(t.TempDir(), "simgate.db")
	var err error
	if e.db, err = store.Open(ctx, e.dbPath, store.Options{Now: e.clk.Now}); err != nil {
		t.Fatalf("cannot open database: %v", err)
	}
	t.Cleanup(func() { e.db.Close() })
	return e
}

// fakeSender answers every send with what its function returns, and counts
// the sends. It stands in for the modem pool, not for the database.
type fakeSender struct {
	mu    sync.Mutex
	calls int
	fn    func(req simgate.SendRequest) (simgate.Receipt, error)
}

func (s *fakeSender) Send(ctx context.Context, req simgate.SendRequest) (simgate.Receipt, error) {
	s.mu.Lock()
	s.calls++
	fn := s.fn
	s.mu.Unlock()
	return fn(req)
}

func (s *fakeSender) set(fn func(req simgate.SendRequest) (simgate.Receipt, error)) {
	s.mu.Lock()
	s.fn = fn
	s.mu.Unlock()
}

func (s *fakeSender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// classError is a send error of a class, as the modem package makes them.
type classError struct {
	class simgate.SendClass
	err   error
}

func (e *classError) Error() string {
	return "cannot submit: " + e.class.String() + ": " + e.err.Error()
}
func (e *classError) Unwrap() error                { return e.err }
func (e *classError) SendClass() simgate.SendClass { return e.class }

// noModem answers as modem.Pool does when it has no usable modem: a
// transient error that matches simgate.ErrNoSender, with an empty Receipt.
func noModem(simgate.SendRequest) (simgate.Receipt, error) {
	return simgate.Receipt{}, &classError{class: simgate.ClassTransient,
		err: fmt.Errorf("no modem available: %w", simgate.ErrNoSender)}
}

// fakeObserver counts what the dispatcher reports to metrics.
type fakeObserver struct {
	missing atomic.Int64
}

func (o *fakeObserver) ReportsMissing(n int) { o.missing.Add(int64(n)) }

// countEvents returns how many of m's events have status and a reason
// containing reasonPart.
func countEvents(m *simgate.Message, status simgate.MessageStatus, reasonPart string) int {
	n := 0
	for _, ev := range m.Events {
		if ev.Status == status && strings.Contains(ev.Reason, reasonPart) {
			n++
		}
	}
	return n
}
