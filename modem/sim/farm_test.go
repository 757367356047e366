package sim

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSixtyFourModems runs 64 virtual modems in one process and talks to all
// of them at once through go.bug.st/serial: identification and a send each.
func TestSixtyFourModems(t *testing.T) {
	const count = 64
	cfgs := make([]Config, count)
	n, mods := startNetwork(t, cfgs...)
	clients := make([]*client, count)
	for i, m := range mods {
		clients[i] = dial(t, m.Path())
	}
	errs := make(chan error, count)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- converse(t, c, mods[i], i)
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("64 modems did not finish in time")
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	got := waitInbox(t, n, "+15557654321", count)
	seen := map[string]bool{}
	for _, m := range got {
		seen[m.Text] = true
	}
	if len(seen) != count {
		t.Fatalf("%d distinct messages, want %d", len(seen), count)
	}
	imeis := map[string]bool{}
	for _, s := range n.Submissions() {
		imeis[s.IMEI] = true
	}
	if len(imeis) != count {
		t.Fatalf("%d distinct IMEIs in submissions, want %d", len(imeis), count)
	}
}

// converse does what a driver does on a new modem, then sends one SMS.
func converse(t testing.TB, c *client, m *Modem, i int) error {
	for _, cmd := range []string{"ATE0", "AT+CMEE=1", "AT+CMGF=0", "AT+CNMI=2,1,0,1,0"} {
		if res, err := c.tryCmd(cmd); err != nil || res[len(res)-1] != "OK" {
			return fmt.Errorf("%s: %s: %q %v", m.cfg.Name, cmd, res, err)
		}
	}
	res, err := c.tryCmd("AT+CGSN")
	if err != nil || len(res) != 2 || res[0] != m.cfg.IMEI {
		return fmt.Errorf("%s: AT+CGSN: %q %v", m.cfg.Name, res, err)
	}
	p := encodeSubmit(t, nil, "+15557654321", fmt.Sprintf("message %d", i), true)[0]
	res, err = c.trySend(p)
	if err != nil || !strings.HasPrefix(res[0], "+CMGS: 0") || res[len(res)-1] != "OK" {
		return fmt.Errorf("%s: send: %q %v", m.cfg.Name, res, err)
	}
	return nil
}

// BenchmarkSixtyFourModems measures rounds of one send on each of 64 modems
// at once, over real ptys.
func BenchmarkSixtyFourModems(b *testing.B) {
	const count = 64
	_, mods := startNetwork(b, make([]Config, count)...)
	clients := make([]*client, count)
	for i, m := range mods {
		clients[i] = dial(b, m.Path())
		m.SetFaults(Faults{SubmitLatency: time.Nanosecond})
		if _, err := clients[i].tryCmd("ATE0"); err != nil {
			b.Fatal(err)
		}
	}
	p := encodeSubmit(b, nil, "+15557654321", "bench", false)[0]
	b.ResetTimer()
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, count)
		for _, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if res, err := c.trySend(p); err != nil || res[len(res)-1] != "OK" {
					errs <- fmt.Errorf("send: %q %v", res, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(count*b.N)/b.Elapsed().Seconds(), "sms/s")
}
