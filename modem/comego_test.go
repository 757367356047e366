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

// A SIM that asks for its PIN again while the port stays open (a SIM reset,
// a brown-out on a UART modem) is unlocked once with the configured PIN and
// the modem goes back into rotation, whether a submit or the probe notices
// it first. Before, no AT+CPIN= was sent, the modem stayed in rotation and
// every submit failed with +CMS ERROR: 311.
func TestSIMRelocks(t *testing.T) {
	const pin = "7392"
	for _, tc := range []struct {
		name   string
		notice func(t *testing.T, m *Modem)
	}{
		{"submit", func(t *testing.T, m *Modem) {
			_, err := m.Send(testCtx(t), "+15557654321", "while locked")
			if simgate.SendClassOf(err) != simgate.ClassModemUnhealthy {
				t.Fatalf("Send while locked: %v, want modem-unhealthy (another modem may send it)", err)
			}
		}},
		{"probe", func(t *testing.T, m *Modem) {
			if err := m.RunOnce(testCtx(t)); err != nil {
				t.Fatalf("RunOnce: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, mods, dir := startSims(t, sim.Config{PIN: pin})
			m := openModem(t, Config{Name: "m0", Device: mods[0].Path(), PIN: pin}, testOptions(t, dir, newEvents()))
			mods[0].SetFaults(sim.Faults{PINRequired: true})
			tc.notice(t, m)
			eventually(t, "modem ready again", func() bool { return m.Status().State == simgate.ModemReady })
			if got := logHas(mods[0], "AT+CPIN="); got != 2 {
				t.Fatalf("PIN entered %d times, want 2 (at start and once after the relock)", got)
			}
			if _, err := m.Send(testCtx(t), "+15557654321", "unlocked"); err != nil {
				t.Fatalf("Send after the relock: %v", err)
			}
			if subs := n.Submissions(); len(subs) != 1 || subs[0].Text != "unlocked" {
				t.Fatalf("submissions %+v, want only the one after the relock", subs)
			}
		})
	}
}

// The late answer of a submit that timed out reaches the subscriber with
// its message reference, the recipient and the part, so that the queue can
// record it and match the report. Before, it was only logged.
func TestLateAnswerHandedOn(t *testing.T) {
	_, mods, dir := startSims(t)
	mods[0].SetFaults(sim.Faults{LateCMGS: 700 * time.Millisecond})
	evs := newEvents()
	opts := testOptions(t, dir, evs)
	opts.LateWait = 3 * time.Second
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path(), SubmitTimeout: 300 * time.Millisecond}, opts)
	if _, err := m.Send(testCtx(t), "+15557654321", "late"); simgate.SendClassOf(err) != simgate.ClassAmbiguous {
		t.Fatalf("Send: %v, want ambiguous", err)
	}
	late := evs.wait(t, EventLateSubmit, 1)[0].Late
	rep := evs.wait(t, EventReport, 1)[0].Report
	if late.MR != rep.MR || late.To != "+15557654321" || late.Part != 0 || late.ModemID != "m0" {
		t.Fatalf("late answer %+v, report MR %d", late, rep.MR)
	}
}

// A status report that comes while simgate restarts is stored by the modem
// and read when it starts again. Before, it was routed to a port nobody
// read, and the message stayed sent for ever.
func TestReportAcrossRestart(t *testing.T) {
	_, mods, dir := startSims(t, sim.Config{ReportDelay: 600 * time.Millisecond})
	mods[0].SetFaults(sim.Faults{RoutedLostWhileClosed: true})
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, newEvents()))
	mrs, err := m.Send(testCtx(t), "+15557654321", "report comes while simgate restarts")
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	time.Sleep(time.Second) // the report comes now
	evs := newEvents()
	openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, evs))
	rep := evs.wait(t, EventReport, 1)[0]
	if rep.Report.MR != mrs[0] || !rep.Stored {
		t.Fatalf("report %+v (stored %v), want MR %d read from the store", rep.Report, rep.Stored, mrs[0])
	}
}

// A modem that offers no status reports at all (AT+CNMI <ds> 0 only) says
// so in its status; SMS it stored without an indication are found by the
// periodic listing.
func TestNoReportsWarningAndPeriodicListing(t *testing.T) {
	_, mods, dir := startSims(t, sim.Config{CNMICaps: "(0-2),(0-3),(0,2),(0),(0,1)"})
	evs := newEvents()
	opts := testOptions(t, dir, evs)
	opts.ListInterval = 100 * time.Millisecond
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, opts)
	if w := m.Status().Warnings; len(w) != 1 || !strings.Contains(w[0], "no status reports") {
		t.Fatalf("warnings %q, want one about status reports", w)
	}
	c := recorded(t, listedFile, listedCase)
	if _, err := mods[0].PutStored("SM", 0, pduLine(t, c)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if err := m.RunOnce(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if in := evs.wait(t, EventInbound, 1)[0].Inbound; in.From != c.expect["from"] {
		t.Fatalf("inbound from %q, want %q", in.From, c.expect["from"])
	}
}
