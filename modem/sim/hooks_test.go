package sim

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

// howAreYou is an SMS-DELIVER as a modem prints it: SMSC +31624000000,
// from +31641600986, "How are you?" (the classic example of PDU mode
// tutorials). Its TPDU has 30 octets.
const howAreYou = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"

func TestPutStored(t *testing.T) {
	_, mods := startNetwork(t, Config{})
	m := mods[0]
	c := dial(t, m.Path())
	c.mustOK("ATE0")
	c.mustOK("AT+CMGF=0")

	// Given in lower case, printed in upper case: the same bytes.
	i1, err := m.PutStored("SM", 0, strings.ToLower(howAreYou))
	if err != nil || i1 != 1 {
		t.Fatalf("PutStored: %d, %v", i1, err)
	}
	// Not a TPDU at all.
	const junk = "00FFFFFFFF"
	i2, err := m.PutStored("SM", 1, junk)
	if err != nil || i2 != 2 {
		t.Fatalf("PutStored junk: %d, %v", i2, err)
	}
	// A header whose length is wrong.
	i3, err := m.PutStoredLen("SM", 3, howAreYou, 99)
	if err != nil || i3 != 3 {
		t.Fatalf("PutStoredLen: %d, %v", i3, err)
	}
	// An SMSC length octet that promises more than there is.
	i4, err := m.PutStoredLen("ME", 2, "0A00", 3)
	if err != nil || i4 != 1 {
		t.Fatalf("PutStoredLen short: %d, %v", i4, err)
	}
	c.quiet(100 * time.Millisecond) // no +CMTI for messages already stored

	c.want("AT+CPMS?", `+CPMS: "SM",3,30,"SM",3,30,"SM",3,30`, "OK")
	c.want("AT+CMGL=4",
		"+CMGL: 1,0,,30", howAreYou,
		"+CMGL: 2,1,,4", junk,
		"+CMGL: 3,3,,99", howAreYou,
		"OK")
	c.want("AT+CMGR=1", "+CMGR: 1,,30", howAreYou, "OK") // read now
	c.want(`AT+CPMS="ME"`, "+CPMS: 1,100,3,30,3,30", "OK")
	c.want("AT+CMGR=1", "+CMGR: 2,,3", "0A00", "OK")
	c.mustOK(`AT+CPMS="SM"`)

	// Text mode shows the decodable ones and fails on the rest.
	tp, err := hex.DecodeString(howAreYou[16:])
	if err != nil {
		t.Fatal(err)
	}
	d, err := decodeMT(tp)
	if err != nil {
		t.Fatal(err)
	}
	scts := sctsText(d.SCTS.Time) // "02/08/26,19:37:41" and a zone
	c.mustOK("AT+CMGF=1")
	c.want("AT+CMGR=1", `+CMGR: "REC READ","+31641600986",,"`+scts+`"`, "How are you?", "OK")
	c.want("AT+CMGR=2", "+CMS ERROR: 500")
	c.want(`AT+CMGL="ALL"`, `+CMGL: 1,"REC READ","+31641600986",,"`+scts+`"`, "How are you?", "+CMS ERROR: 500")
	c.want(`AT+CMGL="STO SENT"`, `+CMGL: 3,"STO SENT","+31641600986",,"`+scts+`"`, "How are you?", "OK")

	// The host deletes one; Stored shows what is left.
	c.mustOK("AT+CMGD=2")
	if got := m.Stored("SM"); len(got) != 2 || got[1] != howAreYou || got[3] != howAreYou {
		t.Fatalf("SM after AT+CMGD=2: %v", got)
	}
	if got := m.Stored("ME"); len(got) != 1 || got[1] != "0A00" {
		t.Fatalf("ME: %v", got)
	}
	if got := m.Stored("SR"); len(got) != 0 {
		t.Fatalf("SR: %v", got)
	}
	if got := m.Stored("XX"); got != nil {
		t.Fatalf("unknown store: %v", got)
	}
	c.mustOK("AT+CMGD=1,4")
	if got := m.Stored("SM"); len(got) != 0 {
		t.Fatalf("SM after AT+CMGD=1,4: %v", got)
	}

	for _, tc := range []struct {
		mem  string
		stat int
		hex  string
	}{
		{"BM", 0, howAreYou},
		{"SM", 4, howAreYou},
		{"SM", -1, howAreYou},
		{"SM", 0, "zz"},
		{"SM", 0, ""},
		{"SM", 0, "0A00"}, // the SMSC part does not fit
	} {
		if _, err := m.PutStored(tc.mem, tc.stat, tc.hex); err == nil {
			t.Errorf("PutStored(%q, %d, %q): no error", tc.mem, tc.stat, tc.hex)
		}
	}
	if _, err := m.PutStoredLen("SM", 0, howAreYou, -1); err == nil {
		t.Error("PutStoredLen with a negative length: no error")
	}
	for i := 0; i < SRCapacity; i++ {
		if _, err := m.PutStored("SR", 0, "00"+fmt.Sprintf("%02X", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.PutStored("SR", 0, "0000"); err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("PutStored into a full store: %v", err)
	}
}

// TestPutStoredReport stores a status report in SR and reads it as a host
// that forgot nothing: PDU and text mode, and with NoSMSCInReports.
func TestPutStoredReport(t *testing.T) {
	_, mods := startNetwork(t, Config{})
	m := mods[0]
	tp, err := statusReportTPDU(7, addressOf("+15557654321"), time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), time.Date(2024, 5, 6, 7, 8, 19, 0, time.UTC), 0)
	if err != nil {
		t.Fatal(err)
	}
	const smsc = "07915155550000F0"
	pdu := fmt.Sprintf("%s%X", smsc, tp)
	if _, err := m.PutStored("SR", 0, pdu); err != nil {
		t.Fatal(err)
	}
	c := dial(t, m.Path())
	c.mustOK("ATE0")
	c.mustOK(`AT+CPMS="SR"`)
	c.want("AT+CMGR=1", fmt.Sprintf("+CMGR: 0,,%d", len(tp)), pdu, "OK")
	m.SetFaults(Faults{NoSMSCInReports: true})
	c.want("AT+CMGR=1", fmt.Sprintf("+CMGR: 1,,%d", len(tp)), pdu[len(smsc):], "OK")
	c.mustOK("AT+CMGF=1")
	c.want("AT+CMGR=1", `+CMGR: "REC READ",6,7,"+15557654321",145,"24/05/06,07:08:09+00","24/05/06,07:08:19+00",0`, "OK")
}

func TestDeliverPDU(t *testing.T) {
	_, mods := startNetwork(t, Config{})
	m := mods[0]
	c := dial(t, m.Path())
	c.mustOK("ATE0")
	c.mustOK("AT+CMGF=0")

	// Stored and announced, as AT+CNMI's default says.
	if err := m.DeliverPDU(howAreYou); err != nil {
		t.Fatal(err)
	}
	if got, want := c.waitFor("+CMTI:", waitTimeout), `+CMTI: "SM",1`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	c.want("AT+CMGR=1", "+CMGR: 0,,30", howAreYou, "OK")

	// Routed, byte for byte, even when it does not decode.
	c.mustOK("AT+CNMI=2,2,0,1,0")
	const junk = "0511223344550102"
	for _, p := range []struct {
		hex    string
		length int
	}{{howAreYou, 30}, {junk, 2}} {
		if err := m.DeliverPDU(p.hex); err != nil {
			t.Fatal(err)
		}
		got := c.waitLines("+CMT:", 1, waitTimeout)
		if want := []string{fmt.Sprintf("+CMT: ,%d", p.length), p.hex}; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("got %q, want %q", got, want)
		}
	}

	// Held while the modem has no network, then delivered.
	m.SetFaults(Faults{Registration: RegSearching})
	c.mustOK("AT+CNMI=2,1,0,2,0")
	if err := m.DeliverPDU(howAreYou); err != nil {
		t.Fatal(err)
	}
	c.quiet(100 * time.Millisecond)
	m.SetFaults(Faults{})
	if got, want := c.waitFor("+CMTI:", waitTimeout), `+CMTI: "SM",2`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}

	// Status reports: stored (ds=2) and routed (ds=1).
	tp, err := statusReportTPDU(42, addressOf("+15557654321"), time.Now(), time.Now(), 0x41)
	if err != nil {
		t.Fatal(err)
	}
	report := fmt.Sprintf("00%X", tp)
	if err := m.DeliverReportPDU(report); err != nil {
		t.Fatal(err)
	}
	if got, want := c.waitFor("+CDSI:", waitTimeout), `+CDSI: "SR",1`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := m.Stored("SR"); got[1] != report {
		t.Fatalf("SR: %v, want %s at 1", got, report)
	}
	c.mustOK("AT+CNMI=2,1,0,1,0")
	if err := m.DeliverReportPDU(report); err != nil {
		t.Fatal(err)
	}
	got := c.waitLines("+CDS:", 1, waitTimeout)
	if want := []string{fmt.Sprintf("+CDS: %d", len(tp)), report}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}

	for _, bad := range []string{"", "0", "xyz", "0A00"} {
		if err := m.DeliverPDU(bad); err == nil {
			t.Errorf("DeliverPDU(%q): no error", bad)
		}
	}
}

// TestGammuGetAllSMSPutStored checks that gammu reads messages placed with
// PutStored as it reads any other.
func TestGammuGetAllSMSPutStored(t *testing.T) {
	_, mods := startNetwork(t)
	if _, err := mods[0].PutStored("SM", 1, howAreYou); err != nil {
		t.Fatal(err)
	}
	out := gammu(t, mods[0].Path(), "getallsms")
	for _, want := range []string{"How are you?", "+31641600986", "1 SMS parts in 1 SMS sequences"} {
		if !strings.Contains(out, want) {
			t.Errorf("gammu getallsms output lacks %q:\n%s", want, out)
		}
	}
}
