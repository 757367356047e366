package sim

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// resetDelay keeps a restarting device away long enough to see it gone.
const resetDelay = 200 * time.Millisecond

// waitGone waits until the client's read failed, as on a USB disconnect.
func waitGone(t *testing.T, c *client) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(waitTimeout):
		t.Fatal("client read did not fail")
	}
	if c.readErr() == nil {
		t.Fatal("no read error")
	}
}

// waitPlugged waits until m is plugged in again at path.
func waitPlugged(t *testing.T, m *Modem, path string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		_, err := os.Lstat(path)
		if err == nil && m.Plugged() && m.Path() == path {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not back after %v (plugged %v at %s, %v)", path, waitTimeout, m.Plugged(), m.Path(), err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestResetUnplugs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rename string
	}{
		{"same name", ""},
		{"new name", "ttyUSB7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, mods := startNetwork(t, Config{ResetUnplugs: true, ResetDelay: resetDelay, ResetRename: tc.rename})
			m := mods[0]
			old := m.Path()
			want := old
			if tc.rename != "" {
				want = filepath.Join(filepath.Dir(old), tc.rename)
			}
			c := dial(t, old)
			c.mustOK("ATE0")
			c.mustOK("AT+CMGF=1")
			// The OK comes first: the device goes once the host read it.
			c.want("AT+CFUN=1,1", "OK")
			waitGone(t, c)
			if _, err := os.Lstat(old); !os.IsNotExist(err) {
				t.Fatalf("symlink still there: %v", err)
			}
			if m.Plugged() {
				t.Fatal("plugged in during the restart")
			}
			// A message that comes meanwhile waits in the network.
			if err := n.Inject("+15559876543", m.Config().Number, "while restarting"); err != nil {
				t.Fatal(err)
			}

			waitPlugged(t, m, want)
			if tc.rename != "" {
				if _, err := os.Lstat(old); !os.IsNotExist(err) {
					t.Fatalf("old symlink back: %v", err)
				}
			}
			c2 := dial(t, want)
			// Power-on state: text mode off.
			c2.write("AT+CMGF?\r")
			// The message held meanwhile is announced first.
			if got := c2.until("AT+CMGF?", cmdTimeout); strings.Join(got, "|") != `+CMTI: "SM",1|+CMGF: 0|OK` {
				t.Fatalf("after the restart: %q", got)
			}
			c2.mustOK("ATE0")
			c2.want("AT+CGSN", m.Config().IMEI, "OK")
			if got, want := len(m.Stored("SM")), 1; got != want {
				t.Fatalf("%d messages stored, want %d", got, want)
			}
			if got, want := logHasLine(m, "AT+CFUN=1,1"), 1; got != want {
				t.Fatalf("AT+CFUN=1,1 logged %d times, want %d", got, want)
			}
		})
	}
}

func logHasLine(m *Modem, line string) int {
	k := 0
	for _, l := range m.Log() {
		if l == line {
			k++
		}
	}
	return k
}

// Commands after AT+CFUN=1,1 in the same write are not run: the modem is
// restarting.
func TestResetUnplugsIgnoresLaterInput(t *testing.T) {
	_, mods := startNetwork(t, Config{ResetUnplugs: true, ResetDelay: resetDelay})
	m := mods[0]
	c := dial(t, m.Path())
	c.mustOK("ATE0")
	c.write("AT+CFUN=1,1\rAT+CMGF=1\r")
	waitGone(t, c)
	if got := logHasLine(m, "AT+CMGF=1"); got != 0 {
		t.Fatalf("AT+CMGF=1 run during the restart (%d)", got)
	}
	waitPlugged(t, m, m.Path())
}

// The boot lines of a profile wait for the first client after the modem
// came back.
func TestResetUnplugsBootLines(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{Profile: ProfileSIM800}, []string{"RDY", "+CFUN: 1", "+CPIN: READY", "Call Ready", "SMS Ready"}},
		{Config{Profile: ProfileSIM800, PIN: "1234"}, []string{"RDY", "+CFUN: 1", "+CPIN: SIM PIN"}},
		{Config{Profile: ProfileQuectelEC25}, []string{"RDY", "+CFUN: 1", "+CPIN: READY", "+QUSIM: 1", "+QIND: SMS DONE", "+QIND: PB DONE"}},
		{Config{Profile: ProfileWavecom}, []string{"+WIND: 3", "+WIND: 1", "+WIND: 7", "+WIND: 4"}},
	} {
		t.Run(tc.cfg.Profile+tc.cfg.PIN, func(t *testing.T) {
			cfg := tc.cfg
			cfg.ResetUnplugs, cfg.ResetDelay = true, resetDelay
			_, mods := startNetwork(t, cfg)
			m := mods[0]
			c := dial(t, m.Path())
			c.write("ATE0\r")
			c.waitFor("OK", waitTimeout) // after Wavecom's power-on lines
			c.want("AT+CFUN=1,1", "OK")
			waitGone(t, c)
			waitPlugged(t, m, m.Path())
			c2 := dial(t, m.Path())
			for _, w := range tc.want {
				c2.nextIs(w)
			}
			c2.quiet(100 * time.Millisecond)
			c2.want("AT", "OK")
		})
	}
}

func TestHungIgnoresReset(t *testing.T) {
	for _, tc := range []struct {
		name string
		hang func(*Modem)
	}{
		{"hung", func(m *Modem) { m.SetFaults(Faults{Hung: true}) }},
		{"crashed", (*Modem).Crash},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, mods := startNetwork(t, Config{ResetUnplugs: true, ResetDelay: resetDelay, ResetRename: "ttyUSB9"})
			m := mods[0]
			old := m.Path()
			c := dial(t, old)
			c.mustOK("ATE0")
			tc.hang(m)
			c.write("AT+CFUN=1,1\r")
			c.quiet(300 * time.Millisecond)
			if !m.Plugged() || m.Path() != old || c.readErr() != nil {
				t.Fatalf("a hung modem restarted (plugged %v at %s, read error %v)", m.Plugged(), m.Path(), c.readErr())
			}

			// What the kernel's USB reset does.
			if err := m.USBReset(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(old); !os.IsNotExist(err) {
				t.Fatalf("symlink still there after USBReset: %v", err)
			}
			waitGone(t, c)
			want := filepath.Join(filepath.Dir(old), "ttyUSB9")
			waitPlugged(t, m, want)
			if m.Faults().Hung {
				t.Fatal("still hung after the USB reset")
			}
			c2 := dial(t, want)
			c2.want("AT", "OK")
		})
	}
}

// A crash, unlike Hung, outlasts the host closing and reopening the port.
func TestCrashOutlastsReopen(t *testing.T) {
	_, mods := startNetwork(t, Config{ResetDelay: resetDelay})
	m := mods[0]
	m.Crash()
	for i := 0; i < 2; i++ {
		c := dial(t, m.Path())
		c.write("AT\r")
		c.quiet(200 * time.Millisecond)
		c.close()
	}
	// Give the sim time to see the last close.
	time.Sleep(100 * time.Millisecond)
	if !m.Faults().Hung {
		t.Fatal("crash ended by closing the port")
	}
	if err := m.USBReset(); err != nil {
		t.Fatal(err)
	}
	waitPlugged(t, m, m.Path())
	c := dial(t, m.Path())
	c.want("AT", "OK")

	// Unhang ends a crash too; a plain hang ends with the close.
	m.Crash()
	m.Unhang()
	c.want("AT", "OK")
	m.SetFaults(Faults{Hung: true})
	c.close()
	time.Sleep(100 * time.Millisecond)
	c = dial(t, m.Path())
	c.want("AT", "OK")
}

func TestUSBResetUnplugged(t *testing.T) {
	_, mods := startNetwork(t, Config{ResetDelay: resetDelay})
	m := mods[0]
	if err := m.Unplug(); err != nil {
		t.Fatal(err)
	}
	if err := m.USBReset(); !errors.Is(err, ErrUnplugged) {
		t.Fatalf("USBReset of an unplugged modem: %v", err)
	}
	// A replug during the restart wins: the modem does not come back twice.
	path, err := m.Replug("")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.USBReset(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Replug("ttyUSB3"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * resetDelay)
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("%s came back after a replug elsewhere: %v", path, err)
	}
	c := dial(t, m.Path())
	c.want("AT", "OK")
}

// Close during a restart ends it: nothing comes back, nothing is left.
func TestCloseDuringRestart(t *testing.T) {
	n, mods := startNetwork(t, Config{ResetUnplugs: true, ResetDelay: time.Minute})
	m := mods[0]
	c := dial(t, m.Path())
	c.mustOK("ATE0")
	c.want("AT+CFUN=1,1", "OK")
	waitGone(t, c)
	done := make(chan error, 1)
	go func() { done <- n.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Close waited for the restart")
	}
	if m.Plugged() {
		t.Fatal("plugged in after Close")
	}
}

func TestResetConfigInvalid(t *testing.T) {
	for _, cfg := range []Config{
		{ResetRename: "a/b"},
		{ResetRename: ".."},
		{ResetDelay: -time.Second},
	} {
		n := NewNetwork()
		if _, err := n.Start(t.TempDir(), cfg); err == nil {
			t.Errorf("Start(%+v) succeeded", cfg)
		}
		n.Close()
	}
}
