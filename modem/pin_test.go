package modem

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/sim"
	"github.com/simgate/simgate/store"
)

// A PIN the SIM rejected is remembered in the database by the SIM's ICCID,
// so a restarted daemon with the same wrong PIN does not try it again (three
// restarts would lock the SIM into its PUK); a corrected PIN is entered.
// Only a keyed fingerprint is kept, never the PIN.
func TestRejectedPINRememberedAcrossRestarts(t *testing.T) {
	const right, wrong = "7392", "1111"
	_, mods, dir := startSims(t, sim.Config{PIN: right})
	path := filepath.Join(t.TempDir(), "simgate.db")
	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := func(pin string) *Modem {
		opts := testOptions(t, dir, newEvents())
		opts.PINs, opts.PINKey = db, []byte("a key kept apart from the database")
		m := newModem(Config{Name: "m0", Device: mods[0].Path(), PIN: pin}, opts, nil)
		m.start()
		t.Cleanup(func() { m.Close() })
		return m
	}
	for run := 1; run <= 3; run++ { // a daemon restarted with the wrong PIN
		m := start(wrong)
		eventually(t, "modem stopped by the wrong PIN", func() bool {
			st := m.Status()
			return st.State == simgate.ModemDown && strings.Contains(st.LastError, ErrWrongPIN.Error())
		})
		m.Close()
		if got := logHas(mods[0], "AT+CPIN="); got != 1 {
			t.Fatalf("run %d: the PIN was entered %d times, want once in all", run, got)
		}
	}
	m := start(right)
	eventually(t, "modem ready with the right PIN", func() bool { return m.Status().State == simgate.ModemReady })
	if got := logHas(mods[0], "AT+CPIN="); got != 2 {
		t.Fatalf("PIN entered %d times, want 2", got)
	}
	db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), wrong) {
		t.Fatal("the database holds the PIN")
	}
}
