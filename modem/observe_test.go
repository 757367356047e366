package modem

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

type observer struct {
	mu      sync.Mutex
	submits []string
	states  []simgate.ModemState
}

func (o *observer) ObserveSubmit(modem string, d time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := "ok"
	if err != nil {
		r = "error"
	}
	o.submits = append(o.submits, modem+":"+r)
}

func (o *observer) ModemStateChanged(ctx context.Context, s simgate.ModemStatus) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.states = append(o.states, s.State)
}

func (o *observer) seen(st simgate.ModemState) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.states {
		if s == st {
			return true
		}
	}
	return false
}

// The pool tells its observers of each submit and of state changes: a
// modem that is unplugged goes down, and comes back up when replugged.
func TestPoolObservers(t *testing.T) {
	_, mods, dir := startSims(t)
	o := &observer{}
	p := NewPool(PoolOptions{Options: testOptions(t, dir, newEvents()), WatchInterval: 10 * time.Millisecond})
	p.ObserveSubmits(o)
	p.ObserveStates(o)
	openPool(t, p, mods, nil)
	ctx := testCtx(t)
	if _, err := p.Send(ctx, simgate.SendRequest{To: "+15551234567", Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	if got := len(o.submits); got != 1 || o.submits[0] != "m0:ok" {
		t.Fatalf("submits %v", o.submits)
	}
	o.mu.Unlock()
	eventually(t, "ready reported", func() bool { return o.seen(simgate.ModemReady) })
	if err := mods[0].Unplug(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "down reported", func() bool { return o.seen(simgate.ModemDown) })
	if _, err := mods[0].Replug(""); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	o.states = nil
	o.mu.Unlock()
	eventually(t, "ready again", func() bool { return o.seen(simgate.ModemReady) })
	p.Close()
	o.mu.Lock()
	n := len(o.states)
	o.mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.states) != n {
		t.Fatal("state reported after Close")
	}
}
