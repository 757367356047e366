package sim

import (
	"strings"
	"testing"
)

// gammu's getussd against the virtual modem: the textbook modem answers in
// plain text, the Huawei profile in packed septets, which gammu decodes as
// it does for the real sticks.
func TestGammuGetUSSD(t *testing.T) {
	for _, profile := range []string{"", ProfileHuaweiE1752} {
		t.Run("profile="+profile, func(t *testing.T) {
			_, mods := startNetwork(t, Config{Profile: profile})
			out := gammu(t, mods[0].Path(), "getussd", "*100#")
			if !strings.Contains(out, "12.50 EUR") {
				t.Fatalf("gammu getussd printed %q, want the balance", out)
			}
		})
	}
}
