package sim

import (
	"strings"
	"testing"
	"time"
)

// nextIs reads the next line and checks it.
func (c *client) nextIs(want string) {
	c.t.Helper()
	l, ok := c.next(cmdTimeout)
	if !ok || l != want {
		c.t.Fatalf("got line %q (%v), want %q; seen %q", l, ok, want, c.seen)
	}
}

func TestProfileHuaweiE1752(t *testing.T) {
	_, mods := startNetwork(t, Config{Profile: ProfileHuaweiE1752, ICCID: "8955170110012345678"})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	c.mustOK("AT+CMEE=1")
	for _, tc := range []struct {
		cmd  string
		want []string
	}{
		{"AT+CGMI", []string{"huawei", "OK"}},
		{"AT+CGMM", []string{"E1752", "OK"}},
		{"AT+CGMR", []string{"11.126.13.00.00", "OK"}},
		// EF_ICCID order: padded with F, each pair of digits swapped.
		{"AT^ICCID?", []string{"^ICCID: 985571100110325476F8", "OK"}},
		{"AT+CRSM=176,12258,0,0,10", []string{`+CRSM: 144,0,"985571100110325476F8"`, "OK"}},
		{"AT+CNMI=?", []string{"+CNMI: (0,1,2),(0,1,2,3),(0,2),(0,1,2),(0,1)", "OK"}},
		{"AT+COPS?", []string{`+COPS: 0,0,"Simnet",2`, "OK"}},
		// Unknown and unsupported commands, whatever AT+CMEE says.
		{"AT+CEREG?", []string{"COMMAND NOT SUPPORT"}},
		{"AT+CEREG=2", []string{"COMMAND NOT SUPPORT"}},
		{"AT+CCID", []string{"COMMAND NOT SUPPORT"}},
		{"AT+QCCID", []string{"COMMAND NOT SUPPORT"}},
		{"AT+ICCID", []string{"COMMAND NOT SUPPORT"}},
		{"AT!ICCID?", []string{"COMMAND NOT SUPPORT"}},
		{"AT+WIND?", []string{"COMMAND NOT SUPPORT"}},
		{"AT+CGMI;+ZPAS?;+CGMM", []string{"huawei", "COMMAND NOT SUPPORT"}},
		// Too many parameters.
		{"AT+CMGF=0,1", []string{"TOO MANY PARAMETERS"}},
		{"AT+CNMI=2,1,0,2,0,0", []string{"TOO MANY PARAMETERS"}},
		// A bad value of a known command is still ERROR.
		{"AT+CMGF=7", []string{"ERROR"}},
		{"AT+CNMI=2,1,0,2,0", []string{"OK"}},
		{"AT+CNMI=2,1,0,3,0", []string{"ERROR"}},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			c.t = t
			c.want(tc.cmd, tc.want...)
		})
	}
	c.t = t
	// No chatter unless asked for.
	c.quiet(100 * time.Millisecond)
}

func TestProfileHuaweiChatter(t *testing.T) {
	_, mods := startNetwork(t, Config{Profile: ProfileHuaweiE1752, ChatterEvery: 2})
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	for _, want := range []string{"^RSSI:20", "^BOOT:20952548,0,0,0,72", "^MODE:5,4", "^RSSI:9"} {
		if want == "^RSSI:9" {
			mods[0].SetFaults(Faults{Signal: 9})
		}
		c.want("AT", "OK")
		c.nextIs(want)
		c.want("AT", "OK")
	}
}

func TestProfileWavecom(t *testing.T) {
	_, mods := startNetwork(t,
		Config{Profile: ProfileWavecom, ICCID: "8933150319130043217"},
		Config{Profile: ProfileWavecom, PIN: "1234"},
	)
	c := dial(t, mods[0].Path())
	// The power-on indications wait for the first client.
	c.want("ATE0", "+WIND: 3", "+WIND: 1", "+WIND: 7", "+WIND: 4", "OK")
	c.want("AT+CGMI", "WAVECOM MODEM", "OK")
	c.want("AT+CGMM", "MULTIBAND  900E  1800", "OK")
	c.want("AT+CCID", `+CCID: "8933150319130043217F"`, "OK")
	c.want("AT+QCCID", "ERROR")
	c.want("AT+CEREG?", "ERROR")

	// AT+CPIN? has no final result code.
	c.write("AT+CPIN?\r")
	c.nextIs("+CPIN: READY")
	c.quiet(200 * time.Millisecond)
	c.want("AT", "OK")

	// Turning the radio on restarts the indications; leaving it on does not.
	c.want("AT+CFUN=1", "OK")
	c.quiet(100 * time.Millisecond)
	c.want("AT+CFUN=4", "OK")
	c.want("AT+CFUN=1", "OK")
	for _, w := range []string{"+WIND: 3", "+WIND: 1", "+WIND: 7", "+WIND: 4"} {
		c.nextIs(w)
	}
	c.want("AT+CFUN=1,1", "OK")
	for _, w := range []string{"+WIND: 3", "+WIND: 1", "+WIND: 7", "+WIND: 4"} {
		c.nextIs(w)
	}

	locked := dial(t, mods[1].Path())
	locked.want("ATE0", "+WIND: 3", "+WIND: 1", "+WIND: 7", "+WIND: 4", "OK")
	locked.write("AT+CPIN?\r")
	locked.nextIs("+CPIN: SIM PIN")
	locked.quiet(200 * time.Millisecond)
	locked.want("AT+CPIN=1234", "OK")
	locked.write("AT+CPIN?\r")
	locked.nextIs("+CPIN: READY")
	locked.quiet(200 * time.Millisecond)
}

func TestProfileQuectelEC25(t *testing.T) {
	n, mods := startNetwork(t, Config{Profile: ProfileQuectelEC25, ChatterEvery: 1})
	m := mods[0]
	c := dial(t, m.Path())
	c.mustOK("ATE0")
	c.nextIs(`+QIND: "csq",20,99`)
	c.want("AT+CGMI", "Quectel", "OK")
	c.nextIs(`+QIND: "act","LTE"`)

	m2 := startQuiet(t, n, Config{Name: "ec25b", Profile: ProfileQuectelEC25, ICCID: "89860117851014783481"})
	c = dial(t, m2.Path())
	c.mustOK("ATE0")
	c.want("AT+CGMM", "EC25", "OK")
	c.want("AT+QCCID", "+QCCID: 89860117851014783481", "OK")
	c.want("AT+CCID", "ERROR")
	c.want("AT+CNMI=?", "+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)", "OK")
	c.want("AT+CEREG=2", "OK")
	c.want("AT+CEREG?", `+CEREG: 2,1,"1A01","0000C301",7`, "OK")
	c.want("AT+COPS?", `+COPS: 0,0,"Simnet",7`, "OK")

	// A stored status report is announced in "SM", but it is in "SR".
	c.mustOK("AT+CMGF=0")
	c.mustOK("AT+CNMI=2,1,0,2,0")
	p := encodeSubmit(t, nil, "+15557654321", "report me", true)[0]
	mr := mrOf(t, c.sendPDU(p))
	if got, want := c.waitFor("+CDSI:", waitTimeout), `+CDSI: "SM",1`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	c.want(`AT+CPMS="SM"`, "+CPMS: 0,30,0,30,0,30", "OK")
	c.want("AT+CMGR=1", "OK") // nothing there
	c.mustOK(`AT+CPMS="SR"`)
	got := c.mustOK("AT+CMGR=1")
	if len(got) != 2 {
		t.Fatalf("AT+CMGR=1 in SR: %q", got)
	}
	if r := decodePDULine(t, lengthOf(t, got[0], "+CMGR: "), got[1], true); int(r.MR) != mr {
		t.Fatalf("report MR %d, want %d", r.MR, mr)
	}
	if _, ok := m2.Stored("SR")[1]; !ok || len(m2.Stored("SM")) != 0 {
		t.Fatalf("SR %v, SM %v", m2.Stored("SR"), m2.Stored("SM"))
	}

	// A reset prints the boot indications.
	c.want("AT+CFUN=1,1", "OK")
	for _, w := range []string{"RDY", "+CFUN: 1", "+CPIN: READY", "+QUSIM: 1", "+QIND: SMS DONE", "+QIND: PB DONE"} {
		c.nextIs(w)
	}
}

// startQuiet adds a modem to a running network.
func startQuiet(t *testing.T, n *Network, cfg Config) *Modem {
	t.Helper()
	cfg.SubmitLatency, cfg.ReportDelay = 5*time.Millisecond, 20*time.Millisecond
	mods, err := n.Start(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return mods[0]
}

func TestProfileSIM800(t *testing.T) {
	_, mods := startNetwork(t,
		Config{Profile: ProfileSIM800, ICCID: "8901410321111851072"},
		Config{Profile: ProfileSIM800, PIN: "1234", Model: "SIMCOM_SIM800C"},
	)
	c := dial(t, mods[0].Path())
	c.mustOK("ATE0")
	c.want("AT+CGMI", "SIMCOM_Ltd", "OK")
	c.want("AT+CGMR", "Revision:1418B04SIM800L24", "OK")
	c.want("ATI", "SIMCOM_Ltd", "SIMCOM_SIM800", "Revision:1418B04SIM800L24", "OK")
	c.want("AT+CNMI=?", "+CNMI: (0-3),(0-3),(0,2),(0,1),(0,1)", "OK")
	c.want("AT+CNMI=2,1,0,2,0", "ERROR") // no stored reports
	c.want("AT+CNMI=3,1,0,1,0", "OK")
	c.want("AT+CEREG?", "ERROR")
	c.want("AT+CEREG=1", "ERROR")
	c.want("AT+CCID", "8901410321111851072", "OK")
	c.want("AT+QCCID", "ERROR")
	c.want("AT+CFUN=1,1", "OK")
	for _, w := range []string{"RDY", "+CFUN: 1", "+CPIN: READY", "Call Ready", "SMS Ready"} {
		c.nextIs(w)
	}

	// A locked SIM: the indications stop at +CPIN. Fields set in the
	// Config win over the profile's.
	locked := dial(t, mods[1].Path())
	locked.mustOK("ATE0")
	locked.want("AT+CGMM", "SIMCOM_SIM800C", "OK")
	locked.want("AT+CFUN=1,1", "OK")
	for _, w := range []string{"RDY", "+CFUN: 1", "+CPIN: SIM PIN"} {
		locked.nextIs(w)
	}
	locked.quiet(200 * time.Millisecond)
}

func TestProfileUnknown(t *testing.T) {
	n := NewNetwork()
	defer n.Close()
	_, err := n.Start(t.TempDir(), Config{Profile: "nokia-n79"})
	if err == nil || !strings.Contains(err.Error(), `unknown profile "nokia-n79"`) || !strings.Contains(err.Error(), ProfileHuaweiE1752) {
		t.Fatalf("Start: %v", err)
	}
}

// TestQuirksCombine gives a textbook modem two quirks of different devices.
func TestQuirksCombine(t *testing.T) {
	_, mods := startNetwork(t, Config{})
	m := mods[0]
	m.mu.Lock()
	m.prof.cpinNoOK = true
	m.prof.unsupported = "COMMAND NOT SUPPORT"
	m.mu.Unlock()
	c := dial(t, m.Path())
	c.mustOK("ATE0")
	c.want("AT+BOGUS", "COMMAND NOT SUPPORT")
	c.write("AT+CPIN?\r")
	c.nextIs("+CPIN: READY")
	c.quiet(200 * time.Millisecond)
	c.want("AT+CGMI", "SIMGATE", "OK")
}

// TestGammuProfiles runs gammu against each profile: real modem software
// copes with the quirks as it does with the devices.
func TestGammuProfiles(t *testing.T) {
	for _, p := range Profiles() {
		t.Run(p, func(t *testing.T) {
			_, mods := startNetwork(t, Config{Profile: p})
			if _, err := mods[0].PutStored("SM", 1, howAreYou); err != nil {
				t.Fatal(err)
			}
			out := gammu(t, mods[0].Path(), "getallsms")
			for _, want := range []string{"How are you?", "+31641600986", "1 SMS parts in 1 SMS sequences"} {
				if !strings.Contains(out, want) {
					t.Errorf("gammu getallsms output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}
