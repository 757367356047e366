package modem

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/sim"
)

// A modem that stops answering is noticed by the probe, resynchronised and,
// when that fails, reopened (closing the device ends the hang, as a USB reset
// does).
func TestHungModemRecovers(t *testing.T) {
	n, mods, dir := startSims(t)
	opts := testOptions(t, dir, newEvents())
	opts.CommandTimeout = 300 * time.Millisecond
	opts.ProbeInterval = 100 * time.Millisecond
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, opts)
	ctx := testCtx(t)

	var states []simgate.ModemState
	mods[0].SetFaults(sim.Faults{Hung: true})
	eventually(t, "hang noticed", func() bool {
		s := m.Status().State
		if len(states) == 0 || states[len(states)-1] != s {
			states = append(states, s)
		}
		return s != simgate.ModemReady
	})
	eventually(t, "modem back", func() bool { return m.Status().State == simgate.ModemReady })
	if mods[0].Faults().Hung {
		t.Fatal("the port was never reopened (the hang is still on)")
	}
	if _, err := m.Send(ctx, "+15557654321", "after the hang"); err != nil {
		t.Fatalf("Send after recovery: %v", err)
	}
	if got, want := len(n.Submissions()), 1; got != want {
		t.Fatalf("submissions = %d, want %d", got, want)
	}
	if !strings.Contains(m.Status().LastError, "did not answer") {
		t.Fatalf("last error = %q, want the timeout", m.Status().LastError)
	}
}

// A modem that is unplugged and comes back under another tty name is found
// again by its IMEI, learned when it was first opened by path. A report and
// an SMS that arrive meanwhile are not lost.
func TestUnplugReplugNewPath(t *testing.T) {
	n, mods, dir := startSims(t, sim.Config{}, sim.Config{ReportDelay: 300 * time.Millisecond})
	ev := newEvents()
	opts := testOptions(t, dir, ev)
	// Bound by path only: the identity is learned at the first connect.
	m := openModem(t, Config{Name: "m1", Device: mods[1].Path()}, opts)
	other := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, opts)
	ctx := testCtx(t)
	id := m.Identity()

	mrs, err := m.Send(ctx, "+15557654321", "report comes while unplugged")
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := mods[1].Unplug(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "modem down", func() bool { return m.Status().State == simgate.ModemDown })
	if _, err := m.Send(ctx, "+15557654321", "x"); simgate.SendClassOf(err) != simgate.ClassModemUnhealthy {
		t.Fatalf("Send while unplugged: %v, want simgate.ClassModemUnhealthy", err)
	}
	if err := n.Inject("+4915112345678", mods[1].Config().Number, "sent while unplugged"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // the report is due now; the network holds it
	newPath, err := mods[1].Replug("ttyUSB7")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := newPath, filepath.Join(dir, "ttyUSB7"); got != want {
		t.Fatalf("replugged at %s, want %s", got, want)
	}
	eventually(t, "modem back on the new path", func() bool {
		st := m.Status()
		return st.State == simgate.ModemReady && st.Device == newPath
	})
	if got := m.Identity(); got != id {
		t.Fatalf("identity after replug = %+v, want %+v", got, id)
	}
	reps := ev.wait(t, EventReport, 1)
	if reps[0].Report.MR != mrs[0] || reps[0].ModemID != "m1" {
		t.Fatalf("report = %+v, want MR %d from m1", reps[0].Report, mrs[0])
	}
	in := ev.wait(t, EventInbound, 1)
	if in[0].Inbound.Text != "sent while unplugged" || in[0].ModemID != "m1" {
		t.Fatalf("inbound = %+v", in[0].Inbound)
	}
	if _, err := m.Send(ctx, "+15557654321", "after replug"); err != nil {
		t.Fatalf("Send after replug: %v", err)
	}
	// The other modem was never disturbed by the search.
	if got := other.Status().Device; got != mods[0].Path() {
		t.Fatalf("other modem moved to %s", got)
	}
	if _, err := other.Send(ctx, "+15557654321", "other"); err != nil {
		t.Fatalf("other Send: %v", err)
	}
}

// A modem that keeps failing is quarantined, then probed again later.
func TestQuarantineThenBack(t *testing.T) {
	_, mods, dir := startSims(t)
	opts := testOptions(t, dir, newEvents())
	opts.QuarantineAfter = 3
	opts.QuarantineFor = 700 * time.Millisecond
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, opts)
	if err := mods[0].Unplug(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "quarantine", func() bool { return strings.Contains(m.Status().Reason, "quarantined") })
	if _, err := mods[0].Replug(""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "modem back", func() bool { return m.Status().State == simgate.ModemReady })
}
