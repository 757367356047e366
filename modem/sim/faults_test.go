package sim

import (
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestFaultLatency(t *testing.T) {
	_, mods := startNetwork(t, Config{})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	mods[0].SetFaults(Faults{SubmitLatency: 300 * time.Millisecond, SubmitJitter: 50 * time.Millisecond})
	p := encodeSubmit(t, nil, "+15557654321", "slow", false)[0]
	start := time.Now()
	mrOf(t, c.sendPDU(p))
	// A lower bound only: the modem must not answer before its latency.
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("answered after %v, want >= 300ms", el)
	}
}

func TestFaultCMSErrors(t *testing.T) {
	n, mods := startNetwork(t, Config{})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	m := mods[0]
	p := encodeSubmit(t, nil, "+15557654321", "x", false)[0]

	m.SetFaults(Faults{CMSErrorRate: 1, CMSErrorCode: 38})
	if res := c.sendPDU(p); res[len(res)-1] != "+CMS ERROR: 38" {
		t.Fatalf("rate 1: %q", res)
	}
	m.SetFaults(Faults{CMSErrorRate: 0.5})
	fails, oks := 0, 0
	for i := 0; i < 20; i++ {
		res := c.sendPDU(p)
		switch res[len(res)-1] {
		case "OK":
			oks++
		case "+CMS ERROR: 500":
			fails++
		default:
			t.Fatalf("rate 0.5: %q", res)
		}
	}
	if fails == 0 || oks == 0 {
		t.Fatalf("rate 0.5: %d failed, %d ok", fails, oks)
	}
	if got := len(n.Submissions()); got != oks {
		t.Fatalf("%d submissions, want %d (failed submits never leave the modem)", got, oks)
	}

	m.SetFaults(Faults{CMSErrorFor: map[string]int{"+15550000099": 21}})
	bad := encodeSubmit(t, nil, "+15550000099", "x", false)[0]
	if res := c.sendPDU(bad); res[len(res)-1] != "+CMS ERROR: 21" {
		t.Fatalf("per destination: %q", res)
	}
	if res := c.sendPDU(p); res[len(res)-1] != "OK" {
		t.Fatalf("other destination: %q", res)
	}
	c.mustOK("AT+CMEE=2")
	if res := c.sendPDU(bad); res[len(res)-1] != "+CMS ERROR: Short message transfer rejected" {
		t.Fatalf("verbose: %q", res)
	}
}

func TestFaultReportOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		faults    Faults
		sts       []byte // TP-ST of each report, in order
		delivered bool
	}{
		{"delivered", Faults{}, []byte{0x00}, true},
		{"temp then delivered", Faults{Report: ReportTempThenDelivered}, []byte{0x21, 0x00}, true},
		{"temp status chosen", Faults{Report: ReportTempThenDelivered, ReportStatus: 0x24}, []byte{0x24, 0x00}, true},
		{"permanent", Faults{Report: ReportPermanent}, []byte{0x41}, false},
		{"permanent 0x45", Faults{Report: ReportPermanent, ReportStatus: 0x45}, []byte{0x45}, false},
		{"none", Faults{Report: ReportNone}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, mods := startNetwork(t, Config{})
			c := dial(t, mods[0].Path())
			c.mustOK("ATE0")
			c.mustOK("AT+CNMI=2,1,0,1,0")
			mods[0].SetFaults(tc.faults)
			mr := mrOf(t, c.sendPDU(encodeSubmit(t, nil, "+15557654321", "outcome", true)[0]))
			for i, st := range tc.sts {
				l := c.waitLines("+CDS:", 1, waitTimeout)
				r := decodePDULine(t, lengthOf(t, l[0], "+CDS: "), l[1], true)
				if int(r.MR) != mr || r.ST != st {
					t.Fatalf("report %d: mr %d st %#x, want mr %d st %#x", i, r.MR, r.ST, mr, st)
				}
				if i == 0 && len(tc.sts) == 2 && len(n.Inbox("+15557654321")) != 0 {
					t.Fatal("delivered before the temporary report")
				}
			}
			if tc.delivered {
				waitInbox(t, n, "+15557654321", 1)
			} else if got := n.Inbox("+15557654321"); len(got) != 0 {
				t.Fatalf("permanent failure delivered %+v", got)
			}
			if len(tc.sts) == 0 {
				waitInbox(t, n, "+15557654321", 1)
				c.quiet(100 * time.Millisecond)
			}
		})
	}
}

func TestFaultNoNetwork(t *testing.T) {
	n, mods := startNetwork(t, Config{Number: "+15550000001"})
	m := mods[0]
	c := dial(t, m.Path())
	c.mustOK("ATE0")
	c.mustOK("AT+CREG=1")
	c.mustOK("AT+CGREG=2")
	for _, reg := range []Registration{RegSearching, RegDenied, RegNotRegistered} {
		m.SetFaults(Faults{Registration: reg})
		want := "+CREG: " + itoa(reg.Stat())
		if got := c.waitFor("+CREG:", waitTimeout); got != want {
			t.Fatalf("URC %q, want %q", got, want)
		}
		if got := c.waitFor("+CGREG:", waitTimeout); got != "+CGREG: "+itoa(reg.Stat()) {
			t.Fatalf("URC %q", got)
		}
		c.want("AT+CREG?", "+CREG: 1,"+itoa(reg.Stat()), "OK")
		res := c.sendPDU(encodeSubmit(t, nil, "+15557654321", "x", false)[0])
		if got := res[len(res)-1]; got != "+CMS ERROR: 331" {
			t.Fatalf("send without network: %q", res)
		}
	}
	// Inbound messages wait in the network.
	if err := n.Inject("+15559876543", "+15550000001", "held"); err != nil {
		t.Fatal(err)
	}
	c.quiet(100 * time.Millisecond)
	m.SetFaults(Faults{})
	c.waitFor("+CREG: 1", waitTimeout)
	if got := c.waitFor("+CGREG:", waitTimeout); got != `+CGREG: 1,"1A00","C300"` {
		t.Fatalf("CGREG URC %q", got)
	}
	c.waitFor(`+CMTI: "SM",1`, waitTimeout)
	c.mustOK("AT+CREG=0;+CGREG=0")
	m.SetFaults(Faults{Registration: RegRoaming})
	c.want("AT+CREG?", "+CREG: 0,5", "OK")
	if res := c.sendPDU(encodeSubmit(t, nil, "+15557654321", "roaming", false)[0]); res[len(res)-1] != "OK" {
		t.Fatalf("roaming send: %q", res)
	}
}

func TestFaultSIM(t *testing.T) {
	_, mods := startNetwork(t, Config{})
	m := mods[0]
	c := dial(t, m.Path())
	c.mustOK("ATE0")
	c.mustOK("AT+CMEE=1")
	m.SetFaults(Faults{SIMMissing: true})
	c.want("AT+CPIN?", "+CME ERROR: 10")
	c.want("AT+CIMI", "+CME ERROR: 10")
	c.want("AT+CCID", "+CME ERROR: 10")
	c.want("AT+CREG?", "+CREG: 0,0", "OK")
	c.want("AT+CMGS=20", "+CMS ERROR: 310")
	c.want("AT+CGSN", m.Config().IMEI, "OK") // the IMEI is the modem's, not the SIM's

	m.SetFaults(Faults{PINRequired: true})
	c.want("AT+CPIN?", "+CPIN: SIM PIN", "OK")
	c.want("AT+CMGS=20", "+CMS ERROR: 311")
	c.want("AT+CPIN=0000", "OK")
	c.want("AT+CPIN?", "+CPIN: READY", "OK")
	// Still PINRequired, but only the change to true locks the SIM.
	m.SetFaults(Faults{PINRequired: true, Signal: 7})
	c.want("AT+CPIN?", "+CPIN: READY", "OK")
	c.want("AT+CSQ", "+CSQ: 7,99", "OK")
}

func TestFaultHang(t *testing.T) {
	_, mods := startNetwork(t, Config{})
	m := mods[0]
	c := dial(t, m.Path())
	c.mustOK("ATE0")
	m.SetFaults(Faults{Hung: true})
	c.write("AT\r")
	c.quiet(300 * time.Millisecond)
	// Explicit recovery.
	m.SetFaults(Faults{})
	c.want("AT", "OK")
	m.SetFaults(Faults{Hung: true, Signal: 9})
	c.write("AT+CSQ\r")
	c.quiet(200 * time.Millisecond)
	m.Unhang()
	c.want("AT+CSQ", "+CSQ: 9,99", "OK")
	if f := m.Faults(); f.Hung || f.Signal != 9 {
		t.Fatalf("faults after Unhang: %+v", f)
	}

	// Recovery by closing and reopening the device, as a driver does.
	m.SetFaults(Faults{Hung: true})
	c.write("AT+CGMI\r")
	c.quiet(300 * time.Millisecond)
	c.close()
	c2 := dial(t, m.Path())
	c2.want("AT", "OK") // echo still off: recovery is not a reset
	if m.Faults().Hung {
		t.Fatal("still hung after reopen")
	}
	c2.mustOK("ATE0")
	c2.want("AT+CGMI", "SIMGATE", "OK")
}

// A client that holds the device through two descriptors, as the modem
// driver does (one for its lock, one for the port), and closes both at once
// ends a hang, though inotify reports the two closes as one event.
func TestFaultHangTwoDescriptors(t *testing.T) {
	n, mods := startNetwork(t, Config{})
	m := mods[0]
	if n.watch == nil {
		t.Skip("no inotify")
	}
	lock, err := os.OpenFile(m.Path(), os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	opens := func(want int) func() bool {
		return func() bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			return m.dev.opens == want
		}
	}
	// Each open seen on its own, so that the count does not start merged.
	eventually(t, "the first open seen", opens(1))
	c := dial(t, m.Path())
	c.mustOK("ATE0")
	eventually(t, "the second open seen", opens(2))
	m.SetFaults(Faults{Hung: true})
	c.write("AT\r")
	c.quiet(200 * time.Millisecond)

	// Both closes are queued before the sim reads either, so the kernel
	// merges them into one event.
	n.watch.mu.Lock()
	lock.Close()
	c.close()
	n.watch.mu.Unlock()
	eventually(t, "hang ended", func() bool { return !m.Faults().Hung })
	c2 := dial(t, m.Path())
	c2.want("AT", "OK")
}

func TestFaultNoise(t *testing.T) {
	n, mods := startNetwork(t, Config{})
	m := mods[0]
	c := dial(t, m.Path())
	c.mustOK("ATE0")
	c.mustOK("AT+CNMI=2,1,0,1,0")
	m.SetFaults(Faults{Noise: true})
	noise := func(l string) bool {
		return l == "RING" || l == "^RSSI: 20" || l == "+CREG: 1"
	}
	var got []string
	for i := 0; i < 6; i++ {
		got = append(got, c.cmd("AT+CSQ")...)
	}
	nNoise := 0
	for _, l := range got {
		switch {
		case noise(l):
			nNoise++
		case l == "+CSQ: 20,99" || l == "OK":
		default:
			t.Fatalf("unexpected line %q in %q", l, got)
		}
	}
	if nNoise != 6 {
		t.Fatalf("%d noise lines in %q", nNoise, got)
	}
	// During AT+CMGS: noise after the prompt and before the answer.
	p := encodeSubmit(t, nil, "+15557654321", "noisy", true)[0]
	c.write("AT+CMGS=" + itoa(p.length) + "\r")
	c.waitPrompt("")
	l, _ := c.next(cmdTimeout)
	if !noise(l) {
		t.Fatalf("after prompt: %q", l)
	}
	c.write(p.hex + "\x1a")
	res := c.until("", cmdTimeout)
	if len(res) < 3 || !noise(res[0]) || !strings.HasPrefix(res[len(res)-2], "+CMGS: ") {
		t.Fatalf("answer %q", res)
	}
	waitInbox(t, n, "+15557654321", 1)
	// The report still comes through whole.
	rl := c.waitLines("+CDS:", 1, waitTimeout)
	decodePDULine(t, lengthOf(t, rl[0], "+CDS: "), rl[1], true)
}

func TestFaultLowercaseAndNoSMSC(t *testing.T) {
	n, mods := startNetwork(t, Config{Number: "+15550000001"})
	m := mods[0]
	c := dial(t, m.Path())
	c.mustOK("ATE0")
	c.mustOK("AT+CNMI=2,2,0,1,0")
	m.SetFaults(Faults{LowercaseHex: true, NoSMSCInReports: true})
	mr := mrOf(t, c.sendPDU(encodeSubmit(t, nil, "+15557654321", "lower", true)[0]))
	l := c.waitLines("+CDS:", 1, waitTimeout)
	if l[1] != strings.ToLower(l[1]) {
		t.Fatalf("not lower case: %q", l[1])
	}
	// Without the SMSC prefix the hex is exactly <length> octets.
	if got, want := len(l[1])/2, lengthOf(t, l[0], "+CDS: "); got != want {
		t.Fatalf("hex has %d octets, length says %d", got, want)
	}
	r := decodePDULine(t, lengthOf(t, l[0], "+CDS: "), l[1], false)
	if int(r.MR) != mr {
		t.Fatalf("mr %d, want %d", r.MR, mr)
	}
	// Deliveries keep their SMSC prefix, in lower case.
	if err := n.Inject("+15559876543", "+15550000001", "x"); err != nil {
		t.Fatal(err)
	}
	l = c.waitLines("+CMT:", 1, waitTimeout)
	if l[1] != strings.ToLower(l[1]) {
		t.Fatalf("not lower case: %q", l[1])
	}
	decodePDULine(t, lengthOf(t, l[0], "+CMT: "), l[1], true)
}

func TestFaultLateCMGS(t *testing.T) {
	n, mods := startNetwork(t, Config{})
	m := mods[0]
	c := dial(t, m.Path())
	c.mustOK("ATE0")
	m.SetFaults(Faults{LateCMGS: 1500 * time.Millisecond})
	p := encodeSubmit(t, nil, "+15557654321", "late", false)[0]
	c.write("AT+CMGS=" + itoa(p.length) + "\r")
	c.waitPrompt("")
	c.write(p.hex + "\x1a")
	// The host gives up after 300ms...
	c.quiet(300 * time.Millisecond)
	// ...but the message went out and reached the handset.
	waitInbox(t, n, "+15557654321", 1)
	// The late answer still arrives; it belongs to the old command.
	res := c.until("", waitTimeout)
	if mrOf(t, res) != 0 || res[len(res)-1] != "OK" {
		t.Fatalf("late answer %q", res)
	}
	c.quiet(200 * time.Millisecond)
	if got := len(n.Inbox("+15557654321")); got != 1 {
		t.Fatalf("delivered %d times", got)
	}
	if got := len(n.Submissions()); got != 1 {
		t.Fatalf("%d submissions", got)
	}
}

func TestUnplugReplug(t *testing.T) {
	n, mods := startNetwork(t, Config{Name: "ttyUSB0", Number: "+15550000001"})
	m := mods[0]
	old := m.Path()
	imei := m.Config().IMEI
	c := dial(t, old)
	c.mustOK("ATE0")
	c.mustOK("AT+CNMI=2,1,0,0,0")
	if err := m.Unplug(); err != nil {
		t.Fatal(err)
	}
	// The client's read fails, as on a USB disconnect.
	select {
	case <-c.done:
	case <-time.After(waitTimeout):
		t.Fatal("client read did not fail")
	}
	if c.readErr() == nil {
		t.Fatal("no read error")
	}
	if _, err := os.Lstat(old); !os.IsNotExist(err) {
		t.Fatalf("symlink still there: %v", err)
	}
	if err := m.Unplug(); err != ErrUnplugged {
		t.Fatalf("second unplug: %v", err)
	}
	// Messages for an unplugged modem wait in the network.
	if err := n.Inject("+15559876543", "+15550000001", "while away"); err != nil {
		t.Fatal(err)
	}
	path, err := m.Replug("ttyUSB1")
	if err != nil {
		t.Fatal(err)
	}
	if path == old || m.Path() != path || !strings.HasSuffix(path, "/ttyUSB1") {
		t.Fatalf("new path %q (old %q)", path, old)
	}
	if n.Modem("ttyUSB0") != m {
		t.Fatal("modem not found by its configured name")
	}
	c2 := dial(t, path)
	c2.mustOK("ATE0")
	c2.want("AT+CGSN", imei, "OK")
	// The held message was stored on the SIM while no one listened.
	c2.want("AT+CPMS?", `+CPMS: "SM",1,30,"SM",1,30,"SM",1,30`, "OK")
	if _, err := m.Replug("ttyUSB2"); err == nil {
		t.Fatal("replug while plugged succeeded")
	}
}
