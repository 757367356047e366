package modem

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/sim"
)

func TestOpenReadsIdentityAndHealth(t *testing.T) {
	_, mods, _ := startSims(t, sim.Config{Manufacturer: "Quectel", Model: "EC25", Revision: "EC25EFAR06A03M4G", Operator: "Testnet"})
	ev := newEvents()
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, t.TempDir(), ev))
	sc := mods[0].Config()
	st := m.Status()
	want := simgate.ModemIdentity{Manufacturer: "Quectel", Model: "EC25", Revision: "EC25EFAR06A03M4G", IMEI: sc.IMEI, IMSI: sc.IMSI, ICCID: sc.ICCID}
	if got := st.Identity; got != want {
		t.Fatalf("identity = %+v, want %+v", got, want)
	}
	if got, want := st.State, simgate.ModemReady; got != want {
		t.Fatalf("state = %s (%s), want %s", got, st.Reason, want)
	}
	if got, want := st.Operator, "Testnet"; got != want {
		t.Fatalf("operator = %q, want %q", got, want)
	}
	if got, want := st.Registration, "home"; got != want {
		t.Fatalf("registration = %q, want %q", got, want)
	}
	if got, want := st.SignalDBm, -73; got != want { // rssi 20
		t.Fatalf("signal = %d dBm, want %d", got, want)
	}
	if got, want := st.SignalBars, 4; got != want {
		t.Fatalf("bars = %d, want %d", got, want)
	}
	if got, want := st.Device, mods[0].Path(); got != want {
		t.Fatalf("device = %q, want %q", got, want)
	}
}

func TestICCIDVariants(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmds []string
	}{
		{"CCID", []string{"+CCID"}},
		{"QCCID", []string{"+QCCID"}},
		{"Huawei", []string{"^ICCID"}},
		{"Sierra", []string{"+ICCID"}},
		{"CRSM fallback", []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, mods, _ := startSims(t, sim.Config{ICCIDCommands: tc.cmds})
			m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, t.TempDir(), nil))
			if got, want := m.Identity().ICCID, mods[0].Config().ICCID; got != want {
				t.Fatalf("ICCID = %q, want %q", got, want)
			}
		})
	}
}

func TestOpenByIdentity(t *testing.T) {
	_, mods, dir := startSims(t, sim.Config{}, sim.Config{}, sim.Config{}, sim.Config{PIN: "2468"})
	for _, tc := range []struct {
		name string
		cfg  Config
		want int
	}{
		{"IMEI", Config{Name: "a", IMEI: mods[2].Config().IMEI}, 2},
		{"ICCID", Config{Name: "b", ICCID: mods[1].Config().ICCID}, 1},
		// The ICCID is read before the PIN is entered, as modems allow.
		{"ICCID of a locked SIM", Config{Name: "c", ICCID: mods[3].Config().ICCID, PIN: "2468"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := openModem(t, tc.cfg, testOptions(t, dir, nil))
			if got, want := m.Status().Device, mods[tc.want].Path(); got != want {
				t.Fatalf("found on %s, want %s", got, want)
			}
			m.Close()
		})
	}
	t.Run("absent", func(t *testing.T) {
		_, err := Open(testCtx(t), Config{Name: "x", IMEI: "490154203237518"}, testOptions(t, dir, nil))
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}

func TestSendSingleAndLong(t *testing.T) {
	n, mods, _ := startSims(t)
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, t.TempDir(), newEvents()))
	ctx := testCtx(t)

	mrs, err := m.Send(ctx, "+15557654321", "Your code is 123456")
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	long := strings.Repeat("0123456789", 20) // 200 GSM-7 characters: 2 parts
	mrs2, err := m.Send(ctx, "+15557654321", long)
	if err != nil {
		t.Fatalf("Send long: %v", err)
	}
	mrs3, err := m.Send(ctx, "+15557654321", strings.Repeat("Привет ", 15)) // UCS-2, 105 chars: 2 parts
	if err != nil {
		t.Fatalf("Send UCS-2: %v", err)
	}
	if got, want := len(mrs)+len(mrs2)+len(mrs3), 5; got != want {
		t.Fatalf("parts = %d, want %d", got, want)
	}
	subs := n.Submissions()
	if got, want := len(subs), 5; got != want {
		t.Fatalf("submissions = %d, want %d", got, want)
	}
	all := append(append(append([]int{}, mrs...), mrs2...), mrs3...)
	for i, s := range subs {
		if got, want := s.MR, all[i]; got != want {
			t.Errorf("submission %d MR = %d, want %d", i, got, want)
		}
		if !s.SRR {
			t.Errorf("submission %d did not request a status report", i)
		}
		if s.PDU[0:2] != "31" && s.PDU[0:2] != "71" {
			t.Errorf("submission %d first octet %s, want SRR and relative VP", i, s.PDU[0:2])
		}
	}
	// One encoder per modem: two long messages get different references
	// (defect 3: sms.Encode gives every message reference 1).
	if subs[1].ConcatRef == subs[3].ConcatRef {
		t.Fatalf("two long messages share concatenation reference %d", subs[1].ConcatRef)
	}
	inbox, err := n.WaitInbox(ctx, "+15557654321", 3)
	if err != nil {
		t.Fatalf("inbox: %v", err)
	}
	if got, want := inbox[1].Text, long; got != want {
		t.Fatalf("handset got %q, want %q", got, want)
	}
	if got, want := inbox[2].Text, strings.Repeat("Привет ", 15); got != want {
		t.Fatalf("handset got %q, want %q", got, want)
	}
	if got, want := m.Status().Counters.Sent, int64(5); got != want {
		t.Fatalf("sent counter = %d, want %d", got, want)
	}
}

func TestReportsByCNMICapabilities(t *testing.T) {
	for _, tc := range []struct {
		name     string
		caps     string
		wantCNMI string
		stored   bool
	}{
		{"full", sim.DefaultCNMICaps, "AT+CNMI=2,1,0,1,0", false},
		{"SIM800", sim.SIM800CNMICaps, "AT+CNMI=2,1,0,1,0", false},
		{"stored only", "(0-2),(0-3),(0,2),(0,2),(0,1)", "AT+CNMI=2,1,0,2,0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, mods, _ := startSims(t, sim.Config{CNMICaps: tc.caps})
			ev := newEvents()
			m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, t.TempDir(), ev))
			if got := logHas(mods[0], tc.wantCNMI); got != 1 {
				t.Fatalf("%q sent %d times; log: %q", tc.wantCNMI, got, mods[0].Log())
			}
			mrs, err := m.Send(testCtx(t), "+15557654321", "hello")
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := ev.wait(t, EventReport, 1)[0]
			if got.Report.MR != mrs[0] || got.Report.Recipient != "+15557654321" || got.Report.TPST != 0 {
				t.Fatalf("report = %+v, want MR %d to +15557654321 delivered", got.Report, mrs[0])
			}
			if got.Stored != tc.stored {
				t.Fatalf("stored = %v, want %v", got.Stored, tc.stored)
			}
			if got.Identity.IMEI != mods[0].Config().IMEI {
				t.Fatalf("report identity %+v", got.Identity)
			}
			if tc.stored {
				eventually(t, "stored report deleted", func() bool { return logHas(mods[0], "AT+CMGD=") == 1 })
			}
		})
	}
}

func TestInboundStoredAndLong(t *testing.T) {
	n, mods, _ := startSims(t)
	ev := newEvents()
	openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, t.TempDir(), ev))
	num := mods[0].Config().Number
	if err := n.Inject("+4915112345678", num, "hi there"); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("long message ", 30)
	if err := n.Inject("+4915112345678", num, long); err != nil {
		t.Fatal(err)
	}
	got := ev.wait(t, EventInbound, 2)
	if got[0].Inbound.Text != "hi there" || got[0].Inbound.From != "+4915112345678" {
		t.Fatalf("first inbound = %+v", got[0].Inbound)
	}
	if got[1].Inbound.Text != long {
		t.Fatalf("long inbound = %q, want %q", got[1].Inbound.Text, long)
	}
	// 1 + 3 parts, each deleted once the whole message was accepted.
	eventually(t, "stored SMS deleted", func() bool { return logHas(mods[0], "AT+CMGD=") == 4 })
}

func TestLeftoversAtStartAndRefusedEvents(t *testing.T) {
	n, mods, _ := startSims(t)
	num := mods[0].Config().Number
	// Arrives before any host listens: stored on the SIM.
	if err := n.Inject("+4915112345678", num, "while you were away"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	ev := newEvents()
	ev.setFail(true)
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, t.TempDir(), ev))
	if got := logHas(mods[0], "AT+CMGD="); got != 0 {
		t.Fatalf("refused message deleted (%d AT+CMGD)", got)
	}
	m.Close()
	ev.setFail(false)
	openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, t.TempDir(), ev))
	got := ev.wait(t, EventInbound, 1)
	if got[0].Inbound.Text != "while you were away" || !got[0].Stored {
		t.Fatalf("inbound = %+v stored=%v", got[0].Inbound, got[0].Stored)
	}
	eventually(t, "leftover deleted", func() bool { return logHas(mods[0], "AT+CMGD=") == 1 })
}

// gatedEvents is a subscriber that takes events only while its gate is
// open, and counts the calls that wait at it.
type gatedEvents struct {
	*events
	gate    chan struct{}
	waiting atomic.Int32
}

func (g *gatedEvents) HandleEvent(ctx context.Context, ev Event) error {
	g.waiting.Add(1)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.events.HandleEvent(ctx, ev)
}

// A routed report (phase 1) goes to the subscriber from the modem's delivery
// goroutine: a subscriber stuck on one report holds up no submit, and the
// reports then arrive in order. Reports still buffered when the modem closes
// are delivered before Close returns.
func TestRoutedReportsDoNotHoldUpSubmits(t *testing.T) {
	_, mods, _ := startSims(t)
	sub := &gatedEvents{events: newEvents(), gate: make(chan struct{})}
	m, err := Open(testCtx(t), Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, t.TempDir(), sub))
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	send := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(testCtx(t), 10*time.Second)
		defer cancel()
		mrs, err := m.Send(ctx, "+15557654321", "hello")
		if err != nil {
			t.Fatalf("Send with the subscriber stuck on a report: %v", err)
		}
		want = append(want, mrs...)
	}
	send()
	eventually(t, "the subscriber to be stuck on the first report", func() bool { return sub.waiting.Load() == 1 })
	for range 4 {
		send()
	}
	close(sub.gate)
	var got []int
	for _, ev := range sub.wait(t, EventReport, 5) {
		got = append(got, ev.Report.MR)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("reports for MRs %v, want %v in submit order", got, want)
	}

	// Block the subscriber again, send, and close while reports wait.
	sub.gate = make(chan struct{})
	sub.waiting.Store(0)
	send()
	send()
	eventually(t, "a report to wait for the subscriber", func() bool { return sub.waiting.Load() >= 1 })
	time.AfterFunc(100*time.Millisecond, func() { close(sub.gate) })
	m.Close()
	if n := sub.count(EventReport); n < 6 {
		t.Fatalf("%d reports delivered by Close, want at least 6", n)
	}
}

// A modem in phase 2+ (AT+CSMS=1 in its profile) routes the next report only
// after AT+CNMA: the driver acknowledges each one once the subscriber has it,
// so all arrive, in order, with routing still on.
func TestReportsAcknowledgedInPhase2(t *testing.T) {
	_, mods, _ := startSims(t, sim.Config{Phase2: true, AckTimeout: time.Second})
	ev := newEvents()
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, t.TempDir(), ev))
	var want []int
	for i := range 4 {
		mrs, err := m.Send(testCtx(t), "+15557654321", fmt.Sprintf("report %d", i))
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		want = append(want, mrs...)
	}
	var got []int
	for _, e := range ev.wait(t, EventReport, 4) {
		if e.Stored {
			t.Fatalf("report %+v came stored: routing was switched off", e.Report)
		}
		got = append(got, e.Report.MR)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("reports for MRs %v, want %v", got, want)
	}
	eventually(t, "an AT+CNMA for each report", func() bool { return logHas(mods[0], "AT+CNMA") == 4 })
}

// In phase 2+ a routed report or SMS the subscriber refuses is refused to the
// network (AT+CNMA=2), which delivers it again, instead of being
// acknowledged and lost. A long SMS whose last part was refused is put
// together from the parts already acknowledged and that part, delivered
// again.
func TestRefusedRoutedEventsComeAgainInPhase2(t *testing.T) {
	n, mods, _ := startSims(t, sim.Config{
		Phase2: true, RetryDelay: 200 * time.Millisecond,
		CNMICaps: "(0-2),(0,2),(0,2),(0-2),(0,1)", // mt 2: routed +CMT
	})
	ev := newEvents()
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, t.TempDir(), ev))

	ev.setFail(true)
	mrs, err := m.Send(testCtx(t), "+15557654321", "refused report")
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	eventually(t, "the report refused to the network", func() bool { return logHas(mods[0], "AT+CNMA=2") >= 1 })
	ev.setFail(false)
	got := ev.wait(t, EventReport, 1)
	if r := got[0].Report; r.MR != mrs[0] || got[0].Stored {
		t.Fatalf("report %+v (stored %v), want a routed one for MR %d", r, got[0].Stored, mrs[0])
	}

	refusals := logHas(mods[0], "AT+CNMA=2")
	ev.setFail(true)
	long := strings.Repeat("refused long message ", 12)
	if err := n.Inject("+4915112345678", mods[0].Config().Number, long); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the last part refused to the network", func() bool { return logHas(mods[0], "AT+CNMA=2") > refusals })
	ev.setFail(false)
	in := ev.wait(t, EventInbound, 1)
	if got := in[0].Inbound.Text; got != long {
		t.Fatalf("long SMS delivered as %q, want %q", got, long)
	}
}
