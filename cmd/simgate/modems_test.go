package main

import (
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/modem/sim"
)

func TestModemsProbe(t *testing.T) {
	n := sim.NewNetwork()
	defer n.Close()
	mods, err := n.Start(t.TempDir(), sim.Config{Manufacturer: "Quectel", Model: "EC25", IMEI: "866758042175926", Operator: "Telekom.de"})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "modems", "probe", mods[0].Path())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"DEVICE", mods[0].Path(), "Quectel", "EC25", "866758042175926", mods[0].Config().ICCID, "Telekom.de", "home", "dBm"} {
		if !strings.Contains(out, want) {
			t.Errorf("probe table lacks %q:\n%s", want, out)
		}
	}
	if code, _, _ := runCLI(t, "modems"); code != 2 {
		t.Fatalf("modems without probe: exit %d, want 2", code)
	}
}

func TestSendOnDevice(t *testing.T) {
	n := sim.NewNetwork()
	defer n.Close()
	mods, err := n.Start(t.TempDir(), sim.Config{PIN: "4321", SubmitLatency: 5 * time.Millisecond, ReportDelay: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "send", "--device", mods[0].Path(), "--pin", "4321",
		"--to", "+15551234567", "--text", "hardware check", "--wait-report", "10s", "--timeout", "30s")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errs, out)
	}
	if !strings.Contains(out, "message reference(s) [0]") || !strings.Contains(out, "TP-ST 0x00, delivered") {
		t.Fatalf("output:\n%s", out)
	}
	if got := n.Inbox("+15551234567"); len(got) != 1 || got[0].Text != "hardware check" {
		t.Fatalf("inbox %+v", got)
	}
	if strings.Contains(out+errs, "4321") {
		t.Fatal("the PIN was printed")
	}
}

func TestSendThroughAPINeedsKey(t *testing.T) {
	t.Setenv("SIMGATE_API_KEY", "")
	if code, _, errs := runCLI(t, "send", "--to", "+15551234567", "--text", "x"); code != 2 || !strings.Contains(errs, "SIMGATE_API_KEY") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}
