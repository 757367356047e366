package modem

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simgate/simgate/modem/sim"
)

func TestProbe(t *testing.T) {
	_, mods, dir := startSims(t,
		sim.Config{Manufacturer: "Quectel", Model: "EC25", Operator: "Testnet"},
		sim.Config{Manufacturer: "huawei", Model: "E3372", ICCIDCommands: []string{"^ICCID"}, PIN: "1234"},
		sim.Config{},
	)
	// modem2 is in use by a driver: Probe must leave it alone.
	busy := openModem(t, Config{Name: "busy", Device: mods[2].Path()}, testOptions(t, t.TempDir(), nil))
	notModem := filepath.Join(dir, "zz-not-a-tty")
	if err := os.WriteFile(notModem, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	rs, err := Probe(testCtx(t), []string{filepath.Join(dir, "*")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rs), 4; got != want {
		t.Fatalf("%d results, want %d: %+v", got, want, rs)
	}
	r0, r1, r2, r3 := rs[0], rs[1], rs[2], rs[3]
	if r0.Err != nil || r0.Identity.IMEI != mods[0].Config().IMEI || r0.Identity.ICCID != mods[0].Config().ICCID ||
		r0.Operator != "Testnet" || r0.Registration != "home" || r0.SignalDBm != -73 || r0.SignalBars != 4 {
		t.Fatalf("modem0: %+v", r0)
	}
	// Locked SIM: the modem's identity, but no PIN is entered. (The ICCID is
	// shown when the modem gives it out before the PIN; the sim does not.)
	if r1.SIM != "SIM PIN" || r1.Identity.IMEI != mods[1].Config().IMEI || (r1.Identity.ICCID != "" && r1.Identity.ICCID != mods[1].Config().ICCID) {
		t.Fatalf("modem1: %+v", r1)
	}
	if got := logHas(mods[1], "AT+CPIN="); got != 0 {
		t.Fatalf("Probe entered a PIN %d times", got)
	}
	if !errors.Is(r2.Err, ErrPortBusy) {
		t.Fatalf("modem2 (in use): err = %v, want ErrPortBusy", r2.Err)
	}
	if r3.Err == nil {
		t.Fatalf("a regular file probed as a modem: %+v", r3)
	}
	if _, err := busy.Send(testCtx(t), "+15557654321", "still fine"); err != nil {
		t.Fatalf("the busy modem was disturbed: %v", err)
	}
	var b strings.Builder
	if err := WriteProbeTable(&b, rs); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"DEVICE", "MANUFACTURER", "Quectel", "EC25", mods[0].Config().IMEI, "Testnet", "home (", "-73 dBm (4/4)", "SIM: SIM PIN", "serial port in use"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if testing.Verbose() {
		t.Logf("\n%s", out)
	}
}
