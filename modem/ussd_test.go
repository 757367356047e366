package modem

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/sim"
)

// USSD over a real pseudo-terminal: a one-shot balance request (in plain
// text, and packed on a Huawei profile, which refuses a plain request),
// a UCS-2 answer, a menu answered in two steps, a cancel, and a timeout.
func TestUSSD(t *testing.T) {
	for _, profile := range []string{"", sim.ProfileHuaweiE1752} {
		t.Run("one-shot/profile="+profile, func(t *testing.T) {
			_, mods, dir := startSims(t, sim.Config{Profile: profile})
			m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, newEvents()))
			r, err := m.USSD(testCtx(t), "*100#")
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != simgate.USSDDone || r.Text != sim.DefaultBalance || r.Session != "" {
				t.Fatalf("USSD = %+v, want done with the balance", r)
			}
		})
	}
	t.Run("UCS-2", func(t *testing.T) {
		const balance = "Баланс: 96,45 руб."
		_, mods, dir := startSims(t, sim.Config{Balance: balance})
		m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, newEvents()))
		if r, err := m.USSD(testCtx(t), "*100#"); err != nil || r.Text != balance {
			t.Fatalf("USSD = %+v, %v, want %q", r, err, balance)
		}
	})
	t.Run("menu", func(t *testing.T) {
		_, mods, dir := startSims(t)
		m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, newEvents()))
		ctx := testCtx(t)
		r, err := m.USSD(ctx, "*111#")
		if err != nil || r.Status != simgate.USSDFurtherAction || r.Session == "" || r.Text != "1 Balance\n2 Data" {
			t.Fatalf("USSD = %+v, %v, want the menu with a session", r, err)
		}
		if _, err := m.USSDReply(ctx, "ussd_other", "2"); !errors.Is(err, ErrUSSDSession) {
			t.Fatalf("reply to another session: %v, want ErrUSSDSession", err)
		}
		r2, err := m.USSDReply(ctx, r.Session, "2")
		if err != nil || r2.Status != simgate.USSDDone || !strings.HasPrefix(r2.Text, "Data left") {
			t.Fatalf("reply = %+v, %v, want done with the data left", r2, err)
		}
		if _, err := m.USSDReply(ctx, r.Session, "1"); !errors.Is(err, ErrUSSDSession) {
			t.Fatalf("reply to an ended session: %v, want ErrUSSDSession", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		_, mods, dir := startSims(t)
		m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, newEvents()))
		ctx := testCtx(t)
		r, err := m.USSD(ctx, "*111#")
		if err != nil {
			t.Fatal(err)
		}
		if err := m.USSDCancel(ctx, r.Session); err != nil {
			t.Fatal(err)
		}
		if n := logHas(mods[0], "AT+CUSD=2"); n != 1 {
			t.Fatalf("AT+CUSD=2 sent %d times, want once", n)
		}
		if _, err := m.USSDReply(ctx, r.Session, "1"); !errors.Is(err, ErrUSSDSession) {
			t.Fatalf("reply after the cancel: %v, want ErrUSSDSession", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		_, mods, dir := startSims(t)
		opts := testOptions(t, dir, newEvents())
		opts.USSDTimeout = 300 * time.Millisecond
		m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, opts)
		r, err := m.USSD(testCtx(t), "*999#")
		if err != nil || r.Status != simgate.USSDTimeout {
			t.Fatalf("USSD = %+v, %v, want timeout", r, err)
		}
		if n := logHas(mods[0], "AT+CUSD=2"); n != 1 {
			t.Fatalf("AT+CUSD=2 sent %d times after the timeout, want once", n)
		}
		if _, err := m.Send(testCtx(t), "+15557654321", "after the USSD"); err != nil {
			t.Fatalf("Send after the timeout: %v", err)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		_, mods, dir := startSims(t)
		m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, newEvents()))
		for _, code := range []string{"", `*100"#`, "*100#\r", strings.Repeat("1", 183)} {
			if _, err := m.USSD(testCtx(t), code); !errors.Is(err, ErrUSSDInvalid) {
				t.Errorf("USSD(%q) = %v, want ErrUSSDInvalid", code, err)
			}
		}
	})
}

// Recorded answers of real devices, played on a pseudo-terminal to the
// driver's USSD request: a Huawei E160's packed balance, a Huawei E3276's
// UCS-2 answer, a Sony Ericsson's text over two lines.
func TestUSSDRecordedAnswers(t *testing.T) {
	for _, tc := range []struct{ file, name string }{
		{"other-github-issues.txt", "pgammu3-cusd-packed"},
		{"huawei-gammu-tests.txt", "e3276-cusd-ucs2"},
		{"sonyericsson-github-issues.txt", "z710i-cusd-multiline"},
		{"other-python-gsmmodem.txt", "cusd-balance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := recorded(t, tc.file, tc.name)
			var lines []string
			for _, l := range c.answer {
				if l != "OK" {
					lines = append(lines, l)
				}
			}
			conn := replayConn(t, "+CUSD", append([]string{"OK"}, lines...))
			m := newModem(Config{Name: "replay"}, Options{Logger: testLogger(t), USSDTimeout: 5 * time.Second}, nil)
			job := &ussdJob{code: "*100#"}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := m.runUSSD(ctx, conn, job); err != nil {
				t.Fatal(err)
			}
			if want := strings.ReplaceAll(c.expect["text"], `\n`, "\n"); job.result.Text != want {
				t.Fatalf("text %q, want %q", job.result.Text, want)
			}
			if job.result.Status != simgate.USSDDone {
				t.Fatalf("status %s, want done", job.result.Status)
			}
		})
	}
}

// A USSD request between submits under load: every submit goes out, none is
// lost, and a submit waits at most for the USSD's own time.
func TestUSSDBetweenSubmits(t *testing.T) {
	n, mods, dir := startSims(t, sim.Config{USSDDelay: 300 * time.Millisecond})
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, newEvents()))
	ctx := testCtx(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst time.Duration
	sent := 0
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				start := time.Now()
				if _, err := m.Send(ctx, "+15557654321", fmt.Sprintf("load %d-%d", w, i)); err != nil {
					t.Errorf("Send: %v", err)
					return
				}
				mu.Lock()
				worst, sent = max(worst, time.Since(start)), sent+1
				mu.Unlock()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	r, err := m.USSD(ctx, "*100#")
	took := time.Since(start)
	wg.Wait()
	if err != nil || r.Status != simgate.USSDDone {
		t.Fatalf("USSD under load = %+v, %v", r, err)
	}
	if got := len(n.Submissions()); got != 30 || sent != 30 {
		t.Fatalf("%d submissions, %d sends returned, want 30 each", got, sent)
	}
	t.Logf("USSD took %v; the slowest submit took %v", took, worst)
}

// The balance watch reads the balance by USSD at the start of a session,
// parses it with the configured pattern, marks it low when it crosses the
// low mark, and hands it on; an answer the pattern does not match keeps its
// text and says why there is no amount. The answers are real ones recorded
// by python-gsmmodem and gammu.
func TestBalanceWatch(t *testing.T) {
	for _, tc := range []struct {
		name, answer, pattern string
		want                  *float64
		low, crossed          bool
	}{
		{"low", "Available Balance: R 4.45 .", `Balance: R (?P<amount>[\d.,]+)`, ptr(4.45), true, true},
		{"enough", "Available Balance: R 96.45 .", `Balance: R (?P<amount>[\d.,]+)`, ptr(96.45), false, false},
		{"comma", " Aktuelles Guthaben: 9,91 EUR.", `Guthaben: (?P<amount>[\d.,]+)`, ptr(9.91), false, false},
		{"no match", "Unknown service.", `Balance: R (?P<amount>[\d.,]+)`, nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, mods, dir := startSims(t, sim.Config{Balance: tc.answer})
			evs := newEvents()
			w := &BalanceWatch{Code: "*100#", Every: time.Hour, Pattern: regexp.MustCompile(tc.pattern), Low: 5, LowSet: true}
			m := openModem(t, Config{Name: "m0", Device: mods[0].Path(), Balance: w}, testOptions(t, dir, evs))
			b := evs.wait(t, EventBalance, 1)[0].Balance
			switch {
			case tc.want == nil && (b.Amount != nil || b.Err == "" || b.Text != tc.answer):
				t.Fatalf("balance %+v, want no amount, the text and why", b)
			case tc.want != nil && (b.Amount == nil || *b.Amount != *tc.want):
				t.Fatalf("balance %+v, want %v", b, *tc.want)
			case b.Low != tc.low || b.CrossedLow != tc.crossed:
				t.Fatalf("balance %+v, want low %v crossed %v", b, tc.low, tc.crossed)
			}
			if st := m.Status().Balance; st == nil || st.Text != b.Text {
				t.Fatalf("status balance %+v", st)
			}
		})
	}
	for _, tc := range []struct {
		in   string
		want float64
	}{{"12.50", 12.5}, {"12,50", 12.5}, {"1 234,50", 1234.5}, {"1,234.50", 1234.5}, {"1.234", 1234}, {"-3", -3}} {
		if got, err := parseAmount(tc.in); err != nil || got != tc.want {
			t.Errorf("parseAmount(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

func ptr(f float64) *float64 { return &f }
