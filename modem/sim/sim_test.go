package sim

import (
	"strings"
	"testing"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/tpdu"
)

func TestIdentification(t *testing.T) {
	_, mods := startNetwork(t, Config{Name: "modem0", IMEI: "356938035643809", IMSI: "001010123456789", ICCID: "8901010123456789012"})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	for _, tc := range []struct {
		cmd  string
		want []string
	}{
		{"AT", []string{"OK"}},
		{"ATI", []string{"SIMGATE", "VM-800", "Revision: 1.0", "OK"}},
		{"AT+CGMI", []string{"SIMGATE", "OK"}},
		{"AT+CGMM", []string{"VM-800", "OK"}},
		{"AT+CGMR", []string{"1.0", "OK"}},
		{"AT+CGSN", []string{"356938035643809", "OK"}},
		{"AT+CIMI", []string{"001010123456789", "OK"}},
		{"AT+CCID", []string{"+CCID: 8901010123456789012", "OK"}},
		{"AT+QCCID", []string{"+QCCID: 8901010123456789012", "OK"}},
		{"AT^ICCID?", []string{"ERROR"}},
		{"AT+GCAP", []string{"+GCAP: +CGSM", "OK"}},
		{"AT+CPIN?", []string{"+CPIN: READY", "OK"}},
		{"AT+CSQ", []string{"+CSQ: 20,99", "OK"}},
		{"AT+CREG?", []string{"+CREG: 0,1", "OK"}},
		{"AT+COPS?", []string{`+COPS: 0,0,"Simnet",0`, "OK"}},
		{"AT+CSCA?", []string{`+CSCA: "+15550000000",145`, "OK"}},
		{"AT+CNMI=?", []string{"+CNMI: " + DefaultCNMICaps, "OK"}},
		{"AT+CPMS=?", []string{`+CPMS: ("SM","ME","SR"),("SM","ME"),("SM","ME")`, "OK"}},
		{"at+cgmi", []string{"SIMGATE", "OK"}},
		// gammu's probes must get ERROR.
		{"AT+CPROT=?", []string{"ERROR"}},
		{"AT$TSSPCSW=?", []string{"ERROR"}},
		{"AT+MODE=2", []string{"ERROR"}},
		{"AT+SYNCML=?", []string{"ERROR"}},
		{"AT+BOGUS", []string{"ERROR"}},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			c.t = t
			c.want(tc.cmd, tc.want...)
		})
	}
}

func TestSendPDUToHandset(t *testing.T) {
	n, mods := startNetwork(t, Config{})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	c.mustOK("AT+CMGF=0")
	p := encodeSubmit(t, nil, "+15557654321", "hello from the sim", false)
	if len(p) != 1 {
		t.Fatalf("got %d parts", len(p))
	}
	mr := mrOf(t, c.sendPDU(p[0]))
	if got, want := mr, 0; got != want {
		t.Fatalf("mr %d, want %d", got, want)
	}
	got := waitInbox(t, n, "+15557654321", 1)
	if got[0].Text != "hello from the sim" || got[0].From != mods[0].Config().Number || got[0].Parts != 1 {
		t.Fatalf("inbox %+v", got)
	}
	subs := n.Submissions()
	if len(subs) != 1 || subs[0].MR != 0 || subs[0].To != "+15557654321" || subs[0].IMEI != mods[0].Config().IMEI {
		t.Fatalf("submissions %+v", subs)
	}
	// The next submit gets the next reference.
	if got, want := mrOf(t, c.sendPDU(p[0])), 1; got != want {
		t.Fatalf("second mr %d, want %d", got, want)
	}
}

func TestInjectStored(t *testing.T) {
	n, mods := startNetwork(t, Config{Number: "+15550000001"})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	c.mustOK("AT+CMGF=0")
	c.mustOK("AT+CNMI=2,1,0,0,0")
	if err := n.Inject("+15559876543", "+15550000001", "ping"); err != nil {
		t.Fatal(err)
	}
	urc := c.waitFor("+CMTI:", waitTimeout)
	if got, want := urc, `+CMTI: "SM",1`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	lines := c.mustOK("AT+CMGR=1")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "+CMGR: 0,,") {
		t.Fatalf("CMGR: %q", lines)
	}
	d := decodePDULine(t, lengthOf(t, lines[0], "+CMGR: "), lines[1], true)
	if got, want := d.OA.Number(), "+15559876543"; got != want {
		t.Fatalf("OA %q, want %q", got, want)
	}
	text, err := sms.Decode([]*tpdu.TPDU{d})
	if err != nil || string(text) != "ping" {
		t.Fatalf("text %q, %v", text, err)
	}
	// Reading marked it read.
	lines = c.mustOK("AT+CMGR=1")
	if !strings.HasPrefix(lines[0], "+CMGR: 1,,") {
		t.Fatalf("second CMGR: %q", lines)
	}
	c.mustOK("AT+CMGD=1")
	if got := c.mustOK("AT+CMGR=1"); len(got) != 0 {
		t.Fatalf("after CMGD: %q", got)
	}
}

func TestInjectRouted(t *testing.T) {
	n, mods := startNetwork(t, Config{Number: "+15550000001"})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	c.mustOK("AT+CNMI=2,2,0,0,0")
	if err := n.Inject("+15559876543", "15550000001", "routed"); err != nil {
		t.Fatal(err)
	}
	l := c.waitLines("+CMT:", 1, waitTimeout)
	d := decodePDULine(t, lengthOf(t, l[0], "+CMT: "), l[1], true)
	text, _ := sms.Decode([]*tpdu.TPDU{d})
	if string(text) != "routed" {
		t.Fatalf("text %q", text)
	}
	// Routed messages are not stored.
	if got := c.mustOK("AT+CPMS?"); got[0] != `+CPMS: "SM",0,30,"SM",0,30,"SM",0,30` {
		t.Fatalf("CPMS? %q", got)
	}
	if err := n.Inject("+1", "+19999", "x"); err == nil {
		t.Fatal("inject to an unknown number succeeded")
	}
}
