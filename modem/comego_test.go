package modem

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/sim"
)

// Tests of modems that come and go: found again by identity, after an
// unplug, under another path, on a glob they share.

// outageOptions are the production defaults for reconnecting (1 s to 1 min
// backoff, quarantine after 5 failed connects for 5 min), with the search
// pointed at dir.
func outageOptions(t testing.TB, dir string, sub Subscriber) Options {
	return Options{
		Logger:         testLogger(t),
		Subscriber:     sub,
		CommandTimeout: 2 * time.Second,
		Candidates:     []string{filepath.Join(dir, "*")},
	}
}

// Four modems bound by IMEI on one glob, started together, all come up,
// start after start: the pool searches the ports once for both. Before,
// each modem skipped the port the other had claimed, both probed each
// other's port, failed, and retried in step without jitter, until both were
// quarantined (4 of 16 starts).
func TestTwoModemsOneGlob(t *testing.T) {
	for i := range 6 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			_, mods, dir := startSims(t, sim.Config{}, sim.Config{}, sim.Config{}, sim.Config{})
			opts := outageOptions(t, dir, newEvents())
			opts.QuarantineAfter = 3
			p := NewPool(PoolOptions{Options: opts})
			t.Cleanup(func() { p.Close() })
			// Bound the other way round from the glob's order, so that each
			// modem's first candidates are the other ones' ports.
			var cfgs []Config
			want := map[string]string{}
			for i := range mods {
				m := mods[len(mods)-1-i]
				cfgs = append(cfgs, Config{Name: fmt.Sprint("m", i), IMEI: m.Config().IMEI})
				want[fmt.Sprint("m", i)] = m.Path()
			}
			ctx, cancel := context.WithTimeout(testCtx(t), 8*time.Second)
			defer cancel()
			if err := p.Open(ctx, cfgs); err != nil {
				t.Fatal(err)
			}
			if err := p.WaitReady(ctx, len(mods)); err != nil {
				t.Fatalf("%v: %+v", err, p.Status())
			}
			for _, s := range p.Status() {
				if s.Device != want[s.ID] {
					t.Fatalf("%s is on %s, want %s", s.ID, s.Device, want[s.ID])
				}
			}
			// One search for all: each port was asked its IMEI once by the
			// search and twice by its own modem's start (before and after
			// ATZ), never by the other modems.
			for _, m := range mods {
				if n := logHas(m, "AT+CGSN"); n > 3 {
					t.Errorf("%s was asked its IMEI %d times, want at most 3", m.Config().Name, n)
				}
			}
		})
	}
}

// A replugged modem whose new pseudo-terminal has the number another,
// unplugged, modem had is taken at once. Before, the other modem's claim was
// released by resolving its link again, which the unplug had removed, so
// the old /dev/pts/N stayed claimed and the replugged modem was refused
// ("every candidate port is in use") until simgate restarted.
func TestStaleClaimAfterReplug(t *testing.T) {
	_, mods, dir := startSims(t, sim.Config{}, sim.Config{})
	p := startPool(t, mods, dir, PoolOptions{Options: testOptions(t, dir, newEvents())}, func(i int, c *Config) {
		c.Device, c.IMEI = "", mods[i].Config().IMEI
	})
	old := []string{resolve(mods[0].Path()), resolve(mods[1].Path())}
	// Unplug both; plug back the one whose pseudo-terminal had the higher
	// number, so that the kernel gives it the other's (the lowest free).
	hi := 0
	if old[1] > old[0] {
		hi = 1
	}
	for _, m := range mods {
		if err := m.Unplug(); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "both down", func() bool { return p.Ready() == 0 })
	path, err := mods[hi].Replug("ttyUSB9")
	if err != nil {
		t.Fatal(err)
	}
	if got := resolve(path); got != old[1-hi] {
		t.Skipf("the kernel gave %s, not the other modem's old %s: nothing stale to show", got, old[1-hi])
	}
	name := fmt.Sprintf("m%d", hi)
	eventually(t, name+" back on the reused pseudo-terminal", func() bool {
		for _, s := range p.Status() {
			if s.ID == name && s.State == simgate.ModemReady && s.Device == path {
				return true
			}
		}
		return false
	})
}

// A device that appears ends a quarantine at once. Before, a modem
// unplugged for half a minute was quarantined after five failed connects
// and came back only when the quarantine (5 min) ran out.
func TestDeviceAppearingEndsQuarantine(t *testing.T) {
	_, mods, dir := startSims(t)
	opts := outageOptions(t, dir, newEvents())
	opts.MinBackoff, opts.QuarantineAfter = 100*time.Millisecond, 2
	p := startPool(t, mods, dir, PoolOptions{Options: opts}, func(i int, c *Config) {
		c.Device, c.IMEI = "", mods[i].Config().IMEI
	})
	if err := mods[0].Unplug(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "quarantine", func() bool { return strings.Contains(p.Status()[0].Reason, "quarantined") })
	if _, err := mods[0].Replug("ttyUSB3"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, "modem back", func() bool { return p.Ready() == 1 })
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("back %v after the device appeared, want within 5 s", d)
	}
}

// A device that is there but does not answer is "not answering", not "not
// found".
func TestNotAnsweringIsNotNotFound(t *testing.T) {
	_, mods, dir := startSims(t)
	mods[0].SetFaults(sim.Faults{Hung: true})
	opts := outageOptions(t, dir, newEvents())
	opts.CommandTimeout = 300 * time.Millisecond
	m := newModem(Config{Name: "m0", IMEI: mods[0].Config().IMEI}, opts, nil)
	m.start()
	t.Cleanup(func() { m.Close() })
	eventually(t, "down, not answering", func() bool {
		st := m.Status()
		return st.State == simgate.ModemDown && strings.Contains(st.Reason, "not answering")
	})
}

// A claim made through a link is released exactly, even when the link is
// gone by then (an unplug removes it before the driver sees the port
// close). Before, the release resolved the link again, failed, and left the
// device claimed, so the next modem the kernel gave that device number to
// was refused until simgate restarted.
func TestClaimReleasedAfterLinkGone(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	link := filepath.Join(t.TempDir(), "ttyUSB0")
	if err := os.Symlink(slave.Name(), link); err != nil {
		t.Fatal(err)
	}
	ps := newPorts()
	a, b := &Modem{}, &Modem{}
	cl, ok := ps.claim(link, a)
	if !ok {
		t.Fatal("first claim refused")
	}
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	ps.release(cl)
	if _, ok := ps.claim(slave.Name(), b); !ok {
		t.Fatal("the device is still claimed after its claim was released")
	}
}
