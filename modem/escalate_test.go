package modem

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/sim"
)

// A modem that hangs for good (its firmware crashed: closing and reopening
// the port does not help) is reset before it is quarantined: softly first
// (which a crashed modem does not hear), then through USB where the
// configuration allows it, which brings it back. Without the USB reset it
// ends quarantined. Each reset is counted.
func TestResetEscalation(t *testing.T) {
	for _, tc := range []struct {
		name      string
		usb       bool
		wantBack  bool
		maxResets int
	}{
		{"USB reset brings it back", true, true, 0},
		{"without a USB reset", false, false, 0},
		{"more resets than allowed a day", true, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, mods, dir := startSims(t, sim.Config{ResetDelay: 100 * time.Millisecond})
			opts := testOptions(t, dir, newEvents())
			opts.CommandTimeout = 200 * time.Millisecond
			opts.QuarantineAfter, opts.QuarantineFor = 4, time.Minute
			opts.MaxResetsPerDay = tc.maxResets
			sysfs, dev := fakeUSBTree(t, filepath.Base(resolve(mods[0].Path())), false)
			usb := &fakeUSB{reset: mods[0].USBReset}
			opts.usb, opts.sysfsRoot, opts.devRoot = usb, sysfs, dev
			m := openModem(t, Config{Name: "m0", Device: mods[0].Path(), USBReset: tc.usb}, opts)

			mods[0].Crash()
			if err := m.RunOnce(testCtx(t)); err == nil {
				t.Fatal("the probe of a crashed modem succeeded")
			}
			switch {
			case tc.wantBack && tc.maxResets == 1:
				eventually(t, "the modem back, degraded for its resets", func() bool {
					st := m.Status()
					return st.State == simgate.ModemDegraded && strings.Contains(st.Reason, "resets today")
				})
			case tc.wantBack:
				eventually(t, "the modem back after the USB reset", func() bool { return m.Status().State == simgate.ModemReady })
			default:
				eventually(t, "quarantine", func() bool { return strings.HasPrefix(m.Status().Reason, "quarantined") })
			}
			c := m.Status().Counters
			wantUSB := int64(0)
			if tc.usb {
				wantUSB = 1
			}
			if c.SoftResets != 1 || c.USBResets != wantUSB {
				t.Fatalf("resets: soft %d, usb %d; want 1, %d", c.SoftResets, c.USBResets, wantUSB)
			}
			if got := logHas(mods[0], "AT+CFUN=1,1"); got != 0 {
				t.Fatalf("a crashed modem read %d soft resets, want 0 (it hears nothing)", got)
			}
		})
	}
}

// A modem whose firmware is stuck while it still answers (every submit
// fails with +CMS ERROR: 300, also after it was set up again) gets a soft
// reset, which brings it back: the next submit goes out.
func TestSoftResetUnsticksModem(t *testing.T) {
	n, mods, dir := startSims(t)
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, newEvents()))
	mods[0].SetFaults(sim.Faults{Wedged: true})
	for i := range 2 {
		if _, err := m.Send(testCtx(t), "+15557654321", "stuck"); err == nil {
			t.Fatalf("Send %d on a stuck modem succeeded", i)
		}
	}
	eventually(t, "the modem back after the soft reset", func() bool { return m.Status().State == simgate.ModemReady })
	if _, err := m.Send(testCtx(t), "+15557654321", "after the reset"); err != nil {
		t.Fatalf("Send after the soft reset: %v", err)
	}
	if got := logHas(mods[0], "AT+CFUN=1,1"); got != 1 {
		t.Fatalf("AT+CFUN=1,1 sent %d times, want once", got)
	}
	if c := m.Status().Counters; c.SoftResets != 1 {
		t.Fatalf("soft resets %d, want 1", c.SoftResets)
	}
	if subs := n.Submissions(); len(subs) != 1 || subs[0].Text != "after the reset" {
		t.Fatalf("submissions %+v", subs)
	}
}
