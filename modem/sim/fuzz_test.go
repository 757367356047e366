package sim

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var commandSeeds = []string{
	"AT", "ATE1", "ATE0", "ATZ", "AT&F", "ATI", "ATE0V1Q0&D2", "ATS3=13", "ATS3?",
	"AT+MODE=2", "AT+CMEE=1", "AT+CSCS?", "AT+CSCS=?", `AT+CSCS="UCS2"`, "AT+CGMM", "AT+CGMI",
	"AT+CPROT=?", "AT+SYNCML=?", "AT$TSSPCSW=?", "AT+CHUP=?", "AT+CGMR", "AT+CFUN=1", "AT+CFUN=1,1",
	"AT+CGSN", "AT+CIMI", "AT+CCID", "AT+QCCID", "AT^ICCID?", "AT!ICCID?", "AT+CRSM=176,12258,0,0,10",
	"AT+CSCA?", `AT+CSCA="+15550000000",145`, "AT+CMGF=0", "AT+CMGF=1", "AT+CSMS?", "AT+CSMS=1",
	"AT+CNMI=?", "AT+CNMI=2,1,0,1,0", "AT+CNMI=2,2,0,2,0", "AT+CPMS=?", `AT+CPMS="ME"`, `AT+CPMS="SM","SM","SM"`,
	"AT+CPMS?", "AT+CMGL=4", `AT+CMGL="ALL"`, "AT+CMGR=1", "AT+CMGD=1", "AT+CMGD=1,4", "AT+CMEE=1;+CREG=2",
	"AT+CPIN?", `AT+CPIN="1234"`, `AT+CPIN="12345678","0000"`, "AT+CSQ", "AT+CREG?", "AT+CGREG=2", "AT+CEREG?",
	"AT+COPS?", "AT+COPS=3,0", "AT+CNMA", "AT+CNMA=2", "AT+CNMA=", "AT+CSMP=49,167,0,0", "AT+CMGS=23", `AT+CMGS="+15551234567",145`,
	"ATD+15551234;", `AT+CSCA="\22"`, "at+cgmi;+cgmm;e0",
}

func FuzzParseCommandLine(f *testing.F) {
	for _, s := range commandSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmds, err := ParseCommandLine(line)
		if err != nil {
			return
		}
		for _, c := range cmds {
			if c.Name == "" {
				t.Fatalf("%q: empty name in %#v", line, cmds)
			}
			if c.Name != strings.ToUpper(c.Name) {
				t.Fatalf("%q: name %q not upper case", line, c.Name)
			}
			if c.Op != OpSet && c.Op != OpExec && c.Op != OpRead && c.Op != OpTest {
				t.Fatalf("%q: bad op %d", line, c.Op)
			}
			_ = c.String()
		}
	})
}

// pduSeeds are SMS-SUBMITs as gammu, smsd and warthog618/sms send them.
var pduSeeds = []string{
	"0011000B916407281553F80000AA0AE8329BFD4697D9EC37",
	"0031000B915155557654F30000A705E8329BFD06",
	"07919151555000F011000B915155557654F30008A70C041F0440043804320435 0442",
	"0041000B915155557654F3000098050003010201C2E170381C0E87C3E1",
	"00110000000000",
	"0001000B915155557654F300000568656C6C6F",
}

func FuzzDecodeSubmitPDU(f *testing.F) {
	for _, s := range pduSeeds {
		f.Add(s, len(strings.ReplaceAll(s, " ", ""))/2-1)
	}
	for _, text := range []string{"hello", strings.Repeat("long text ", 20), "Привет 😀"} {
		for _, p := range encodeSubmit(f, nil, "+15557654321", text, true) {
			f.Add(p.hex, p.length)
			f.Add(strings.ToLower(p.hex), p.length)
		}
	}
	f.Fuzz(func(t *testing.T, hexPDU string, length int) {
		s, err := decodeSubmitPDU(hexPDU, length)
		if err != nil {
			return
		}
		if len(s.raw) != length {
			t.Fatalf("accepted %d octets for length %d", len(s.raw), length)
		}
		if s.tpdu.DA.Addr == "" {
			t.Fatal("accepted a submit without destination")
		}
		if txt := partText(&s.tpdu); !utf8.ValidString(txt) {
			t.Fatalf("invalid UTF-8 text %q", txt)
		}
	})
}

// FuzzModemInput feeds arbitrary bytes to a modem's command interpreter, as
// a broken or hostile host could: it must never panic or hang.
func FuzzModemInput(f *testing.F) {
	for _, s := range commandSeeds {
		f.Add([]byte(s + "\r"))
	}
	p := encodeSubmit(f, nil, "+15557654321", "hi", true)[0]
	f.Add([]byte("AT+CMGS=" + itoa(p.length) + "\r" + p.hex + "\x1a"))
	f.Add([]byte("AT+CMGF=1\rAT+CMGS=\"+1555\"\rtext\rmore\x1a"))
	f.Add([]byte("AT+CMGS=5\r\x1bAT\r"))
	f.Add([]byte("\x1b\r\x00\xffAT+CSQ\b\bCSQ\r\n"))
	// One network without watcher and timers keeps runs fast and
	// deterministic (the fuzzer's minimisation relies on both); what a run
	// leaves in it is cleared before the next.
	n := newNetwork(false)
	n.noTimers = true
	defer n.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > MaxLineLength {
			return // longer inputs only repeat what shorter ones reach
		}
		n.mu.Lock()
		n.subs = nil
		n.mu.Unlock()
		// A hang is caught by the fuzzer, which stops a worker that does
		// not come back.
		m, d := newDetachedModem(n)
		defer d.cancel()
		m.feed(d, data)
	})
}

// newDetachedModem returns a modem with a device that has no pty: input is
// fed directly and output discarded.
func newDetachedModem(n *Network) (*Modem, *device) {
	cfg := Config{PIN: "", ICCIDCommands: []string{"+CCID", "+QCCID", "^ICCID", "+ICCID"}}
	cfg.setDefaults(0)
	cfg.SubmitLatency = 0 // after the defaults: no wait at all
	cfg.ReportDelay = time.Hour
	m := newModem(n, cfg, 0)
	d := &device{wd: -1}
	d.ctx, d.cancel = context.WithCancel(n.ctx)
	d.out.ready = make(chan struct{}, 1)
	d.out.discard = true
	m.dev = d
	return m, d
}
