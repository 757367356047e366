package modem

import (
	"strings"
	"testing"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/sim"
)

// A modem knows its SIM's number: configured, or read with AT+CNUM at
// connect; a SIM that does not tell it leaves it unknown.
func TestModemNumber(t *testing.T) {
	_, mods, dir := startSims(t, sim.Config{Number: "+4917011111111"}, sim.Config{Number: "+4917022222222", NoNumber: true},
		sim.Config{Number: "+4917033333333", NoNumber: true})
	p := startPool(t, mods, dir, PoolOptions{}, func(i int, c *Config) {
		if i == 2 {
			c.Number = "+4917033333333"
		}
	})
	want := map[string]string{"m0": "+4917011111111", "m1": "", "m2": "+4917033333333"}
	for _, s := range p.Status() {
		if s.Number != want[s.ID] {
			t.Errorf("%s: number %q, want %q", s.ID, s.Number, want[s.ID])
		}
	}
}

// A missed call goes to a SIM picked as a sender is: the prefix it is
// preferred for first, then health, rotating among equals; the SIM asked
// for while it is offered. Modems without a known number, that ignore
// calls, disabled or draining are not offered; with none, the error is
// unavailable and says why.
func TestPickCallee(t *testing.T) {
	_, mods, dir := startSims(t,
		sim.Config{Number: "+4917011111111"},
		sim.Config{Number: "+4917022222222"},
		sim.Config{Number: "+33612345678"},
		sim.Config{Number: "+4917044444444", NoNumber: true},
		sim.Config{Number: "+4917055555555"})
	p := startPool(t, mods, dir, PoolOptions{}, func(i int, c *Config) {
		switch i {
		case 2:
			c.Prefixes = []string{"+33"}
		case 4:
			c.IgnoreCalls = true
		}
	})
	pick := func(to, prefer string) (string, string) {
		t.Helper()
		id, number, err := p.PickCallee(to, prefer)
		if err != nil {
			t.Fatalf("PickCallee(%s, %q): %v", to, prefer, err)
		}
		return id, number
	}
	if id, number := pick("+33698765432", ""); id != "m2" || number != "+33612345678" {
		t.Fatalf("a French caller: %s %s, want m2 (preferred for +33)", id, number)
	}
	seen := map[string]string{}
	for range 6 {
		id, number := pick("+4915123456789", "")
		seen[id] = number
	}
	if len(seen) != 3 || seen["m0"] != "+4917011111111" || seen["m1"] != "+4917022222222" || seen["m2"] != "+33612345678" {
		t.Fatalf("German callers went to %v, want m0, m1 and m2 in turn (m3 has no known number, m4 ignores calls)", seen)
	}
	for range 3 {
		if id, _ := pick("+33698765432", "m1"); id != "m1" {
			t.Fatalf("with m1 asked for: %s", id)
		}
	}
	if id, _ := pick("+4915123456789", "m3"); id == "m3" {
		t.Fatal("m3, whose number is unknown, was taken when asked for")
	}

	if err := p.Disable("m0"); err != nil {
		t.Fatal(err)
	}
	if err := p.Disable("m2"); err != nil {
		t.Fatal(err)
	}
	if id, _ := pick("+4915123456789", "m0"); id != "m1" {
		t.Fatalf("with m0 and m2 disabled: %s, want m1", id)
	}
	if err := p.Disable("m1"); err != nil {
		t.Fatal(err)
	}
	_, _, err := p.PickCallee("+4915123456789", "")
	if simgate.ErrorCode(err) != simgate.CodeUnavailable {
		t.Fatalf("with every SIM with a number disabled: %v, want unavailable", err)
	}

	// No modem with a number: the error says what to set.
	_, bare, dir2 := startSims(t, sim.Config{NoNumber: true})
	q := startPool(t, bare, dir2, PoolOptions{}, nil)
	if _, _, err := q.PickCallee("+4915123456789", ""); simgate.ErrorCode(err) != simgate.CodeUnavailable || !strings.Contains(err.Error(), "number") || !strings.Contains(err.Error(), "ignored") {
		t.Fatalf("without numbers: %v", err)
	}
}
