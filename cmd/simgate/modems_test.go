package main

import (
	"strings"
	"testing"

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
