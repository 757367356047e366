package sim

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests run real modem software, gammu (Debian package gammu), against
// a virtual modem, unchanged: if gammu works with the sim, the sim is faithful
// enough to stand in for hardware. They skip when gammu is not installed,
// unless SIMGATE_REQUIRE_INTEROP=1 (as in CI), where they fail instead.

// gammu runs gammu with a configuration for the device at path and returns
// its combined output. The gammu log (every AT command and answer) is printed
// when the test fails.
func gammu(t *testing.T, path string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("gammu")
	if err != nil {
		if os.Getenv("SIMGATE_REQUIRE_INTEROP") == "1" {
			t.Fatalf("gammu is not installed and SIMGATE_REQUIRE_INTEROP=1: apt-get install gammu")
		}
		t.Skip("gammu is not installed (apt-get install gammu); set SIMGATE_REQUIRE_INTEROP=1 to fail instead")
	}
	dir := t.TempDir()
	rc := filepath.Join(dir, "gammurc")
	log := filepath.Join(dir, "gammu.log")
	cfg := fmt.Sprintf("[gammu]\ndevice = %s\nconnection = at115200\nlogfile = %s\nlogformat = textall\n", path, log)
	if err := os.WriteFile(rc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-c", rc}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+dir, "LC_ALL=C.UTF-8")
	out, err := cmd.CombinedOutput()
	if err != nil {
		trace, _ := os.ReadFile(log)
		t.Fatalf("gammu %s: %v\n%s\n--- gammu log ---\n%s", strings.Join(args, " "), err, out, trace)
	}
	return string(out)
}

func TestGammuIdentify(t *testing.T) {
	_, mods := startNetwork(t, Config{Manufacturer: "Quectel", Model: "EC25", Revision: "EC25EFAR06A07M4G", IMEI: "866758042175926"})
	out := gammu(t, mods[0].Path(), "identify")
	for _, want := range []string{"Quectel", "EC25", "EC25EFAR06A07M4G", "866758042175926", mods[0].Config().IMSI} {
		if !strings.Contains(out, want) {
			t.Errorf("gammu identify output lacks %q:\n%s", want, out)
		}
	}
}

func TestGammuSendSMS(t *testing.T) {
	for _, tt := range []struct {
		name   string
		report bool
		text   string
	}{
		{"plain", false, "Hello from gammu, 100% GSM-7: @£$¥"},
		{"with report", true, "Your code is 123456"},
		{"unicode", false, "Привет, мир ✓"},
		{"long", true, strings.Repeat("A long message that gammu splits into parts. ", 5)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, mods := startNetwork(t)
			const to = "+15551234567"
			args := []string{"sendsms", "TEXT", to}
			if tt.report {
				args = append(args, "-report")
			}
			if len(tt.text) > 160 {
				args = append(args, "-len", fmt.Sprint(len(tt.text)))
			}
			if strings.ContainsFunc(tt.text, func(r rune) bool { return r > 0x7f && !strings.ContainsRune("@£$¥", r) }) {
				args = append(args, "-unicode")
			}
			args = append(args, "-text", tt.text)
			gammu(t, mods[0].Path(), args...)

			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			got, err := n.WaitInbox(ctx, to, 1)
			if err != nil {
				t.Fatalf("handset inbox: %v (have %v)", err, n.Inbox(to))
			}
			if len(got) != 1 || got[0].Text != tt.text {
				t.Fatalf("handset received %+v, want exactly one message %q", got, tt.text)
			}
			subs := n.Submissions()
			for _, s := range subs {
				if s.SRR != tt.report {
					t.Errorf("submission %d: status report requested = %v, want %v", s.MR, s.SRR, tt.report)
				}
			}
			if len(tt.text) > 160 && len(subs) < 2 {
				t.Errorf("long text went out in %d part(s), want several", len(subs))
			}
		})
	}
}

func TestGammuGetAllSMS(t *testing.T) {
	n, mods := startNetwork(t)
	const text = "Inbound to gammu: café"
	if err := n.Inject("+15559990000", mods[0].Config().Number, text); err != nil {
		t.Fatal(err)
	}
	out := gammu(t, mods[0].Path(), "getallsms")
	for _, want := range []string{text, "+15559990000", "1 SMS parts in 1 SMS sequences"} {
		if !strings.Contains(out, want) {
			t.Errorf("gammu getallsms output lacks %q:\n%s", want, out)
		}
	}
}
