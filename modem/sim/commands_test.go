package sim

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/tpdu"
	"github.com/warthog618/sms/encoding/ucs2"
)

func TestPINAndPUK(t *testing.T) {
	_, mods := startNetwork(t, Config{PIN: "1234", PUK: "87654321"})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	c.mustOK("AT+CMEE=1")
	c.want("AT+CPIN?", "+CPIN: SIM PIN", "OK")
	c.want("AT+CIMI", "+CME ERROR: 11")
	c.want("AT+CPMS?", "+CMS ERROR: 311")
	c.want("AT+CREG?", "+CREG: 0,0", "OK")
	c.want("AT+CPIN=1234", "OK")
	c.want("AT+CPIN?", "+CPIN: READY", "OK")
	c.want("AT+CREG?", "+CREG: 0,1", "OK")

	// Lock it again and get the PIN wrong three times: SIM PUK.
	mods[0].SetFaults(Faults{PINRequired: true})
	c.want("AT+CPIN?", "+CPIN: SIM PIN", "OK")
	for i := 0; i < 3; i++ {
		c.want(`AT+CPIN="0000"`, "+CME ERROR: 16")
	}
	c.want("AT+CPIN?", "+CPIN: SIM PUK", "OK")
	c.want("AT+CIMI", "+CME ERROR: 12")
	c.mustOK("AT+CMEE=2")
	c.want("AT+CIMI", "+CME ERROR: SIM PUK required")
	c.want(`AT+CPIN="1234"`, "+CME ERROR: SIM PUK required")
	c.want(`AT+CPIN="11111111","9999"`, "+CME ERROR: incorrect password")
	c.want(`AT+CPIN="87654321","9999"`, "OK")
	c.want("AT+CPIN?", "+CPIN: READY", "OK")
	c.mustOK("AT+CMEE=0")
	c.want("AT+CPIN=9999", "ERROR") // already unlocked; CMEE=0 hides the code

	// The new PIN holds after a power cycle.
	c.want("AT+CFUN=1,1", "OK")
	c.mustOK("ATE0")
	c.want("AT+CPIN?", "+CPIN: SIM PIN", "OK")
	c.want("AT+CPIN=9999", "OK")
}

func TestCompoundEchoAndFormats(t *testing.T) {
	_, mods := startNetwork(t, Config{})
	c := dial(t, mods[0].Path())
	// Echo is on by default, like on real modems.
	c.write("AT\r")
	if l, _ := c.next(cmdTimeout); l != "AT" {
		t.Fatalf("echo: got %q", l)
	}
	if l, _ := c.next(cmdTimeout); l != "OK" {
		t.Fatalf("got %q", l)
	}
	c.write("ATE0\r")
	c.until("ATE0", cmdTimeout)
	c.write("AT+CSQ\r")
	if l, _ := c.next(cmdTimeout); l != "+CSQ: 20,99" {
		t.Fatalf("echo off: got %q", l)
	}
	c.next(cmdTimeout)

	// smstools' compound command.
	c.want("AT+CMEE=1;+CREG=2", "OK")
	c.want("AT+CMEE?", "+CMEE: 1", "OK")
	c.want("AT+CREG?", `+CREG: 2,1,"1A00","C300"`, "OK")
	c.want("AT+CSQ;+CGMI", "+CSQ: 20,99", "SIMGATE", "OK")
	c.want("at+csq; +cgmm", "+CSQ: 20,99", "VM-800", "OK")
	// An error stops the line.
	c.want("AT+CGMI;+NOPE;+CGMM", "SIMGATE", "ERROR")
	c.want("ATE0V1Q0", "OK")
	c.want("AT&FE0", "OK")
	c.want("AT+CMEE?", "+CMEE: 0", "OK")
	c.want("ATE1", "OK")
	c.write("AT+CGMI\r")
	if got := c.until("", cmdTimeout); strings.Join(got, "|") != "AT+CGMI|SIMGATE|OK" {
		t.Fatalf("echo back on: %q", got)
	}
	c.mustOK("ATZ")
	c.mustOK("ATE0")
	// Test and read forms.
	c.want("AT+CMGF=?", "+CMGF: (0,1)", "OK")
	c.want("AT+CMGF?", "+CMGF: 0", "OK")
	c.want("AT+CMEE=?", "+CMEE: (0-2)", "OK")
	c.want("AT+CSCS=?", `+CSCS: ("IRA","GSM","UCS2")`, "OK")
	c.want(`AT+CSCS="GSM"`, "OK")
	c.want("AT+CSCS?", `+CSCS: "GSM"`, "OK")
	c.want("AT+CSMS?", "+CSMS: 0,1,1,1", "OK")
	c.want("AT+CSMS=1", "+CSMS: 1,1,1", "OK")
	c.want("AT+CNMA", "+CMS ERROR: 340")
	c.want("AT+CFUN?", "+CFUN: 1", "OK")
	c.want("AT+CMGF=2", "ERROR")
	c.want(`AT+CSCA="+15551110000",145`, "OK")
	c.want("AT+CSCA?", `+CSCA: "+15551110000",145`, "OK")
	c.want("AT+CGREG?", "+CGREG: 0,1", "OK")
	c.want("AT+CEREG=2", "OK")
	c.want("AT+CEREG?", `+CEREG: 2,1,"1A00","0000C300",7`, "OK")
	c.want("AT+CRSM=176,12258,0,0,10", `+CRSM: 144,0,"981010000000000010F7"`, "OK")
	c.want("ATS3?", "013", "OK")
	// Backspace edits the line.
	c.write("AT+CGMX\bI\r")
	if got := c.until("", cmdTimeout); strings.Join(got, "|") != "SIMGATE|OK" {
		t.Fatalf("backspace: %q", got)
	}
	// V0: numeric result codes.
	c.write("ATV0\r")
	if l, _ := c.next(cmdTimeout); l != "0" {
		t.Fatalf("ATV0: %q", l)
	}
	c.write("ATV1\r")
	c.waitFor("OK", cmdTimeout)
}

// AT+CNUM gives the SIM's number as real modems print it (modem's
// testdata/devices/simcom-github-issues.txt), or OK alone for a SIM that does
// not hold it.
func TestCNUM(t *testing.T) {
	_, mods := startNetwork(t, Config{Number: "+4917011111111"}, Config{NoNumber: true})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	c.want("AT+CNUM", `+CNUM: "","+4917011111111",145`, "OK")
	c.want("AT+CNUM=?", "OK")
	c = dial(t, mods[1].Path())
	c.mustOK("ATE0")
	c.want("AT+CNUM", "OK")
}

func TestCNMICaps(t *testing.T) {
	_, mods := startNetwork(t, Config{CNMICaps: SIM800CNMICaps, ICCIDCommands: []string{"+CCID"}})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	c.want("AT+CNMI=?", "+CNMI: (0-2),(0-3),(0,2),(0,1),(0,1)", "OK")
	c.want("AT+CNMI=2,1,0,2,0", "ERROR") // SIM800 cannot store reports
	c.want("AT+CNMI=2,1,0,1,0", "OK")
	c.want("AT+CNMI=3,1,0,1,0", "ERROR")
	c.want("AT+CNMI=2,1,1,1,0", "ERROR")
	c.want("AT+CNMI?", "+CNMI: 2,1,0,1,0", "OK")
	c.want("AT+QCCID", "ERROR")
	if got := c.mustOK("AT+CCID"); len(got) != 1 || !strings.HasPrefix(got[0], "+CCID: 89") {
		t.Fatalf("CCID: %q", got)
	}
}

func TestSendTextMode(t *testing.T) {
	n, mods := startNetwork(t, Config{})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	c.mustOK("AT+CMGF=1")
	c.mustOK("AT+CSMP=49,167,0,0") // SRR
	c.mustOK("AT+CNMI=2,1,0,1,0")
	c.write("AT+CMGS=\"+15557654321\"\r")
	c.waitPrompt("")
	c.write("two\r")
	c.waitPrompt("")
	c.write("lines\x1a")
	mr := mrOf(t, c.until("", cmdTimeout))
	got := waitInbox(t, n, "+15557654321", 1)
	if got[0].Text != "two\nlines" {
		t.Fatalf("inbox %+v", got)
	}
	// The report in text mode: +CDS: <fo>,<mr>,<ra>,<tora>,<scts>,<dt>,<st>.
	l := c.waitFor("+CDS:", waitTimeout)
	f := strings.Split(strings.TrimPrefix(l, "+CDS: "), ",")
	if len(f) != 9 || f[1] != itoa(mr) || f[2] != `"+15557654321"` || f[3] != "145" || f[8] != "0" {
		t.Fatalf("+CDS %q", l)
	}

	// UCS2 character set: hex destination and text.
	c.mustOK(`AT+CSCS="UCS2"`)
	c.mustOK("AT+CSMP=17,167,0,8")
	c.write(`AT+CMGS="` + ucs2Hex("+15551112222") + `"` + "\r")
	c.waitPrompt("")
	c.write(ucs2Hex("Привет 😀") + "\x1a")
	mrOf(t, c.until("", cmdTimeout))
	got = waitInbox(t, n, "+15551112222", 1)
	if got[0].Text != "Привет 😀" {
		t.Fatalf("UCS2 text %q", got[0].Text)
	}
	// Odd-length hex is an invalid text mode parameter.
	c.write(`AT+CMGS="` + ucs2Hex("+15551112222") + `"` + "\r")
	c.waitPrompt("")
	c.write("041\x1a")
	c.waitFor("+CMS ERROR: 305", cmdTimeout)

	// ESC cancels.
	c.mustOK(`AT+CSCS="IRA"`)
	c.write("AT+CMGS=\"+15557654321\"\r")
	c.waitPrompt("")
	c.write("never\x1b")
	c.waitFor("OK", cmdTimeout)
	time.Sleep(50 * time.Millisecond)
	if got := len(n.Inbox("+15557654321")); got != 1 {
		t.Fatalf("cancelled message was sent: %d", got)
	}
}

func TestMultipart(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		parts      int
	}{
		{"GSM7", strings.Repeat("The quick brown fox jumps over the lazy dog. ", 9), 3},
		{"UCS2", strings.Repeat("Съешь же ещё этих мягких французских булок 😀 ", 3), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, mods := startNetwork(t, Config{})
			c := dial(t, mods[0].Path())
			c.mustOK("ATE0")
			enc := sms.NewEncoder(sms.AsSubmit)
			// One long message before, so the concat reference is not 1.
			encodeSubmit(t, enc, "+15550001111", strings.Repeat("x", 200), false)
			parts := encodeSubmit(t, enc, "+15557654321", tc.text, false)
			if len(parts) != tc.parts {
				t.Fatalf("%d parts, want %d", len(parts), tc.parts)
			}
			var mrs []int
			for _, p := range parts {
				mrs = append(mrs, mrOf(t, c.sendPDU(p)))
			}
			got := waitInbox(t, n, "15557654321", 1)
			if got[0].Text != tc.text || got[0].Parts != tc.parts {
				t.Fatalf("inbox: %d parts %q", got[0].Parts, got[0].Text)
			}
			subs := n.Submissions()
			for i, s := range subs {
				if s.Seq != i+1 || s.Total != tc.parts || s.ConcatRef != 2 || s.MR != mrs[i] || s.MR != i {
					t.Fatalf("submission %d: %+v", i, s)
				}
			}
		})
	}
}

func TestStatusReports(t *testing.T) {
	t.Run("routed", func(t *testing.T) {
		_, mods := startNetwork(t, Config{})
		c := dial(t, mods[0].Path())
		c.mustOK("ATE0")
		c.mustOK("AT+CNMI=2,1,0,1,0")
		mr := mrOf(t, c.sendPDU(encodeSubmit(t, nil, "+15557654321", "report me", true)[0]))
		l := c.waitLines("+CDS:", 1, waitTimeout)
		r := decodePDULine(t, lengthOf(t, l[0], "+CDS: "), l[1], true)
		if r.SmsType() != tpdu.SmsStatusReport || int(r.MR) != mr || r.ST != 0 || r.RA.Number() != "+15557654321" {
			t.Fatalf("report %+v", r)
		}
		if l[1] != strings.ToUpper(l[1]) {
			t.Fatalf("lower-case hex %q", l[1])
		}
		// Without CSMS=1 there is nothing to acknowledge.
		c.want("AT+CNMA", "+CMS ERROR: 340")
	})
	t.Run("stored", func(t *testing.T) {
		_, mods := startNetwork(t, Config{})
		c := dial(t, mods[0].Path())
		c.mustOK("ATE0")
		c.mustOK("AT+CNMI=2,1,0,2,0")
		mr := mrOf(t, c.sendPDU(encodeSubmit(t, nil, "+15557654321", "store my report", true)[0]))
		if got, want := c.waitFor("+CDSI:", waitTimeout), `+CDSI: "SR",1`; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
		c.want(`AT+CPMS="SR"`, "+CPMS: 1,30,0,30,0,30", "OK")
		lines := c.mustOK("AT+CMGR=1")
		r := decodePDULine(t, lengthOf(t, lines[0], "+CMGR: "), lines[1], true)
		if int(r.MR) != mr || r.ST != 0 {
			t.Fatalf("report %+v", r)
		}
		c.want(`AT+CPMS="SM"`, "+CPMS: 0,30,0,30,0,30", "OK")
	})
	t.Run("acknowledged", func(t *testing.T) {
		_, mods := startNetwork(t, Config{})
		c := dial(t, mods[0].Path())
		c.mustOK("ATE0")
		c.mustOK("AT+CSMS=1")
		c.mustOK("AT+CNMI=2,1,0,1,0")
		c.sendPDU(encodeSubmit(t, nil, "+15557654321", "ack", true)[0])
		c.waitLines("+CDS:", 1, waitTimeout)
		c.want("AT+CNMA", "OK")
		c.want("AT+CNMA", "+CMS ERROR: 340")
	})
	// AT+CNMA=2 refuses the report (RP-ERROR): the network delivers it again
	// after RetryDelay, not before. AT+CNMA with a PDU for the network is not
	// supported, and <n> must be 0-2.
	t.Run("refused", func(t *testing.T) {
		_, mods := startNetwork(t, Config{RetryDelay: time.Second, ReportDelay: time.Millisecond})
		c := dial(t, mods[0].Path())
		c.mustOK("ATE0")
		c.mustOK("AT+CSMS=1")
		c.mustOK("AT+CNMI=2,1,0,1,0")
		mr := mrOf(t, c.sendPDU(encodeSubmit(t, nil, "+15557654321", "refused", true)[0]))
		c.waitLines("+CDS:", 1, waitTimeout)
		c.want("AT+CNMA=2,5", "+CMS ERROR: 303")
		c.want("AT+CNMA=3", "+CMS ERROR: 304")
		c.want("AT+CNMA=", "+CMS ERROR: 304")
		c.want("AT+CNMA=2", "OK")
		c.quiet(200 * time.Millisecond) // not again at once
		l := c.waitLines("+CDS:", 1, waitTimeout)
		if r := decodePDULine(t, lengthOf(t, l[0], "+CDS: "), l[1], true); int(r.MR) != mr {
			t.Fatalf("report delivered again for MR %d, want %d", r.MR, mr)
		}
		c.want("AT+CNMA=1", "OK")
		c.want("AT+CNMA", "+CMS ERROR: 340")
	})
	// Phase 2+ from the profile: ATZ keeps CSMS=1, the second report waits
	// until the first is acknowledged (27.005 §3.4.4), and one never
	// acknowledged switches routing off and is stored instead.
	t.Run("phase 2+ holds and times out", func(t *testing.T) {
		_, mods := startNetwork(t, Config{Phase2: true, AckTimeout: 300 * time.Millisecond, ReportDelay: time.Millisecond})
		c := dial(t, mods[0].Path())
		c.mustOK("ATZ")
		c.mustOK("ATE0")
		c.want("AT+CSMS?", "+CSMS: 1,1,1,1", "OK")
		c.mustOK("AT+CNMI=2,1,0,1,0")
		mr1 := mrOf(t, c.sendPDU(encodeSubmit(t, nil, "+15557654321", "one", true)[0]))
		l := c.waitLines("+CDS:", 1, waitTimeout)
		if r := decodePDULine(t, lengthOf(t, l[0], "+CDS: "), l[1], true); int(r.MR) != mr1 {
			t.Fatalf("first report for MR %d, want %d", r.MR, mr1)
		}
		// The second report comes while the first waits for its AT+CNMA.
		mr2 := mrOf(t, c.sendPDU(encodeSubmit(t, nil, "+15557654321", "two", true)[0]))
		c.quiet(100 * time.Millisecond) // no second +CDS before the acknowledgement
		c.mustOK("AT+CNMA")
		l = c.waitLines("+CDS:", 1, waitTimeout)
		if r := decodePDULine(t, lengthOf(t, l[0], "+CDS: "), l[1], true); int(r.MR) != mr2 {
			t.Fatalf("second report for MR %d, want %d", r.MR, mr2)
		}
		// Not acknowledged: routing goes off and the report is stored.
		eventually(t, "routing switched off", func() bool {
			lines, err := c.tryCmd("AT+CNMI?")
			return err == nil && len(lines) > 0 && lines[0] == "+CNMI: 2,0,0,0,0"
		})
		c.want(`AT+CPMS="SR"`, "+CPMS: 1,30,0,30,0,30", "OK")
		lines := c.mustOK("AT+CMGR=1")
		if r := decodePDULine(t, lengthOf(t, lines[0], "+CMGR: "), lines[1], true); int(r.MR) != mr2 {
			t.Fatalf("stored report for MR %d, want %d", r.MR, mr2)
		}
		c.want("AT+CNMA", "+CMS ERROR: 340")
	})
}

func TestInboundTextMode(t *testing.T) {
	n, mods := startNetwork(t, Config{Number: "+15550000001"})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	c.mustOK("AT+CMGF=1")
	c.mustOK("AT+CNMI=2,2,0,0,0")
	if err := n.Inject("+15559876543", "+15550000001", "héllo"); err != nil {
		t.Fatal(err)
	}
	l := c.waitLines("+CMT:", 1, waitTimeout)
	if !strings.HasPrefix(l[0], `+CMT: "+15559876543",,"`) || l[1] != "héllo" {
		t.Fatalf("+CMT %q", l)
	}
	c.mustOK("AT+CNMI=2,1,0,0,0")
	if err := n.Inject("+15559876543", "+15550000001", "stored"); err != nil {
		t.Fatal(err)
	}
	c.waitFor(`+CMTI: "SM",1`, waitTimeout)
	lines := c.mustOK(`AT+CMGL="REC UNREAD"`)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `+CMGL: 1,"REC UNREAD","+15559876543",,"`) || lines[1] != "stored" {
		t.Fatalf("CMGL %q", lines)
	}
	if got := c.mustOK(`AT+CMGL="REC UNREAD"`); len(got) != 0 {
		t.Fatalf("listed again: %q", got)
	}
	lines = c.mustOK(`AT+CMGL="ALL"`)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `+CMGL: 1,"REC READ"`) {
		t.Fatalf("CMGL ALL %q", lines)
	}
	lines = c.mustOK("AT+CMGR=1")
	if !strings.HasPrefix(lines[0], `+CMGR: "REC READ","+15559876543",,"`) || lines[1] != "stored" {
		t.Fatalf("CMGR %q", lines)
	}
}

func TestInboundMultipartPDU(t *testing.T) {
	n, mods := startNetwork(t, Config{Number: "+15550000001"})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	c.mustOK("AT+CNMI=2,1,0,0,0")
	text := strings.Repeat("Ωmega and more ", 30) // GSM-7 with a Greek capital
	if err := n.Inject("+15559876543", "+15550000001", text); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		c.waitFor(`+CMTI: "SM",`+itoa(i), waitTimeout)
	}
	lines := c.mustOK("AT+CMGL=4")
	if len(lines) != 6 {
		t.Fatalf("CMGL=4: %d lines", len(lines))
	}
	var segs []*tpdu.TPDU
	for i := 0; i < 6; i += 2 {
		if !strings.HasPrefix(lines[i], "+CMGL: "+itoa(i/2+1)+",0,,") {
			t.Fatalf("CMGL line %q", lines[i])
		}
		segs = append(segs, decodePDULine(t, lengthOf(t, lines[i], "+CMGL: "), lines[i+1], true))
	}
	got, err := sms.Decode(segs)
	if err != nil || string(got) != text {
		t.Fatalf("reassembled %q, %v", got, err)
	}
	if got := c.mustOK("AT+CMGL=0"); len(got) != 0 {
		t.Fatalf("still unread: %q", got)
	}
	c.mustOK("AT+CMGD=1,4")
	c.want("AT+CPMS?", `+CPMS: "SM",0,30,"SM",0,30,"SM",0,30`, "OK")
	c.want("AT+CMGR=31", "+CMS ERROR: 321")
}

func TestStoresSeparate(t *testing.T) {
	n, mods := startNetwork(t, Config{Number: "+15550000001"})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	c.mustOK("AT+CNMI=2,1,0,2,0")
	if err := n.Inject("+15559876543", "+15550000001", "to SIM"); err != nil {
		t.Fatal(err)
	}
	c.waitFor(`+CMTI: "SM",1`, waitTimeout)
	c.want(`AT+CPMS="ME","ME","ME"`, "+CPMS: 0,100,0,100,0,100", "OK")
	if err := n.Inject("+15559876543", "+15550000001", "to ME"); err != nil {
		t.Fatal(err)
	}
	c.waitFor(`+CMTI: "ME",1`, waitTimeout)
	c.sendPDU(encodeSubmit(t, nil, "+15557654321", "report", true)[0])
	c.waitFor(`+CDSI: "SR",1`, waitTimeout)
	c.want("AT+CPMS?", `+CPMS: "ME",1,100,"ME",1,100,"ME",1,100`, "OK")
	lines := c.mustOK("AT+CMGL=4")
	if len(lines) != 2 {
		t.Fatalf("ME: %q", lines)
	}
	d := decodePDULine(t, lengthOf(t, lines[0], "+CMGL: "), lines[1], true)
	if txt, _ := sms.Decode([]*tpdu.TPDU{d}); string(txt) != "to ME" {
		t.Fatalf("ME holds %q", txt)
	}
	c.want(`AT+CPMS="SM"`, "+CPMS: 1,30,1,100,1,100", "OK")
	c.want(`AT+CPMS="SR","SM","SM"`, "+CPMS: 1,30,1,30,1,30", "OK")
	c.want(`AT+CPMS="XX"`, "+CMS ERROR: 302")
	c.want(`AT+CPMS="SM","SR"`, "+CMS ERROR: 302")
}

func TestSubmitValidation(t *testing.T) {
	_, mods := startNetwork(t, Config{})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	p := encodeSubmit(t, nil, "+15557654321", "hello", false)[0]
	for _, tc := range []struct {
		name string
		len  int
		pdu  string
		want string
	}{
		{"length counts SMSC", p.length + 1, p.hex, "+CMS ERROR: 304"},
		{"not hex", p.length, "00ZZ" + p.hex[4:], "+CMS ERROR: 304"},
		{"truncated", p.length, p.hex[:len(p.hex)-4], "+CMS ERROR: 304"},
		{"deliver report not submit", p.length, "0000" + p.hex[4:], "+CMS ERROR: 304"},
		{"lower case ok", p.length, strings.ToLower(p.hex), "OK"},
		{"with SMSC", p.length, "07919151555000F0" + p.hex[2:], "OK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			res := c.sendPDU(pduLine{hex: tc.pdu, length: tc.len})
			if got := res[len(res)-1]; got != tc.want {
				t.Fatalf("got %q, want %q", res, tc.want)
			}
		})
	}
	c.t = t
	c.want("AT+CMGS=0", "+CMS ERROR: 304")
	c.want("AT+CMGS=999", "+CMS ERROR: 304")
	c.want("AT+CMGS", "ERROR")
}

func TestModemToModem(t *testing.T) {
	_, mods := startNetwork(t, Config{Number: "+15550000001"}, Config{Number: "+15550000002"})
	a, b := dial(t, mods[0].Path()), dial(t, mods[1].Path())
	a.mustOK("ATE0")
	b.mustOK("ATE0")
	b.mustOK("AT+CNMI=2,2,0,0,0")
	a.sendPDU(encodeSubmit(t, nil, "+15550000002", "hi b", false)[0])
	l := b.waitLines("+CMT:", 1, waitTimeout)
	d := decodePDULine(t, lengthOf(t, l[0], "+CMT: "), l[1], true)
	if txt, _ := sms.Decode([]*tpdu.TPDU{d}); string(txt) != "hi b" || d.OA.Number() != "+15550000001" {
		t.Fatalf("b got %q from %s", txt, d.OA.Number())
	}
}

func TestGarbageInput(t *testing.T) {
	_, mods := startNetwork(t, Config{})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	c.write("\x00\xff\x1b\r\n\x1a")
	c.write("hello\r")                                  // no AT prefix: ignored
	c.write("AT" + strings.Repeat("+CSQ;", 300) + "\r") // too long
	c.waitFor("ERROR", cmdTimeout)
	c.want(`AT+CPMS="SM`, "ERROR")
	c.want("AT+CMGR=1,2,3,4", "ERROR")
	c.want("AT+CNMI=a,b", "ERROR")
	c.want("AT\xc3\xa9", "ERROR")
	c.want("AT", "OK")
	if !utf8.ValidString(strings.Join(mods[0].Log(), "")) {
		t.Log("log holds raw bytes (fine)")
	}
}

func TestCFUN(t *testing.T) {
	n, mods := startNetwork(t, Config{Number: "+15550000001"})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	c.mustOK("AT+CREG=1")
	c.mustOK("AT+CFUN=4")
	c.waitFor("+CREG: 0", waitTimeout)
	c.want("AT+CREG?", "+CREG: 1,0", "OK")
	c.want("AT+COPS?", "+COPS: 0", "OK")
	res := c.sendPDU(encodeSubmit(t, nil, "+15557654321", "x", false)[0])
	if got := res[len(res)-1]; got != "+CMS ERROR: 331" {
		t.Fatalf("send with radio off: %q", res)
	}
	if err := n.Inject("+15559876543", "+15550000001", "held"); err != nil {
		t.Fatal(err)
	}
	c.quiet(100 * time.Millisecond)
	c.mustOK("AT+CFUN=1")
	c.waitFor("+CREG: 1", waitTimeout)
	c.waitFor(`+CMTI: "SM",1`, waitTimeout)
	c.want("AT+CFUN=1,1", "OK")
	// Power cycled: echo back on, CMGF back to 0, registration URCs off.
	c.write("AT+CMGF?\r")
	if got := c.until("AT+CMGF?", cmdTimeout); strings.Join(got, "|") != "+CMGF: 0|OK" {
		t.Fatalf("after reset %q", got)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func ucs2Hex(s string) string { return fmt.Sprintf("%X", ucs2.Encode([]rune(s))) }

func TestCNMIModes(t *testing.T) {
	n, mods := startNetwork(t, Config{Number: "+15550000001"})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	inject := func(text string) {
		t.Helper()
		if err := n.Inject("+15559876543", "+15550000001", text); err != nil {
			t.Fatal(err)
		}
	}
	// mt=0: stored silently.
	c.mustOK("AT+CNMI=2,0,0,0,0")
	inject("silent")
	c.quiet(100 * time.Millisecond)
	c.want("AT+CPMS?", `+CPMS: "SM",1,30,"SM",1,30,"SM",1,30`, "OK")
	// mode=0: indications held in the modem until mode 1 or 2 (bfr=0 flushes).
	c.mustOK("AT+CNMI=0,1,0,0,0")
	inject("held")
	c.quiet(100 * time.Millisecond)
	c.want("AT+CNMI=2,1,0,0,0", "OK")
	if got, want := c.waitFor("+CMTI:", waitTimeout), `+CMTI: "SM",2`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	// bfr=1 clears them instead.
	c.mustOK("AT+CNMI=0,1,0,0,0")
	inject("dropped indication")
	c.quiet(100 * time.Millisecond)
	c.want("AT+CNMI=2,1,0,0,1", "OK")
	c.quiet(100 * time.Millisecond)
	c.want("AT+CPMS?", `+CPMS: "SM",3,30,"SM",3,30,"SM",3,30`, "OK")
}
