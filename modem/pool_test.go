package modem

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/internal/charsets"
	"github.com/simgate/simgate/modem/sim"
)

// memUsage is a UsageStore in a map, for tests.
type memUsage struct {
	mu sync.Mutex
	m  map[string]int
}

func newMemUsage() *memUsage { return &memUsage{m: map[string]int{}} }

func (u *memUsage) LoadUsage(ctx context.Context, modemID, day string) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.m[modemID+"/"+day], nil
}

// startPool starts a pool over the virtual modems, one config per modem
// (by path), and waits until all are ready.
func startPool(t testing.TB, mods []*sim.Modem, dir string, opts PoolOptions, tweak func(i int, c *Config)) *Pool {
	t.Helper()
	if opts.Options.Logger == nil {
		opts.Options = testOptions(t, dir, opts.Options.Subscriber)
	}
	return openPool(t, NewPool(opts), mods, tweak)
}

// openPool opens p on mods, as startPool does.
func openPool(t testing.TB, p *Pool, mods []*sim.Modem, tweak func(i int, c *Config)) *Pool {
	t.Helper()
	var cfgs []Config
	for i, m := range mods {
		c := Config{Name: fmt.Sprintf("m%d", i), Device: m.Path()}
		if tweak != nil {
			tweak(i, &c)
		}
		cfgs = append(cfgs, c)
	}
	ctx := testCtx(t)
	if err := p.Open(ctx, cfgs); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	want := 0
	for _, c := range cfgs {
		if !c.Disabled {
			want++
		}
	}
	if err := p.WaitReady(ctx, want); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return p
}

// 16 modems sending concurrently: every SIM's daily cap holds exactly, also
// counting what it sent before a restart (loaded from the UsageStore).
func TestPoolCapsExactUnderConcurrency(t *testing.T) {
	const modems = 16
	cfgs := make([]sim.Config, modems)
	n, mods, dir := startSims(t, cfgs...)
	usage := newMemUsage()
	today := time.Now().UTC().Format("2006-01-02")
	usage.m["m0/"+today] = 2 // sent before the restart
	caps := map[string]int{}
	total := 0
	p := startPool(t, mods, dir, PoolOptions{Usage: usage}, func(i int, c *Config) {
		c.PerDay = 3 + i%4
		c.PerHour = 100
		caps[c.Name] = c.PerDay
		total += c.PerDay
	})
	total -= 2 // m0 already sent 2
	ctx := testCtx(t)

	const senders, perSender = 32, 5 // 160 attempts for 70 SMS of capacity
	var wg sync.WaitGroup
	var mu sync.Mutex
	okCount, capErrs := 0, 0
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perSender; i++ {
				_, err := p.Send(ctx, simgate.SendRequest{To: "+15557654321", Text: fmt.Sprintf("sender %d message %d", s, i)})
				mu.Lock()
				switch {
				case err == nil:
					okCount++
				case errors.Is(err, ErrCapReached):
					capErrs++
				default:
					t.Errorf("Send: %v", err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if okCount != total || okCount+capErrs != senders*perSender {
		t.Fatalf("sent %d (cap refusals %d), want exactly %d", okCount, capErrs, total)
	}
	perModem := map[string]int{}
	for _, s := range n.Submissions() {
		perModem[s.Modem]++
	}
	for i := range mods {
		name := fmt.Sprintf("m%d", i)
		want := caps[name]
		if name == "m0" {
			want -= 2
		}
		// Sim modems are named modem<i>; pool members m<i>.
		if got := perModem[fmt.Sprintf("modem%d", i)]; got != want {
			t.Errorf("%s sent %d, cap allows %d", name, got, want)
		}
	}
	for _, st := range p.Status() {
		if st.SentToday != st.DailyCap {
			t.Errorf("%s status: sent today %d of %d", st.ID, st.SentToday, st.DailyCap)
		}
	}
}

// Per-minute and per-hour caps are sliding windows of the pool's clock.
func TestPoolSlidingWindows(t *testing.T) {
	_, mods, dir := startSims(t)
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	opts := testOptions(t, dir, nil)
	opts.Now = clock
	p := startPool(t, mods, dir, PoolOptions{Options: opts}, func(i int, c *Config) { c.PerMinute, c.PerHour = 2, 3 })
	ctx := testCtx(t)
	send := func() error {
		_, err := p.Send(ctx, simgate.SendRequest{To: "+15557654321", Text: "x"})
		return err
	}
	for i, step := range []struct {
		advance time.Duration
		wantErr bool
	}{
		{0, false}, {0, false}, {0, true}, // 2 per minute
		{61 * time.Second, false}, {0, true}, // 3 per hour
		{30 * time.Minute, true},
		{30 * time.Minute, false}, // the first two left the hour
	} {
		advance(step.advance)
		err := send()
		if (err != nil) != step.wantErr {
			t.Fatalf("step %d: err = %v, want error %v", i, err, step.wantErr)
		}
		if err != nil && !errors.Is(err, ErrCapReached) {
			t.Fatalf("step %d: err = %v, want ErrCapReached", i, err)
		}
	}
}

// Transient and SIM errors fail over to another modem; errors that are the
// recipient's or ambiguous do not.
func TestPoolFailover(t *testing.T) {
	const to = "+15557654321"
	for _, tc := range []struct {
		name     string
		code     int
		failover bool
	}{
		{"transient", 38, true},
		{"SIM barred", 50, true},
		{"recipient unknown", 21, false},
		{"ambiguous", 332, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, mods, dir := startSims(t, sim.Config{}, sim.Config{})
			// m0 is preferred for the recipient's prefix, and fails.
			p := startPool(t, mods, dir, PoolOptions{}, func(i int, c *Config) {
				if i == 0 {
					c.Prefixes = []string{"+1555"}
				}
			})
			mods[0].SetFaults(sim.Faults{CMSErrorFor: map[string]int{to: tc.code}})
			r, err := p.Send(testCtx(t), simgate.SendRequest{To: to, Text: "hello"})
			if tc.failover {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				if r.ModemID != "m1" || len(r.MRs) != 1 || r.Identity.IMEI != mods[1].Config().IMEI {
					t.Fatalf("receipt = %+v, want m1", r)
				}
				if got := len(n.Submissions()); got != 1 {
					t.Fatalf("submissions = %d, want 1", got)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.CMS != tc.code {
				t.Fatalf("err = %v, want +CMS ERROR %d", err, tc.code)
			}
			if got := logHas(mods[1], "AT+CMGS"); got != 0 {
				t.Fatalf("m1 was tried %d times", got)
			}
		})
	}
}

// Once a send's NotAfter has passed, no modem begins it: not at first, and
// not on the next modem after the first failed for a reason that would
// otherwise fail over.
func TestPoolNotAfter(t *testing.T) {
	const to = "+15557654321"
	n, mods, dir := startSims(t, sim.Config{}, sim.Config{})
	p := startPool(t, mods, dir, PoolOptions{}, func(i int, c *Config) {
		if i == 0 {
			c.Prefixes = []string{"+1555"} // m0 is tried first
		}
	})
	expired := func(err error) bool {
		return simgate.SendClassOf(err) == simgate.ClassExpired && errors.Is(err, ErrExpired)
	}

	r, err := p.Send(testCtx(t), simgate.SendRequest{To: to, Text: "too late", NotAfter: time.Now().Add(-time.Second)})
	if !expired(err) {
		t.Fatalf("past NotAfter: err = %v, want ErrExpired with ClassExpired", err)
	}
	if r.ModemID != "" {
		t.Fatalf("receipt names %s, a modem that sent nothing", r.ModemID)
	}

	mods[0].SetFaults(sim.Faults{CMSErrorFor: map[string]int{to: 38}, SubmitLatency: 300 * time.Millisecond})
	_, err = p.Send(testCtx(t), simgate.SendRequest{To: to, Text: "late after failover", NotAfter: time.Now().Add(100 * time.Millisecond)})
	if !expired(err) {
		t.Fatalf("NotAfter passed during the first attempt: err = %v, want ErrExpired with ClassExpired", err)
	}
	if got := logHas(mods[1], "AT+CMGS"); got != 0 {
		t.Fatalf("m1 was tried %d times after the send expired", got)
	}
	if got := len(n.Submissions()); got != 0 {
		t.Fatalf("submissions = %d, want 0", got)
	}
}

// A resend with the same sticky key leaves from the same SIM, while other
// traffic spreads; when that SIM is out of rotation, another takes it.
func TestPoolStickiness(t *testing.T) {
	_, mods, dir := startSims(t, sim.Config{}, sim.Config{}, sim.Config{})
	p := startPool(t, mods, dir, PoolOptions{}, nil)
	ctx := testCtx(t)
	first, err := p.Send(ctx, simgate.SendRequest{To: "+15557654321", Text: "code 1", StickyKey: "ver_1"})
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for i := 0; i < 6; i++ {
		r, err := p.Send(ctx, simgate.SendRequest{To: "+15557654321", Text: "other"})
		if err != nil {
			t.Fatal(err)
		}
		used[r.ModemID] = true
		again, err := p.Send(ctx, simgate.SendRequest{To: "+15557654321", Text: "code 1 again", StickyKey: "ver_1"})
		if err != nil {
			t.Fatal(err)
		}
		if again.ModemID != first.ModemID {
			t.Fatalf("resend left from %s, first from %s", again.ModemID, first.ModemID)
		}
	}
	if len(used) < 3 {
		t.Fatalf("other traffic used only %v", used)
	}
	if err := p.Disable(first.ModemID); err != nil {
		t.Fatal(err)
	}
	r, err := p.Send(ctx, simgate.SendRequest{To: "+15557654321", Text: "code 1 again", StickyKey: "ver_1"})
	if err != nil || r.ModemID == first.ModemID {
		t.Fatalf("with %s disabled: %+v, %v", first.ModemID, r, err)
	}
}

// A modem whose probe reads a weak signal (+CSQ below 5) is degraded, and
// the pool sends through the others while they can take it; it is ready
// again once the signal is back.
func TestPoolAvoidsWeakSignal(t *testing.T) {
	_, mods, dir := startSims(t, sim.Config{}, sim.Config{})
	mods[0].SetFaults(sim.Faults{Signal: 3})
	p := startPool(t, mods, dir, PoolOptions{}, nil)
	ctx := testCtx(t)
	probe := func() {
		t.Helper()
		for _, name := range p.Names() {
			if err := p.members[name].m.RunOnce(ctx); err != nil {
				t.Fatalf("probe %s: %v", name, err)
			}
		}
	}
	probe()
	st := p.members["m0"].m.Status()
	if st.State != simgate.ModemDegraded || st.Reason != "weak signal: -107 dBm" || st.SignalBars != 1 {
		t.Fatalf("m0 with +CSQ: 3: %s %q, %d bars", st.State, st.Reason, st.SignalBars)
	}
	for range 6 {
		r, err := p.Send(ctx, simgate.SendRequest{To: "+15557654321", Text: "avoid the weak one"})
		if err != nil {
			t.Fatal(err)
		}
		if r.ModemID != "m1" {
			t.Fatalf("sent through %s with a weak signal while m1 was ready", r.ModemID)
		}
	}
	mods[0].SetFaults(sim.Faults{})
	probe()
	if st := p.members["m0"].m.Status(); st.State != simgate.ModemReady {
		t.Fatalf("m0 with its signal back: %s %q", st.State, st.Reason)
	}
}

// Disable, drain, enable and reset while running; Reload adds and removes
// modems.
func TestPoolAdmin(t *testing.T) {
	n, mods, dir := startSims(t, sim.Config{SubmitLatency: 300 * time.Millisecond}, sim.Config{}, sim.Config{})
	p := startPool(t, mods, dir, PoolOptions{}, func(i int, c *Config) {
		if i == 2 {
			c.Disabled = true
		}
	})
	ctx := testCtx(t)
	if got, want := p.Status()[2].State, simgate.ModemDisabled; got != want {
		t.Fatalf("m2 state = %s, want %s", got, want)
	}
	// Drain m0 while a send is in flight on it.
	if err := p.Disable("m1"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Send(ctx, simgate.SendRequest{To: "+15557654321", Text: "slow"})
		done <- err
	}()
	eventually(t, "send in flight", func() bool { return logHas(mods[0], "AT+CMGS") == 1 })
	if err := p.Drain(ctx, "m0"); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	// The network has the submit once Drain returns; Send itself may still
	// be on its way back to the goroutine that called it.
	if subs := n.Submissions(); len(subs) != 1 || subs[0].At.IsZero() {
		t.Fatalf("Drain returned before the send in flight finished: submissions %+v", subs)
	}
	if err := <-done; err != nil {
		t.Fatalf("in-flight send: %v", err)
	}
	if _, err := p.Send(ctx, simgate.SendRequest{To: "+15557654321", Text: "x"}); !errors.Is(err, ErrNoModem) {
		t.Fatalf("Send with every modem out: %v, want ErrNoModem", err)
	}
	if err := p.Enable("m2"); err != nil {
		t.Fatal(err)
	}
	if r, err := p.Send(ctx, simgate.SendRequest{To: "+15557654321", Text: "x"}); err != nil || r.ModemID != "m2" {
		t.Fatalf("after enabling m2: %+v, %v", r, err)
	}
	if err := p.Reset(ctx, "m2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "m2 back after reset", func() bool { return p.Status()[2].State == simgate.ModemReady })

	// Reload: drop m0 and m1, keep m2, add m3 on a new virtual modem.
	more, err := n.Start(dir, sim.Config{Name: "modem3", SubmitLatency: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(ctx, []Config{{Name: "m2", Device: mods[2].Path()}, {Name: "m3", Device: more[0].Path()}}); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if err := p.WaitReady(ctx, 2); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < 6; i++ {
		r, err := p.Send(ctx, simgate.SendRequest{To: "+15557654321", Text: "after reload"})
		if err != nil {
			t.Fatal(err)
		}
		seen[r.ModemID] = true
	}
	if len(seen) != 2 || !seen["m2"] || !seen["m3"] {
		t.Fatalf("after reload sends went to %v", seen)
	}
	if got := len(p.Status()); got != 2 {
		t.Fatalf("status lists %d modems, want 2", got)
	}
}

// A hung modem does not hold up the others: sends that hit it before the
// hang is noticed fail over (nothing was written without a prompt).
func TestPoolHungModemDoesNotBlockOthers(t *testing.T) {
	n, mods, dir := startSims(t, sim.Config{}, sim.Config{}, sim.Config{})
	opts := testOptions(t, dir, nil)
	opts.CommandTimeout = 300 * time.Millisecond
	opts.ProbeInterval = 200 * time.Millisecond
	p := startPool(t, mods, dir, PoolOptions{Options: opts}, func(i int, c *Config) { c.SubmitTimeout = 500 * time.Millisecond })
	mods[1].SetFaults(sim.Faults{Hung: true})
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Send(ctx, simgate.SendRequest{To: "+15557654321", Text: fmt.Sprintf("msg %d", i)}); err != nil {
				t.Errorf("Send %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if got := len(n.Submissions()); got != 12 {
		t.Fatalf("submissions = %d, want 12", got)
	}
}

// Close stops every goroutine the pool and its modems started, including the
// at package's, which end when their port is closed.
func TestPoolCloseLeavesNoGoroutines(t *testing.T) {
	charsets.Warm()
	before := runtime.NumGoroutine()
	func() {
		n := sim.NewNetwork()
		dir := t.TempDir()
		mods, err := n.Start(dir, sim.Config{SubmitLatency: time.Millisecond}, sim.Config{SubmitLatency: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		opts := testOptions(t, dir, newEvents())
		opts.ProbeInterval = 50 * time.Millisecond
		p := NewPool(PoolOptions{Options: opts})
		ctx := testCtx(t)
		if err := p.Open(ctx, []Config{{Name: "a", Device: mods[0].Path()}, {Name: "b", IMEI: mods[1].Config().IMEI}}); err != nil {
			t.Fatal(err)
		}
		if err := p.WaitReady(ctx, 2); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			if _, err := p.Send(ctx, simgate.SendRequest{To: "+15557654321", Text: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		p.Close()
	}()
	eventually(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}
