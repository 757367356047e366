package modem

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/sim"
)

// Tests of what real modem firmware prints, each replaying a device's own
// bytes (testdata/devices, or a vendor profile of the virtual modem that
// prints them). docs/HARDWARE.md lists the quirks.

// The recorded cases the tests below replay.
const (
	// One part of two of a long SMS, read with AT+CMGR from a Huawei stick.
	longPartFile, longPartCase = "huawei-chan-dongle.txt", "cmgr-concat-1of2"
	// An SMS-SUBMIT a phone left on the SIM (<stat> 3, stored sent).
	submitFile, submitCase = "other-gammu-at-sms.txt", "sms-02"
	// A status report padded with FF to the SIM record's 175 octets.
	paddedFile, paddedCase = "other-gammu-at-sms.txt", "sms-32"
	// An MMS notification, a WAP push to port 2948, read with AT+CMGR.
	mmsFile, mmsCase = "other-gammu-at-sms.txt", "sms-40"
	// An SMS read with AT+CMGL from a Huawei E1752.
	listedFile, listedCase = "huawei-github-issues.txt", "e1752-cmgl-pdu"
)

// pduLine returns the first line of c's answer that is a PDU.
func pduLine(t testing.TB, c deviceCase) string {
	t.Helper()
	for _, l := range c.answer {
		if l = strings.TrimSpace(l); isHex(l) {
			return l
		}
	}
	t.Fatalf("case %s has no PDU line", c.name)
	return ""
}

// recorded returns the corpus case name in file.
func recorded(t testing.TB, file, name string) deviceCase {
	t.Helper()
	cs, err := parseDeviceFile("testdata/devices/" + file)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no case %s in %s", name, file)
	return deviceCase{}
}

// A long SMS whose other parts never come is delivered, marked incomplete,
// after the reassembly timeout, and its stored part is deleted then: before,
// the timeout handed it on through a nil connection and the process died,
// about a day after every start.
func TestIncompleteLongSMS(t *testing.T) {
	part := recorded(t, longPartFile, longPartCase)
	_, mods, dir := startSims(t)
	if _, err := mods[0].PutStored("SM", 1, pduLine(t, part)); err != nil {
		t.Fatal(err)
	}
	evs := newEvents()
	opts := testOptions(t, dir, evs)
	opts.ReassemblyTimeout = 200 * time.Millisecond
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, opts)
	if n := evs.count(EventInbound); n != 0 {
		t.Fatalf("%d inbound events before the timeout, want 0", n)
	}
	time.Sleep(300 * time.Millisecond)
	if err := m.RunOnce(testCtx(t)); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	in := evs.wait(t, EventInbound, 1)[0].Inbound
	if in.Status != simgate.InboundIncomplete || in.Parts != 1 || in.PartsTotal < 2 {
		t.Fatalf("delivered %s with %d of %d parts, want incomplete with 1 of 2 or more", in.Status, in.Parts, in.PartsTotal)
	}
	if want := part.expect["from"]; want != "" && in.From != want {
		t.Fatalf("from %q, want %q", in.From, want)
	}
	eventually(t, "the part deleted from the SIM", func() bool { return len(mods[0].Stored("SM")) == 0 })
}

// The last line of defence: a panic while handling modem input ends the
// session with an error, the modem is quarantined, and the process lives.
func TestGuardQuarantinesOnPanic(t *testing.T) {
	_, mods, dir := startSims(t)
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, newEvents()))
	m.input = "0011"
	err := m.guard(&conn{}, func() error { panic("boom") })
	if !errors.Is(err, errDriverFault) {
		t.Fatalf("guard returned %v, want a driver fault", err)
	}
	if !m.poison["0011"] {
		t.Fatal("the input was not remembered")
	}
}

// Wavecom MULTIBAND 900E answers AT+CPIN? without a final OK: the answer is
// taken after a short grace, and Open succeeds. Before, Open timed out.
func TestWavecomCPINWithoutOK(t *testing.T) {
	_, mods, dir := startSims(t, sim.Config{Profile: sim.ProfileWavecom})
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, newEvents()))
	if _, err := m.Send(testCtx(t), "+15557654321", "hi"); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// Huawei E1752 ends commands it does not know with COMMAND NOT SUPPORT: that
// is a final error, the command is not sent again, and a probe that asks
// AT+CEREG? does not wait for the timeout. Before, Open failed.
func TestHuaweiCommandNotSupport(t *testing.T) {
	_, mods, dir := startSims(t, sim.Config{Profile: sim.ProfileHuaweiE1752})
	// Not registered on the circuit-switched side: the probe goes on to ask
	// AT+CEREG? and AT+CGREG?.
	mods[0].SetFaults(sim.Faults{Registration: sim.RegSearching})
	opts := testOptions(t, dir, newEvents())
	opts.CommandTimeout = 3 * time.Second
	start := time.Now()
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, opts)
	if d := time.Since(start); d > opts.CommandTimeout {
		t.Fatalf("Open took %v: a command waited for the timeout", d)
	}
	for range 2 {
		if err := m.RunOnce(testCtx(t)); err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
	}
	if n := logHas(mods[0], "AT+CEREG?"); n != 1 {
		t.Fatalf("AT+CEREG? sent %d times, want once", n)
	}
	if st := m.Status(); st.State != simgate.ModemDegraded || st.Registration != "searching" {
		t.Fatalf("state %s (%s), registration %q, want degraded and searching", st.State, st.Reason, st.Registration)
	}
}

// Huawei's AT^ICCID? prints the ICCID nibble-swapped; a modem bound by the
// ICCID printed on the card is found. Before, it was never found.
func TestHuaweiICCIDBinding(t *testing.T) {
	const iccid = "89550532100037751958"
	_, mods, dir := startSims(t, sim.Config{Profile: sim.ProfileHuaweiE1752, ICCID: iccid})
	m := openModem(t, Config{Name: "m0", ICCID: iccid}, testOptions(t, dir, newEvents()))
	if got := m.Identity().ICCID; got != iccid {
		t.Fatalf("ICCID %q, want %q", got, iccid)
	}
	if n := logHas(mods[0], "AT^ICCID?"); n == 0 {
		t.Fatal("AT^ICCID? was not asked: the test does not show the Huawei answer")
	}
	for _, tc := range []struct{ in, want string }{
		{"98555023010073579185", iccid},                 // Huawei ^ICCID
		{`"89550532100037751958"`, iccid},               // Wavecom +CCID, quoted
		{"8901260881206806219F", "8901260881206806219"}, // F padding
		{"981062801802866012F9", "8901260881206806219"}, // AT+CRSM: swapped and padded
		{"NOT AN ICCID", ""},
	} {
		if got := NormalizeICCID(tc.in); got != tc.want {
			t.Errorf("NormalizeICCID(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Messages on the SIM that are not simgate's (a phone's sent messages and
// drafts) stay there, are counted in the status, and are not deleted.
// Before, they were deleted with AT+CMGD.
func TestForeignMessagesStay(t *testing.T) {
	submit := recorded(t, submitFile, submitCase)
	_, mods, dir := startSims(t)
	if _, err := mods[0].PutStored("SM", 3, pduLine(t, submit)); err != nil {
		t.Fatal(err)
	}
	if _, err := mods[0].PutStored("SM", 2, pduLine(t, submit)); err != nil {
		t.Fatal(err)
	}
	evs := newEvents()
	m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, evs))
	if err := m.RunOnce(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := len(mods[0].Stored("SM")); got != 2 {
		t.Fatalf("%d messages left in SM, want 2", got)
	}
	if got := m.Status().Foreign["SM"]; got != 2 {
		t.Fatalf("status counts %d foreign messages in SM, want 2", got)
	}
	if n := logHas(mods[0], "AT+CMGD"); n != 0 {
		t.Fatalf("AT+CMGD sent %d times, want none", n)
	}
	if n := evs.count(EventInbound); n != 0 {
		t.Fatalf("%d inbound events, want none", n)
	}
}

// A report padded with FF to the SIM's record size is decoded; a PDU that
// cannot be decoded at all is handed on raw as undecodable and taken off the
// SIM. Before, both stayed on the SIM for ever and filled it.
func TestUndecodableAndPadded(t *testing.T) {
	padded := recorded(t, paddedFile, paddedCase)
	_, mods, dir := startSims(t)
	if _, err := mods[0].PutStored("SR", 0, pduLine(t, padded)); err != nil {
		t.Fatal(err)
	}
	const junk = "07911326040000F0FF00" // an SMSC part, then no TPDU worth the name
	if _, err := mods[0].PutStored("SM", 0, junk); err != nil {
		t.Fatal(err)
	}
	evs := newEvents()
	openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, evs))
	rep := evs.wait(t, EventReport, 1)[0].Report
	if want := padded.expect["mr"]; want != "" && itoa(rep.MR) != want {
		t.Fatalf("report MR %d, want %s", rep.MR, want)
	}
	in := evs.wait(t, EventInbound, 1)[0].Inbound
	if in.Status != simgate.InboundUndecodable || in.Raw == nil || in.Raw.Hex != junk || in.Raw.Store != "SM" {
		t.Fatalf("inbound %+v (raw %+v), want undecodable with the raw PDU", in, in.Raw)
	}
	eventually(t, "both taken off the SIM", func() bool {
		return len(mods[0].Stored("SM")) == 0 && len(mods[0].Stored("SR")) == 0
	})
}

// An MMS notification (a WAP push to port 2948) is stored typed, with its
// content location, never as text. Before, it arrived as junk text.
func TestMMSNotificationTyped(t *testing.T) {
	mms := recorded(t, mmsFile, mmsCase)
	_, mods, dir := startSims(t)
	evs := newEvents()
	openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, evs))
	if err := mods[0].DeliverPDU(pduLine(t, mms)); err != nil {
		t.Fatal(err)
	}
	in := evs.wait(t, EventInbound, 1)[0].Inbound
	if in.Kind != simgate.InboundMMSNotification || in.MMS == nil || in.Text != "" {
		t.Fatalf("inbound kind %s text %q mms %+v, want an MMS notification without text", in.Kind, in.Text, in.MMS)
	}
	// X-Mms-Content-Location (0x83) is a text string: its octets read
	// "http://mts/?id=81460494" in the PDU.
	if got, want := in.MMS.ContentLocation, "http://mts/?id=81460494"; got != want {
		t.Fatalf("content location %q, want %q", got, want)
	}
	if got, want := in.Port, 2948; got != want {
		t.Fatalf("port %d, want %d", got, want)
	}
}

// Registration, identity and SIM answers of real devices: the URC form of
// +CEREG with a bare TAC inside an answer, stats 9 and 10, an IMEI with a
// serial number after it, and +CPIN: SIM PUK2 (SMS still works).
func TestRegistrationAndIdentityAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := replayConn(t, "+CEREG?", []string{"+CEREG: 2, 0001, 00000100, 7", "OK"})
	info, err := c.cmd(ctx, "+CEREG?")
	if err != nil {
		t.Fatal(err)
	}
	if stat, found := regStat(info, "+CEREG"); found {
		t.Fatalf("the URC was taken for the answer: stat %d", stat)
	}
	for stat, want := range map[int]bool{6: true, 7: true, 8: false, 9: true, 10: true} {
		if regOK(stat) != want {
			t.Errorf("regOK(%d) = %v, want %v", stat, !want, want)
		}
	}
	if got := imeiLine([]string{"356936001568843,NL2A62Z0N5"}); got != "356936001568843" {
		t.Errorf("IMEI %q, want 356936001568843", got)
	}
	c = replayConn(t, "+CPIN?", []string{"+CPIN: SIM PUK2", "OK"})
	if err := c.unlock(ctx, ""); err != nil {
		t.Errorf("unlock with SIM PUK2: %v, want the SIM usable", err)
	}
}

// A +CMGL header whose <length> does not match its PDU does not drop the
// message: it is decoded by the PDU.
func TestListingLengthMismatch(t *testing.T) {
	c := recorded(t, listedFile, listedCase)
	_, mods, dir := startSims(t)
	// The header claims more octets than the PDU holds.
	if _, err := mods[0].PutStoredLen("SM", 1, pduLine(t, c), c.length+17); err != nil {
		t.Fatal(err)
	}
	evs := newEvents()
	openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, evs))
	in := evs.wait(t, EventInbound, 1)[0].Inbound
	if want := c.expect["from"]; want != "" && in.From != want {
		t.Fatalf("from %q, want %q", in.From, want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
