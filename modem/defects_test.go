package modem

import (
	"github.com/simgate/simgate"

	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate/modem/sim"
)

// Regression tests for the defects of warthog618/modem v0.4.0 listed in
// docs/PROTOCOL.md, each against a virtual modem.

// Defects 1 and 6: unsolicited lines in the middle of commands (the Noise
// fault puts RING, +CREG and ^RSSI between answers and their OK, and after
// the AT+CMGS prompt) while reports and SMS arrive. Every answer must still
// be parsed right, and routed SMS arrive in order.
func TestUnsolicitedStormDuringSends(t *testing.T) {
	n, mods, _ := startSims(t, sim.Config{CNMICaps: "(0-2),(0,2),(0,2),(0-2),(0,1)"}) // mt 2: routed +CMT
	mods[0].SetFaults(sim.Faults{Noise: true})
	ev := newEvents()
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, t.TempDir(), ev))
	ctx := testCtx(t)
	if got, want := m.Identity().IMEI, mods[0].Config().IMEI; got != want {
		t.Fatalf("IMEI under noise = %q, want %q", got, want)
	}
	if got, want := m.Identity().Manufacturer, sim.DefaultManufacturer; got != want {
		t.Fatalf("manufacturer under noise = %q, want %q", got, want)
	}
	const count = 20
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < count; i++ {
			if err := n.Inject("+4915112345678", mods[0].Config().Number, fmt.Sprintf("inbound %02d", i)); err != nil {
				t.Errorf("Inject: %v", err)
			}
			time.Sleep(3 * time.Millisecond)
		}
	}()
	var mrs []int
	for i := 0; i < count; i++ {
		got, err := m.Send(ctx, "+15557654321", fmt.Sprintf("message %d", i))
		if err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		mrs = append(mrs, got...)
		if i%5 == 0 {
			if err := m.RunOnce(ctx); err != nil {
				t.Fatalf("RunOnce: %v", err)
			}
		}
	}
	wg.Wait()
	subs := n.Submissions()
	if got, want := len(subs), count; got != want {
		t.Fatalf("submissions = %d, want %d", got, want)
	}
	for i, s := range subs {
		if s.MR != mrs[i] {
			t.Fatalf("submission %d has MR %d, Send said %d", i, s.MR, mrs[i])
		}
	}
	reports := ev.wait(t, EventReport, count)
	seen := map[int]bool{}
	for _, r := range reports {
		seen[r.Report.MR] = true
	}
	for _, mr := range mrs {
		if !seen[mr] {
			t.Fatalf("no report for MR %d", mr)
		}
	}
	in := ev.wait(t, EventInbound, count)
	for i, e := range in {
		if got, want := e.Inbound.Text, fmt.Sprintf("inbound %02d", i); got != want {
			t.Fatalf("inbound %d = %q, want %q (order lost)", i, got, want)
		}
	}
	st := m.Status()
	if st.SignalDBm != -73 || st.Registration != "home" {
		t.Fatalf("health under noise: %+v", st)
	}
}

// Defect 2: a +CMGS that comes after the submit timed out must neither answer
// the next command nor lead to a second submit.
func TestLateCMGSAfterTimeout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lateWait time.Duration
	}{
		{"drained while waiting", 3 * time.Second},
		{"arrives during resync", 10 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, mods, _ := startSims(t)
			mods[0].SetFaults(sim.Faults{LateCMGS: 700 * time.Millisecond})
			opts := testOptions(t, t.TempDir(), newEvents())
			opts.LateWait = tc.lateWait
			m := openModem(t, Config{Name: "m0", Device: mods[0].Path(), SubmitTimeout: 300 * time.Millisecond}, opts)
			ctx := testCtx(t)
			_, err := m.Send(ctx, "+15557654321", "first")
			if got, want := simgate.SendClassOf(err), simgate.ClassAmbiguous; got != want {
				t.Fatalf("class = %s (%v), want %s", got, err, want)
			}
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("err = %v, want ErrTimeout", err)
			}
			mods[0].SetFaults(sim.Faults{})
			mrs, err := m.Send(ctx, "+15557654321", "second")
			if err != nil {
				t.Fatalf("second Send: %v", err)
			}
			subs := n.Submissions()
			if got, want := len(subs), 2; got != want {
				t.Fatalf("submissions = %d, want %d (the timed-out message must not be resent)", got, want)
			}
			if got, want := mrs[0], subs[1].MR; got != want {
				t.Fatalf("second MR = %d, want %d (the late answer was taken for it)", got, want)
			}
			if got, want := subs[0].Text, "first"; got != want {
				t.Fatalf("first submission %q", got)
			}
			// And the port still answers in step.
			if err := m.RunOnce(ctx); err != nil {
				t.Fatalf("RunOnce: %v", err)
			}
		})
	}
}

// Defects 4 and 7: lowercase hex from the modem, and status reports without
// the SMSC prefix, routed and stored.
func TestReportsWithoutSMSCAndLowercase(t *testing.T) {
	for _, tc := range []struct {
		name string
		caps string
	}{
		{"routed", sim.DefaultCNMICaps},
		{"stored", "(0-2),(0-3),(0,2),(0,2),(0,1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, mods, _ := startSims(t, sim.Config{CNMICaps: tc.caps})
			mods[0].SetFaults(sim.Faults{NoSMSCInReports: true, LowercaseHex: true})
			ev := newEvents()
			m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, t.TempDir(), ev))
			mrs, err := m.Send(testCtx(t), "+15557654321", strings.Repeat("x", 200))
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := ev.wait(t, EventReport, 2)
			for i, e := range got {
				if e.Report.Recipient != "+15557654321" || e.Report.TPST != 0 {
					t.Fatalf("report %d = %+v", i, e.Report)
				}
			}
			if got[0].Report.MR != mrs[0] && got[0].Report.MR != mrs[1] {
				t.Fatalf("report MR %d not in %v", got[0].Report.MR, mrs)
			}
		})
	}
}

// Defect 8: ATZ resets AT+CNMI, so indications are configured after it.
func TestCNMIAfterATZ(t *testing.T) {
	_, mods, _ := startSims(t)
	openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, t.TempDir(), newEvents()))
	lastZ, lastCNMI := -1, -1
	for i, l := range mods[0].Log() {
		switch {
		case strings.EqualFold(l, "ATZ"):
			lastZ = i
		case strings.HasPrefix(strings.ToUpper(l), "AT+CNMI=") && !strings.HasSuffix(l, "?"):
			lastCNMI = i
		}
	}
	if lastZ < 0 || lastCNMI < lastZ {
		t.Fatalf("AT+CNMI (line %d) not after ATZ (line %d): %q", lastCNMI, lastZ, mods[0].Log())
	}
}

// Defect 4: PDUs go out in uppercase hex.
func TestEncodeUppercase(t *testing.T) {
	pdus, err := encode(newEncoder(24*time.Hour), "+15557654321", "hello ü")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pdus {
		if p.hex != strings.ToUpper(p.hex) || !strings.HasPrefix(p.hex, "00") {
			t.Fatalf("PDU %q is not uppercase with an empty SMSC", p.hex)
		}
	}
}

// The filter in isolation: a +CMGS that arrives with no prompt outstanding
// is eaten with its OK; one after the prompt passes; URCs are queued in
// order, with their PDU lines; noise (^RSSI) is dropped.
func TestFilterSortsLines(t *testing.T) {
	f := newFilter(nil)
	f.feed([]byte("\r\n+CMGS: 7\r\n\r\nOK\r\n"))
	f.beginSubmit()
	f.feed([]byte("\r\n+CDS: 25\r\n0006"))
	f.feed([]byte("4C0B915155674523F1\r\nRING\r\n\r\n> "))
	f.feed([]byte("\r\n^RSSI: 20\r\n\r\n+CMGS: 8\r\n\r\nOK\r\n+CMTI: \"SM\",3\r\n"))
	if !f.endSubmit() {
		t.Fatal("prompt not seen")
	}
	if got, want := string(f.out), "\r\n\r\n\r\n\r\n> \r\n\r\n+CMGS: 8\r\n\r\nOK\r\n"; got != want {
		t.Fatalf("passed %q, want %q", got, want)
	}
	urcs := f.takeURCs()
	// RING is an incoming call, queued for the modem's goroutine in order.
	if len(urcs) != 3 || urcs[0].line != "+CDS: 25" || urcs[0].pdu != "00064C0B915155674523F1" ||
		urcs[1].line != "RING" || urcs[2].line != `+CMTI: "SM",3` {
		t.Fatalf("urcs = %+v", urcs)
	}
	if got := f.takeLate(); len(got) != 1 || got[0] != 7 {
		t.Fatalf("late = %v, want [7]", got)
	}
}

func TestErrorClasses(t *testing.T) {
	const to = "+15557654321"
	for _, tc := range []struct {
		name   string
		faults sim.Faults
		class  simgate.SendClass
		cms    int
	}{
		{"unknown subscriber", sim.Faults{CMSErrorFor: map[string]int{to: 21}}, simgate.ClassPermanentRecipient, 21},
		{"barred SIM", sim.Faults{CMSErrorFor: map[string]int{to: 50}}, simgate.ClassPermanentSIM, 50},
		{"invalid PDU", sim.Faults{CMSErrorFor: map[string]int{to: 304}}, simgate.ClassPermanentMessage, 304},
		{"network failure", sim.Faults{CMSErrorRate: 1, CMSErrorCode: 38}, simgate.ClassTransient, 38},
		{"unknown error", sim.Faults{CMSErrorRate: 1}, simgate.ClassTransient, 500},
		{"network timeout", sim.Faults{CMSErrorFor: map[string]int{to: 332}}, simgate.ClassAmbiguous, 332},
		{"no network", sim.Faults{Registration: sim.RegSearching}, simgate.ClassTransient, 331},
		{"SIM missing", sim.Faults{SIMMissing: true}, simgate.ClassModemUnhealthy, 310},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, mods, _ := startSims(t)
			m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, t.TempDir(), newEvents()))
			mods[0].SetFaults(tc.faults)
			_, err := m.Send(testCtx(t), to, "hello")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if got, want := e.Class, tc.class; got != want {
				t.Fatalf("class = %s, want %s (%v)", got, want, err)
			}
			if got, want := e.CMS, tc.cms; got != want {
				t.Fatalf("CMS = %d, want %d", got, want)
			}
			if got := len(n.Submissions()); got != 0 {
				t.Fatalf("%d submissions went out", got)
			}
		})
	}
	t.Run("timeout after the prompt", func(t *testing.T) {
		_, mods, _ := startSims(t)
		m := openModem(t, Config{Name: "m0", Device: mods[0].Path(), SubmitTimeout: 200 * time.Millisecond}, testOptions(t, t.TempDir(), newEvents()))
		mods[0].SetFaults(sim.Faults{SubmitLatency: time.Second})
		_, err := m.Send(testCtx(t), to, "hello")
		if got, want := simgate.SendClassOf(err), simgate.ClassAmbiguous; got != want {
			t.Fatalf("class = %s (%v), want %s", got, err, want)
		}
	})
	t.Run("partial long message", func(t *testing.T) {
		n, mods, _ := startSims(t)
		m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, t.TempDir(), newEvents()))
		mods[0].SetFaults(sim.Faults{CMSErrorRate: 0.5, CMSErrorCode: 38})
		ctx := testCtx(t)
		for i := 0; i < 50; i++ {
			before := len(n.Submissions())
			_, err := m.Send(ctx, to, strings.Repeat("y", 400)) // 3 parts
			sent := simgate.SentParts(err)
			if err == nil || len(sent) == 0 {
				continue
			}
			subs := n.Submissions()[before:]
			if len(subs) != len(sent) {
				t.Fatalf("error says %d parts went out, network saw %d", len(sent), len(subs))
			}
			for j := range sent {
				if sent[j] != subs[j].MR {
					t.Fatalf("part %d MR %d, network saw %d", j, sent[j], subs[j].MR)
				}
			}
			var e *Error
			errors.As(err, &e)
			if e.Parts != 3 || !strings.Contains(err.Error(), fmt.Sprintf("part %d of 3", len(sent)+1)) {
				t.Fatalf("error %q does not say which part failed", err)
			}
			return
		}
		t.Fatal("no partial failure in 50 tries")
	})
}

func TestSIMPIN(t *testing.T) {
	const pin = "7392"
	t.Run("right PIN", func(t *testing.T) {
		_, mods, _ := startSims(t, sim.Config{PIN: pin})
		var logs bytes.Buffer
		opts := testOptions(t, t.TempDir(), newEvents())
		opts.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		m := openModem(t, Config{Name: "m0", Device: mods[0].Path(), PIN: pin}, opts)
		if _, err := m.Send(testCtx(t), "+15557654321", "hi"); err != nil {
			t.Fatalf("Send: %v", err)
		}
		m.Close()
		if strings.Contains(logs.String(), pin) {
			t.Fatalf("the PIN was logged: %s", logs.String())
		}
	})
	for _, tc := range []struct {
		name    string
		pin     string
		want    error
		entered int
	}{
		{"wrong PIN", "1111", ErrWrongPIN, 1},
		{"no PIN configured", "", ErrPINRequired, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, mods, _ := startSims(t, sim.Config{PIN: pin})
			// Through the background loop: the modem must go down and stay
			// down without trying again.
			m := newModem(Config{Name: "m0", Device: mods[0].Path(), PIN: tc.pin}, testOptions(t, t.TempDir(), newEvents()), nil)
			m.start()
			t.Cleanup(func() { m.Close() })
			eventually(t, "modem down", func() bool { return m.Status().State == "down" && m.Status().LastError != "" })
			time.Sleep(300 * time.Millisecond) // several backoff periods
			st := m.Status()
			if !strings.Contains(st.Reason, "not retried") || !strings.Contains(st.LastError, tc.want.Error()) {
				t.Fatalf("status = %q / %q, want %v", st.Reason, st.LastError, tc.want)
			}
			if strings.Contains(st.Reason+st.LastError, pin) {
				t.Fatalf("status shows the PIN")
			}
			if got := logHas(mods[0], "AT+CPIN="); got != tc.entered {
				t.Fatalf("PIN entered %d times, want %d", got, tc.entered)
			}
			_, err := m.Send(testCtx(t), "+15557654321", "hi")
			if got, want := simgate.SendClassOf(err), simgate.ClassModemUnhealthy; got != want {
				t.Fatalf("Send on a locked modem: %v", err)
			}
		})
	}
	t.Run("PUK", func(t *testing.T) {
		_, mods, _ := startSims(t, sim.Config{PIN: pin})
		c, err := openConn(mods[0].Path(), 0, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			c.at.Command(`+CPIN="0000"`)
		}
		c.close()
		_, err = Open(testCtx(t), Config{Name: "m0", Device: mods[0].Path(), PIN: pin}, testOptions(t, t.TempDir(), nil))
		if !errors.Is(err, ErrPUKRequired) {
			t.Fatalf("err = %v, want ErrPUKRequired", err)
		}
	})
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
