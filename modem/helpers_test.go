package modem

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/internal/charsets"
	"github.com/simgate/simgate/modem/sim"
)

// testDeadline bounds every test that talks to modems, so that a hang fails
// the test instead of the whole run.
const testDeadline = 60 * time.Second

// testCtx returns a context that ends with the test or at testDeadline.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	return ctx
}

// startSims starts virtual modems in a temporary directory. Submits and
// reports are fast unless the config says otherwise.
func startSims(t testing.TB, cfgs ...sim.Config) (*sim.Network, []*sim.Modem, string) {
	t.Helper()
	if len(cfgs) == 0 {
		cfgs = []sim.Config{{}}
	}
	for i := range cfgs {
		if cfgs[i].SubmitLatency == 0 {
			cfgs[i].SubmitLatency = 5 * time.Millisecond
		}
		if cfgs[i].ReportDelay == 0 {
			cfgs[i].ReportDelay = 20 * time.Millisecond
		}
	}
	// The sim encodes and decodes on its own goroutines: build the
	// library's lazy charset tables before either side runs.
	charsets.Warm()
	dir := t.TempDir()
	n := sim.NewNetwork()
	mods, err := n.Start(dir, cfgs...)
	if err != nil {
		t.Fatalf("cannot start virtual modems: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("closing virtual modems: %v", err)
		}
	})
	return n, mods, dir
}

// testLogger logs to the test output when -v is given, else discards.
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

// events collects what a modem hands to its subscriber. Fail makes
// HandleEvent refuse events while set.
type events struct {
	mu     sync.Mutex
	evs    []Event
	fail   bool
	change chan struct{}
}

func newEvents() *events { return &events{change: make(chan struct{})} }

func (e *events) HandleEvent(ctx context.Context, ev Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail {
		return errRefused
	}
	e.evs = append(e.evs, ev)
	close(e.change)
	e.change = make(chan struct{})
	return nil
}

var errRefused = &Error{Op: "test", Class: simgate.ClassTransient}

func (e *events) setFail(f bool) {
	e.mu.Lock()
	e.fail = f
	e.mu.Unlock()
}

// wait waits until n events of kind k arrived and returns them.
func (e *events) wait(t testing.TB, k EventKind, n int) []Event {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		e.mu.Lock()
		var got []Event
		for _, ev := range e.evs {
			if ev.Kind == k {
				got = append(got, ev)
			}
		}
		ch := e.change
		e.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("got %d events of kind %d, want %d", len(got), k, n)
		}
	}
}

func (e *events) count(k EventKind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.evs {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

// testOptions are fast options pointing the identity search at dir.
func testOptions(t testing.TB, dir string, sub Subscriber) Options {
	return Options{
		Logger:          testLogger(t),
		Subscriber:      sub,
		CommandTimeout:  2 * time.Second,
		Candidates:      []string{filepath.Join(dir, "*")},
		MinBackoff:      50 * time.Millisecond,
		MaxBackoff:      200 * time.Millisecond,
		QuarantineAfter: 50,
		QuarantineFor:   time.Second,
		LateWait:        2 * time.Second,
	}
}

// openModem opens a driver on a virtual modem and closes it with the test.
func openModem(t testing.TB, cfg Config, opts Options) *Modem {
	t.Helper()
	m, err := Open(testCtx(t), cfg, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", cfg.Device, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// eventually polls cond until it holds or 20 s passed.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logHas counts the command lines in a virtual modem's log that start with
// prefix.
func logHas(m *sim.Modem, prefix string) int {
	n := 0
	for _, l := range m.Log() {
		if strings.HasPrefix(strings.ToUpper(l), strings.ToUpper(prefix)) {
			n++
		}
	}
	return n
}
