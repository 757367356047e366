package modem

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/sim"
)

// TestSoakUnplugReplug is the long soak of modems that come and go: four
// modems bound by IMEI on one glob send under load while, SIMGATE_SOAK_CYCLES
// times (default 3 in the ordinary run), a random modem is unplugged and
// plugged in again under a new name. It checks that no send is lost or
// submitted twice (the virtual network's submissions are the ground truth),
// that every modem comes back each time, and that goroutines and
// descriptors stay flat. docs/OPERATIONS.md has the figures of the long run:
//
//	SIMGATE_SOAK_CYCLES=200 go test ./modem -run SoakUnplugReplug -v -timeout 60m
func TestSoakUnplugReplug(t *testing.T) {
	cycles := 3
	if v := os.Getenv("SIMGATE_SOAK_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SIMGATE_SOAK_CYCLES=%q is not a positive number", v)
		}
		cycles = n
	}
	n, mods, dir := startSims(t, sim.Config{}, sim.Config{}, sim.Config{}, sim.Config{})
	opts := testOptions(t, dir, newEvents())
	opts.Logger = testLogger(t)
	opts.MinBackoff, opts.MaxBackoff = 200*time.Millisecond, 2*time.Second
	opts.QuarantineAfter, opts.QuarantineFor = 5, time.Minute
	p := startPool(t, mods, dir, PoolOptions{Options: opts}, func(i int, c *Config) {
		c.Device, c.IMEI = "", mods[i].Config().IMEI
		c.SubmitTimeout = 5 * time.Second
	})
	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)

	// Load: one sender per modem, each text unique; every outcome recorded.
	ctx, stop := context.WithCancel(testCtx(t))
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := map[string]bool{}      // texts the pool says went out
	ambiguous := map[string]bool{} // texts that may have gone out
	for w := range len(mods) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				text := fmt.Sprintf("soak %d-%d", w, i)
				_, err := p.Send(ctx, simgate.SendRequest{To: "+15557654321", Text: text})
				mu.Lock()
				switch {
				case err == nil:
					sent[text] = true
				case simgate.SendClassOf(err) == simgate.ClassAmbiguous:
					ambiguous[text] = true
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond) // no modem now: do not spin
				}
			}
		}()
	}

	for c := range cycles {
		i := rand.N(len(mods))
		if err := mods[i].Unplug(); err != nil {
			t.Fatalf("cycle %d: unplug: %v", c, err)
		}
		time.Sleep(time.Duration(50+rand.N(400)) * time.Millisecond)
		if _, err := mods[i].Replug(fmt.Sprintf("ttyUSB%d", 100+c)); err != nil {
			t.Fatalf("cycle %d: replug: %v", c, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for p.Ready() < len(mods) {
			if time.Now().After(deadline) {
				t.Fatalf("cycle %d: modem %d not back within 10 s: %+v", c, i, p.Status())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	stop()
	wg.Wait()

	// The network's record: every text at most once, and every text the
	// pool said went out among them; one that went out without the pool
	// saying so must have been ambiguous.
	seen := map[string]int{}
	for _, s := range n.Submissions() {
		seen[s.Text]++
	}
	for text, k := range seen {
		if k > 1 {
			t.Errorf("%q submitted %d times", text, k)
		}
		if !sent[text] && !ambiguous[text] {
			t.Errorf("%q went out but the pool reported a failure that allowed a resend", text)
		}
	}
	for text := range sent {
		if seen[text] == 0 {
			t.Errorf("%q reported sent but the network never had it", text)
		}
	}
	eventually(t, "goroutines back to where they were", func() bool { return runtime.NumGoroutine() <= baseG+2 })
	if fd := openFDs(t); fd > baseFD+2 {
		t.Errorf("%d descriptors open, %d before the cycles", fd, baseFD)
	}
	t.Logf("soak: %d cycles, %d sent, %d ambiguous, %d submissions, goroutines %d -> %d, descriptors %d -> %d",
		cycles, len(sent), len(ambiguous), len(seen), baseG, runtime.NumGoroutine(), baseFD, openFDs(t))
}

// openFDs counts the process's open descriptors.
func openFDs(t testing.TB) int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(es)
}
