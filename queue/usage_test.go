package queue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/modem/sim"
	"github.com/simgate/simgate/queue"
)

// The daily usage the store keeps per modem is what the network saw each
// modem submit, plus the submits that may have gone out (ambiguous), and
// agrees with the pool's own count; a refused submit counts nothing.
func TestDailyUsage_CountsWhatModemsSent(t *testing.T) {
	const dave = "+15557650004"
	e := newEnv(t, envConfig{modems: 3, modem: func(i int, c *modem.Config) { c.PerDay = 100 }})
	for _, m := range e.mods {
		m.SetFaults(sim.Faults{CMSErrorFor: map[string]int{carol: 21, dave: 332}})
	}
	q := e.openQueue(queue.Options{})
	long := strings.Repeat("two parts. ", 20)
	var ids []string
	for i := 0; i < 12; i++ {
		ids = append(ids, e.enqueue(&simgate.Message{To: alice, Text: "one part"}).ID)
	}
	for i := 0; i < 3; i++ {
		ids = append(ids, e.enqueue(&simgate.Message{To: bob, Text: long}).ID)
	}
	ids = append(ids, e.enqueue(&simgate.Message{To: carol, Text: "refused"}).ID)
	ids = append(ids, e.enqueue(&simgate.Message{To: dave, Text: "maybe"}).ID)
	ambiguous := map[string]int{}
	for _, id := range ids {
		var m *simgate.Message
		waitFor(t, "message "+id+" to end", func() bool {
			m, _ = q.Message(e.ctx, id)
			return m.Status == simgate.StatusDelivered || m.Status == simgate.StatusFailed || m.Status == simgate.StatusUnknown
		}, nil)
		for _, p := range m.Parts {
			if p.Status == simgate.StatusUnknown {
				ambiguous[p.ModemID]++
			}
		}
	}
	if len(ambiguous) != 1 {
		t.Fatalf("ambiguous parts by modem %v, want one on one modem", ambiguous)
	}
	submitted := map[string]int{}
	for _, s := range e.net.Submissions() {
		submitted["m"+strings.TrimPrefix(s.Modem, "modem")]++
	}
	pooled := map[string]int{}
	for _, st := range e.pool.Status() {
		pooled[st.ID] = st.SentToday
	}
	day := e.clk.Now().UTC().Format("2006-01-02")
	total := 0
	for i := range e.mods {
		name := "m" + string(rune('0'+i))
		got, err := e.db.LoadUsage(e.ctx, name, day)
		if err != nil {
			t.Fatal(err)
		}
		if want := submitted[name] + ambiguous[name]; got != want || pooled[name] != want {
			t.Errorf("%s: usage stored %d, pool %d; network saw %d submits and %d ambiguous", name, got, pooled[name], submitted[name], ambiguous[name])
		}
		total += got
	}
	if want := 12 + 3*2 + 1; total != want {
		t.Errorf("usage %d in all, want %d (12 + 3 x 2 parts + 1 ambiguous)", total, want)
	}

	// A pool started on the same database starts from those counts.
	p := modem.NewPool(modem.PoolOptions{Options: modem.Options{Logger: testLogger(t)}, Usage: e.db})
	t.Cleanup(func() { p.Close() })
	var cfgs []modem.Config
	for i := range e.mods {
		// Devices nobody has: the pool loads usage before it opens ports.
		cfgs = append(cfgs, modem.Config{Name: "m" + string(rune('0'+i)), Device: "/nonexistent/tty" + string(rune('0'+i)), PerDay: 100})
	}
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if err := p.Open(ctx, cfgs); err != nil {
		t.Fatal(err)
	}
	for _, st := range p.Status() {
		if st.SentToday != pooled[st.ID] {
			t.Errorf("%s after a restart: sent today %d, want %d", st.ID, st.SentToday, pooled[st.ID])
		}
	}
}
