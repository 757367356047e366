package sim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/warthog618/sms/encoding/gsm7"
	"github.com/warthog618/sms/encoding/tpdu"
	"github.com/warthog618/sms/encoding/ucs2"
)

// reply is what one command of a line produced.
type reply struct {
	lines []string     // information response
	res   result       // final result; resPrompt opens the "> " prompt
	send  *pendingSend // with resPrompt
	after func()       // runs after the final result was written
}

func okReply(lines ...string) reply { return reply{lines: lines, res: ok} }
func errReply() reply               { return reply{res: errRes} }
func resReply(r result) reply       { return reply{res: r} }

// execLocked executes one command. Unknown commands and unsupported forms
// answer ERROR, as gammu's probes (AT+CPROT=?, AT$TSSPCSW=?, AT+MODE=2)
// expect, or what the profile's device answers to unknown commands.
func (m *Modem) execLocked(c Command) reply {
	if r, quirk := m.quirkReply(c); quirk {
		return r
	}
	switch c.Name {
	case "E", "V", "Q":
		return m.cmdFlag(c)
	case "Z", "&F":
		if c.Op != OpExec || c.Arg(0) != "" && c.Arg(0) != "0" {
			return errReply()
		}
		m.resetSettingsLocked()
		return okReply()
	case "H", "+CHUP":
		return m.cmdHangup(c)
	case "A":
		return m.cmdAnswer(c)
	case "+CLIP":
		return m.cmdCLIP(c)
	case "&W", "&C", "&D", "&K", "X", "L", "M":
		// Accepted and ignored: they mean nothing on a pty.
		return okReply()
	case "I":
		if c.Op != OpExec {
			return errReply()
		}
		rev := m.cfg.Revision
		if !strings.HasPrefix(rev, "Revision") {
			// SIM800's AT+CGMR already says "Revision:1418B04SIM800L24".
			rev = "Revision: " + rev
		}
		return okReply(m.cfg.Manufacturer, m.cfg.Model, rev)
	case "S3", "S4", "S5", "S0", "S7", "S8", "S10":
		return m.cmdSReg(c)
	case "+CGMI", "+GMI":
		return m.ident(c, m.cfg.Manufacturer)
	case "+CGMM", "+GMM":
		return m.ident(c, m.cfg.Model)
	case "+CGMR", "+GMR":
		return m.ident(c, m.cfg.Revision)
	case "+CGSN", "+GSN":
		if c.Op == OpSet && c.Arg(0) == "1" {
			return okReply(fmt.Sprintf("+CGSN: %q", m.cfg.IMEI))
		}
		return m.ident(c, m.cfg.IMEI)
	case "+CIMI":
		if r, bad := m.simErrLocked(false); bad {
			return resReply(r)
		}
		return m.ident(c, m.cfg.IMSI)
	case "+CCID", "+QCCID", "^ICCID", "+ICCID":
		return m.cmdICCID(c)
	case "+CRSM":
		return m.cmdCRSM(c)
	case "+CNUM":
		if r, bad := m.simErrLocked(false); bad {
			return resReply(r)
		}
		if c.Op == OpTest {
			return okReply()
		}
		if c.Op != OpExec {
			return errReply()
		}
		if m.cfg.NoNumber {
			return okReply()
		}
		return okReply(fmt.Sprintf("+CNUM: \"\",%q,%d", m.cfg.Number, toa(m.cfg.Number)))
	case "+GCAP":
		if c.Op != OpExec {
			return errReply()
		}
		return okReply("+GCAP: +CGSM")
	case "+CMEE":
		return m.cmdInt(c, &m.set.cmee, 0, 2, "(0-2)")
	case "+CPIN":
		return m.cmdCPIN(c)
	case "+CSQ":
		switch c.Op {
		case OpExec:
			rssi := 20
			if m.faults.Signal != 0 {
				rssi = m.faults.Signal
			}
			return okReply(fmt.Sprintf("+CSQ: %d,99", rssi))
		case OpTest:
			return okReply("+CSQ: (0-31,99),(0-7,99)")
		}
		return errReply()
	case "+CREG":
		return m.cmdReg(c, &m.set.creg)
	case "+CGREG":
		return m.cmdReg(c, &m.set.cgreg)
	case "+CEREG":
		return m.cmdReg(c, &m.set.cereg)
	case "+COPS":
		return m.cmdCOPS(c)
	case "+CFUN":
		return m.cmdCFUN(c)
	case "+CSCA":
		return m.cmdCSCA(c)
	case "+CSCS":
		return m.cmdCSCS(c)
	case "+CUSD":
		return m.cmdCUSD(c)
	case "+CMGF":
		return m.cmdInt(c, &m.set.cmgf, 0, 1, "(0,1)")
	case "+CSDH":
		return m.cmdInt(c, &m.set.csdh, 0, 1, "(0,1)")
	case "+CSMS":
		return m.cmdCSMS(c)
	case "+CSMP":
		return m.cmdCSMP(c)
	case "+CNMI":
		return m.cmdCNMI(c)
	case "+CNMA":
		return m.cmdCNMA(c)
	case "+CPMS":
		return m.cmdCPMS(c)
	case "+CMGS":
		return m.cmdCMGS(c)
	case "+CMGR":
		return m.cmdCMGR(c)
	case "+CMGL":
		return m.cmdCMGL(c)
	case "+CMGD":
		return m.cmdCMGD(c)
	}
	return m.unknownReply()
}

func toa(number string) int {
	if strings.HasPrefix(number, "+") {
		return 145
	}
	return 129
}

// simErrLocked returns the error for a command that needs an unlocked SIM:
// +CME ERROR (10 no SIM, 11 PIN, 12 PUK, 13 failure) or, for SMS commands,
// the +CMS ERROR equivalent (310, 311, 316, 313).
func (m *Modem) simErrLocked(smsCmd bool) (result, bool) {
	pick := func(cmeCode, cmsCode int) (result, bool) {
		if smsCmd {
			return cms(cmsCode), true
		}
		return cme(cmeCode), true
	}
	if m.faults.SIMMissing {
		return pick(10, 310)
	}
	switch m.sim.state {
	case simPIN:
		return pick(11, 311)
	case simPUK:
		return pick(12, 316)
	case simBlocked:
		return pick(13, 313)
	}
	return result{}, false
}

// ident answers the identification commands: bare text, test form OK.
func (m *Modem) ident(c Command, v string) reply {
	switch c.Op {
	case OpExec:
		return okReply(v)
	case OpTest:
		return okReply()
	}
	return errReply()
}

func (m *Modem) cmdFlag(c Command) reply {
	if c.Op != OpExec {
		return errReply()
	}
	var v bool
	switch c.Arg(0) {
	case "", "0":
	case "1":
		v = true
	default:
		return errReply()
	}
	switch c.Name {
	case "E":
		m.set.echo = v
	case "V":
		m.set.verbose = v
	case "Q":
		m.set.quiet = v
	}
	return okReply()
}

func (m *Modem) cmdSReg(c Command) reply {
	defaults := map[string]int{"S0": 0, "S3": 13, "S4": 10, "S5": 8, "S7": 60, "S8": 2, "S10": 15}
	switch c.Op {
	case OpRead:
		return okReply(fmt.Sprintf("%03d", defaults[c.Name]))
	case OpSet:
		if _, err := strconv.Atoi(c.Arg(0)); err != nil {
			return errReply()
		}
		return okReply()
	case OpTest:
		return okReply("(0-255)")
	}
	return errReply()
}

// cmdInt handles a command whose whole state is one integer in [lo, hi].
func (m *Modem) cmdInt(c Command, p *int, lo, hi int, caps string) reply {
	switch c.Op {
	case OpRead:
		return okReply(fmt.Sprintf("%s: %d", c.Name, *p))
	case OpTest:
		return okReply(fmt.Sprintf("%s: %s", c.Name, caps))
	case OpSet:
		if len(c.Args) != 1 {
			return errReply()
		}
		v, err := strconv.Atoi(c.Arg(0))
		if err != nil || v < lo || v > hi {
			return errReply()
		}
		*p = v
		return okReply()
	case OpExec:
		*p = lo
		return okReply()
	}
	return errReply()
}

func (m *Modem) cmdICCID(c Command) reply {
	if !slices.Contains(m.cfg.ICCIDCommands, c.Name) {
		return m.unknownReply()
	}
	// Huawei answers the read form, the others the execute form.
	want := OpExec
	if c.Name == "^ICCID" {
		want = OpRead
	}
	if c.Op == OpTest {
		return okReply()
	}
	if c.Op != want {
		return errReply()
	}
	// EF_ICCID's access condition is ALWAYS (TS 102 221 §13.2): modems read
	// it with the SIM still locked, and drivers rely on that to bind a modem
	// by ICCID before they enter a PIN.
	if m.faults.SIMMissing {
		return resReply(cme(10))
	}
	switch c.Name {
	case "+CCID":
		format, iccid := "+CCID: %s", m.cfg.ICCID
		if m.prof.ccidFormat != "" {
			format = m.prof.ccidFormat
		}
		if m.prof.ccidPadF {
			iccid = padF(iccid)
		}
		return okReply(fmt.Sprintf(format, iccid))
	case "+QCCID":
		return okReply("+QCCID: " + m.cfg.ICCID)
	case "^ICCID":
		if m.prof.iccidSwapped {
			return okReply("^ICCID: " + iccidSIMOrder(m.cfg.ICCID))
		}
		return okReply("^ICCID: " + m.cfg.ICCID)
	}
	return okReply("ICCID: " + m.cfg.ICCID)
}

// cmdCRSM answers the restricted SIM access that drivers fall back to for
// the ICCID: READ BINARY (176) of EF_ICCID (12258), BCD with swapped nibbles.
func (m *Modem) cmdCRSM(c Command) reply {
	if c.Op == OpTest {
		return okReply()
	}
	if c.Op != OpSet {
		return errReply()
	}
	if c.Arg(0) != "176" || c.Arg(1) != "12258" {
		if r, bad := m.simErrLocked(false); bad {
			return resReply(r)
		}
		return okReply("+CRSM: 106,130") // file not found
	}
	if m.faults.SIMMissing { // EF_ICCID: readable while locked, as above
		return resReply(cme(10))
	}
	return okReply(fmt.Sprintf("+CRSM: 144,0,%q", iccidSIMOrder(m.cfg.ICCID)))
}

func (m *Modem) cmdCPIN(c Command) reply {
	switch c.Op {
	case OpTest:
		return okReply()
	case OpRead:
		if m.faults.SIMMissing {
			return resReply(cme(10))
		}
		if m.sim.state == simBlocked {
			return resReply(cme(13))
		}
		s, _ := m.cpinStateLocked()
		if m.prof.cpinNoOK {
			// Wavecom: the +CPIN line and no final result code.
			return reply{lines: []string{"+CPIN: " + s}, res: result{kind: resNone}}
		}
		return okReply("+CPIN: " + s)
	case OpSet:
	default:
		return errReply()
	}
	if m.faults.SIMMissing {
		return resReply(cme(10))
	}
	if len(c.Args) < 1 || len(c.Args) > 2 || c.Arg(0) == "" {
		return errReply()
	}
	switch m.sim.state {
	case simReady:
		return resReply(cme(3))
	case simBlocked:
		return resReply(cme(13))
	case simPIN:
		if c.Arg(0) == m.sim.pin {
			m.sim.state = simReady
			m.sim.pinTries = 3
			return okReply()
		}
		m.sim.pinTries--
		if m.sim.pinTries <= 0 {
			m.sim.state = simPUK
		}
		return resReply(cme(16))
	case simPUK:
		if len(c.Args) != 2 {
			return resReply(cme(12))
		}
		if c.Arg(0) == m.sim.puk && c.Arg(1) != "" {
			m.sim.pin = c.Arg(1)
			m.sim.state = simReady
			m.sim.pinTries, m.sim.pukTries = 3, 10
			return okReply()
		}
		m.sim.pukTries--
		if m.sim.pukTries <= 0 {
			m.sim.state = simBlocked
		}
		return resReply(cme(16))
	}
	return errReply()
}

// cmdReg handles +CREG, +CGREG and +CEREG: an n in 0-2 like cmdInt, with
// the registration state in the read form.
func (m *Modem) cmdReg(c Command, n *int) reply {
	if c.Op == OpRead {
		return okReply(m.regLine(c.Name, *n, m.statLocked(), true))
	}
	return m.cmdInt(c, n, 0, 2, "(0-2)")
}

func (m *Modem) cmdCOPS(c Command) reply {
	mccmnc := "00101"
	if len(m.cfg.IMSI) >= 5 {
		mccmnc = m.cfg.IMSI[:5]
	}
	switch c.Op {
	case OpRead:
		if !m.registeredLocked() {
			return okReply("+COPS: 0")
		}
		name := m.cfg.Operator
		switch m.set.copsFormat {
		case 1:
			name = strings.ToUpper(name)
			if len(name) > 8 {
				name = name[:8]
			}
		case 2:
			name = mccmnc
		}
		return okReply(fmt.Sprintf("+COPS: 0,%d,%q,%d", m.set.copsFormat, name, m.prof.act))
	case OpTest:
		return okReply(fmt.Sprintf("+COPS: (2,%q,%q,%q,0),,(0-4),(0-2)", m.cfg.Operator, strings.ToUpper(m.cfg.Operator), mccmnc))
	case OpSet:
		mode, err := strconv.Atoi(c.Arg(0))
		if err != nil || mode < 0 || mode > 4 {
			return errReply()
		}
		if c.Arg(1) != "" {
			f, err := strconv.Atoi(c.Arg(1))
			if err != nil || f < 0 || f > 2 {
				return errReply()
			}
			m.set.copsFormat = f
		}
		return okReply()
	}
	return errReply()
}

func (m *Modem) cmdCFUN(c Command) reply {
	switch c.Op {
	case OpRead:
		return okReply(fmt.Sprintf("+CFUN: %d", m.set.cfun))
	case OpTest:
		return okReply("+CFUN: (0,1,4),(0,1)")
	case OpSet:
	default:
		return errReply()
	}
	fun, err := strconv.Atoi(c.Arg(0))
	if err != nil || len(c.Args) > 2 || (fun != 0 && fun != 1 && fun != 4) {
		return errReply()
	}
	rst := 0
	if c.Arg(1) != "" {
		if rst, err = strconv.Atoi(c.Arg(1)); err != nil || rst < 0 || rst > 1 {
			return errReply()
		}
	}
	if rst == 1 {
		if fun != 1 {
			return errReply()
		}
		if m.cfg.ResetUnplugs {
			// A USB module re-enumerates: the port goes away after the OK.
			return reply{res: ok, after: m.restartLocked}
		}
		// Reset after the OK: a power cycle of the modem.
		return reply{res: ok, after: func() {
			m.set.cfun = 1
			m.powerOnLocked()
			m.bootLocked()
		}}
	}
	// Turning the radio on (not leaving it on: gammu sends AT+CFUN=1 at
	// every start) restarts a Wavecom's indications.
	restart := fun == 1 && m.set.cfun != 1 && m.prof.bootOnCFUN
	m.set.cfun = fun
	if restart {
		return reply{res: ok, after: m.bootLocked}
	}
	return okReply()
}

func (m *Modem) cmdCSCA(c Command) reply {
	switch c.Op {
	case OpTest:
		return okReply()
	case OpRead, OpSet:
	default:
		return errReply()
	}
	if r, bad := m.simErrLocked(true); bad {
		return resReply(r)
	}
	if c.Op == OpRead {
		return okReply(fmt.Sprintf("+CSCA: %q,%d", m.encodeString(m.set.csca), m.set.cscaType))
	}
	if len(c.Args) < 1 || len(c.Args) > 2 {
		return errReply()
	}
	num, okNum := m.decodeString(c.Arg(0))
	if !okNum || !validNumber(num) {
		return errReply()
	}
	t := toa(num)
	if c.Arg(1) != "" {
		v, err := strconv.Atoi(c.Arg(1))
		if err != nil || v < 128 || v > 255 {
			return errReply()
		}
		t = v
	}
	if t == 145 && num != "" && !strings.HasPrefix(num, "+") {
		num = "+" + num
	}
	m.set.csca, m.set.cscaType = num, t
	return okReply()
}

// validNumber reports whether s is a dialling number: an optional '+' and
// up to 20 digits (or empty).
func validNumber(s string) bool {
	d := strings.TrimPrefix(s, "+")
	if len(d) > 20 || (s != "" && d == "") {
		return false
	}
	for i := 0; i < len(d); i++ {
		if !isDigit(d[i]) && d[i] != '*' && d[i] != '#' {
			return false
		}
	}
	return true
}

var cscsCharsets = []string{"IRA", "GSM", "UCS2"}

func (m *Modem) cmdCSCS(c Command) reply {
	switch c.Op {
	case OpRead:
		return okReply(fmt.Sprintf("+CSCS: %q", m.set.cscs))
	case OpTest:
		return okReply(`+CSCS: ("IRA","GSM","UCS2")`)
	case OpSet:
		v := strings.ToUpper(c.Arg(0))
		if len(c.Args) != 1 || !slices.Contains(cscsCharsets, v) {
			return errReply()
		}
		m.set.cscs = v
		return okReply()
	}
	return errReply()
}

// encodeString and decodeString apply AT+CSCS to string parameters: hex
// UCS-2 in "UCS2", the bytes themselves otherwise.
func (m *Modem) encodeString(s string) string {
	if m.set.cscs != "UCS2" {
		return s
	}
	return strings.ToUpper(hex.EncodeToString(ucs2.Encode([]rune(s))))
}

func (m *Modem) decodeString(s string) (string, bool) {
	if m.set.cscs != "UCS2" {
		return s, true
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b)%2 != 0 {
		return "", false
	}
	r, err := ucs2.Decode(b)
	if err != nil {
		return "", false
	}
	return string(r), true
}

func (m *Modem) cmdCSMS(c Command) reply {
	switch c.Op {
	case OpRead:
		return okReply(fmt.Sprintf("+CSMS: %d,1,1,1", m.set.csms))
	case OpTest:
		return okReply("+CSMS: (0,1)")
	case OpSet:
		v, err := strconv.Atoi(c.Arg(0))
		if len(c.Args) != 1 || err != nil || v < 0 || v > 1 {
			return errReply()
		}
		m.set.csms = v
		return okReply("+CSMS: 1,1,1")
	}
	return errReply()
}

func (m *Modem) cmdCSMP(c Command) reply {
	switch c.Op {
	case OpRead:
		p := m.set.csmp
		return okReply(fmt.Sprintf("+CSMP: %d,%d,%d,%d", p[0], p[1], p[2], p[3]))
	case OpTest:
		return okReply()
	case OpSet:
		if len(c.Args) > 4 {
			return errReply()
		}
		p := m.set.csmp
		for i, a := range c.Args {
			if a == "" {
				continue
			}
			v, err := strconv.Atoi(a)
			if err != nil || v < 0 || v > 255 {
				return errReply()
			}
			p[i] = v
		}
		if _, err := tpdu.DCS(p[3]).Alphabet(); err != nil {
			return errReply()
		}
		m.set.csmp = p
		return okReply()
	}
	return errReply()
}

// parseCaps parses an AT+CNMI=? answer such as "(0-2),(0-3),(0,2),(0,1),(0,1)"
// into the allowed values of each of the five parameters.
func parseCaps(s string) ([5][]int, error) {
	var caps [5][]int
	rest := strings.TrimSpace(s)
	for i := 0; i < 5; i++ {
		if !strings.HasPrefix(rest, "(") {
			return caps, fmt.Errorf("group %d: want '('", i+1)
		}
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return caps, fmt.Errorf("group %d: want ')'", i+1)
		}
		for _, item := range strings.Split(rest[1:end], ",") {
			lo, hi, isRange := strings.Cut(strings.TrimSpace(item), "-")
			a, err := strconv.Atoi(lo)
			if err != nil || a < 0 || a > 9 {
				return caps, fmt.Errorf("group %d: bad value %q", i+1, item)
			}
			b := a
			if isRange {
				if b, err = strconv.Atoi(hi); err != nil || b < a || b > 9 {
					return caps, fmt.Errorf("group %d: bad range %q", i+1, item)
				}
			}
			for v := a; v <= b; v++ {
				if !slices.Contains(caps[i], v) {
					caps[i] = append(caps[i], v)
				}
			}
		}
		rest = strings.TrimSpace(rest[end+1:])
		if i < 4 {
			if !strings.HasPrefix(rest, ",") {
				return caps, fmt.Errorf("want 5 groups")
			}
			rest = strings.TrimSpace(rest[1:])
		}
	}
	if rest != "" {
		return caps, errors.New("trailing text")
	}
	return caps, nil
}

func (m *Modem) cmdCNMI(c Command) reply {
	switch c.Op {
	case OpRead:
		v := m.set.cnmi
		return okReply(fmt.Sprintf("+CNMI: %d,%d,%d,%d,%d", v[0], v[1], v[2], v[3], v[4]))
	case OpTest:
		return okReply("+CNMI: " + m.cfg.CNMICaps)
	case OpSet:
	default:
		return errReply()
	}
	if len(c.Args) > 5 {
		return errReply()
	}
	v := m.set.cnmi
	for i, a := range c.Args {
		if a == "" {
			continue
		}
		n, err := strconv.Atoi(a)
		if err != nil || !slices.Contains(m.caps[i], n) {
			return errReply()
		}
		v[i] = n
	}
	wasBuffering := m.set.cnmi[0] == 0
	m.set.cnmi = v
	if wasBuffering && v[0] != 0 {
		// <bfr> 0: flush the indications buffered in mode 0; 1: clear them.
		held := m.buffered
		m.buffered = nil
		if v[4] == 0 {
			return reply{res: ok, after: func() {
				for _, u := range held {
					m.writeLocked([]byte(u))
				}
			}}
		}
	}
	return okReply()
}

func (m *Modem) cmdCNMA(c Command) reply {
	switch c.Op {
	case OpTest:
		return okReply("+CNMA: (0-2)")
	case OpExec, OpSet:
	default:
		return errReply()
	}
	if m.ackWait == nil {
		return resReply(cms(340))
	}
	// AT+CNMA=<n>: 0 and 1 acknowledge (RP-ACK), 2 refuses (RP-ERROR). A
	// <length> would announce a PDU for the network, which this network does
	// not take.
	n := 0
	if c.Op == OpSet {
		if len(c.Args) > 1 {
			return resReply(cms(303))
		}
		v, err := strconv.Atoi(c.Args[0])
		if err != nil || v < 0 || v > 2 {
			return resReply(cms(304))
		}
		n = v
	}
	if n == 2 {
		m.refuseAckWaitLocked()
	} else {
		m.endAckWaitLocked()
	}
	// The next routed message may go now, after this command's answer.
	r := okReply()
	r.after = m.flushPendingLocked
	return r
}

var (
	mems1 = []string{"SM", "ME", "SR"}
	mems2 = []string{"SM", "ME"}
)

func (m *Modem) cmdCPMS(c Command) reply {
	if c.Op == OpTest {
		return okReply(`+CPMS: ("SM","ME","SR"),("SM","ME"),("SM","ME")`)
	}
	if r, bad := m.simErrLocked(true); bad {
		return resReply(r)
	}
	switch c.Op {
	case OpRead:
		var parts []string
		for _, mem := range m.set.cpms {
			s := m.stores[mem]
			parts = append(parts, fmt.Sprintf("%q,%d,%d", mem, s.used(), s.total()))
		}
		return okReply("+CPMS: " + strings.Join(parts, ","))
	case OpSet:
	default:
		return errReply()
	}
	if len(c.Args) < 1 || len(c.Args) > 3 {
		return errReply()
	}
	v := m.set.cpms
	for i, a := range c.Args {
		a = strings.ToUpper(a)
		allowed := mems2
		if i == 0 {
			allowed = mems1
		}
		if !slices.Contains(allowed, a) {
			return resReply(cms(302))
		}
		v[i] = a
	}
	m.set.cpms = v
	var parts []string
	for _, mem := range v {
		s := m.stores[mem]
		parts = append(parts, fmt.Sprintf("%d,%d", s.used(), s.total()))
	}
	return okReply("+CPMS: " + strings.Join(parts, ","))
}

func (m *Modem) cmdCMGS(c Command) reply {
	if c.Op == OpTest {
		return okReply()
	}
	if c.Op != OpSet {
		return errReply()
	}
	if r, bad := m.simErrLocked(true); bad {
		return resReply(r)
	}
	if m.set.cmgf == 0 {
		n, err := strconv.Atoi(c.Arg(0))
		if len(c.Args) != 1 || err != nil || n < 7 || n > maxTPDU {
			return resReply(cms(304))
		}
		return reply{res: result{kind: resPrompt}, send: &pendingSend{pdu: true, length: n}}
	}
	da, okDA := m.decodeString(c.Arg(0))
	if len(c.Args) > 2 || !okDA || da == "" || !validNumber(da) {
		return resReply(cms(305))
	}
	t := toa(da)
	if c.Arg(1) != "" {
		v, err := strconv.Atoi(c.Arg(1))
		if err != nil || v < 128 || v > 255 {
			return resReply(cms(305))
		}
		t = v
	}
	return reply{res: result{kind: resPrompt}, send: &pendingSend{da: da, toda: t}}
}

// textSubmitLocked builds the SMS-SUBMIT of a text-mode AT+CMGS from the
// text, AT+CSMP and AT+CSCS, as the modem does.
func (m *Modem) textSubmitLocked(ps *pendingSend, body []byte) (*submitPDU, error) {
	var text []rune
	if m.set.cscs == "UCS2" {
		b, err := hex.DecodeString(strings.TrimSpace(string(body)))
		if err != nil || len(b)%2 != 0 {
			return nil, errors.New("bad UCS2 hex")
		}
		r, err := ucs2.Decode(b)
		if err != nil {
			return nil, err
		}
		text = r
	} else {
		text = toRunes(body)
	}
	p := m.set.csmp
	fo := tpdu.FirstOctet(p[0]&^(tpdu.FoMTIMask|tpdu.FoUDHI)) | tpdu.FirstOctet(tpdu.MtSubmit)
	t := tpdu.TPDU{Direction: tpdu.MO, FirstOctet: fo, DA: addressOf(ps.da), PID: byte(p[2]), DCS: tpdu.DCS(p[3])}
	if ps.toda != 0 {
		t.DA.TOA = byte(ps.toda)
	}
	switch fo.VPF() {
	case tpdu.VpfRelative:
		t.VP = tpdu.ValidityPeriod{Format: tpdu.VpfRelative, Duration: relativeVP(p[1])}
	case tpdu.VpfNotPresent:
	default:
		// Absolute and enhanced formats cannot be given in AT+CSMP's <vp>
		// integer; send without a validity period.
		t.FirstOctet = t.FirstOctet.WithVPF(tpdu.VpfNotPresent)
	}
	alpha, _ := t.DCS.Alphabet()
	switch alpha {
	case tpdu.AlphaUCS2:
		t.UD = ucs2.Encode(text)
		if len(t.UD) > tpdu.MaxUDL {
			return nil, errors.New("text too long")
		}
	case tpdu.Alpha8Bit:
		t.UD = []byte(string(text))
		if len(t.UD) > tpdu.MaxUDL {
			return nil, errors.New("text too long")
		}
	default:
		var sept []byte
		for _, r := range text {
			s, err := gsm7.Encode([]byte(string(r)))
			if err != nil {
				s = []byte{'?'}
			}
			sept = append(sept, s...)
		}
		if len(sept) > 160 {
			return nil, errors.New("text too long")
		}
		t.UD = sept
	}
	raw, err := t.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &submitPDU{tpdu: t, raw: raw}, nil
}

// toRunes decodes text typed at the prompt: UTF-8 where it is valid, Latin-1
// otherwise.
func toRunes(b []byte) []rune {
	var r []rune
	for len(b) > 0 {
		c, n := utf8.DecodeRune(b)
		if c == utf8.RuneError && n == 1 {
			c = rune(b[0])
		}
		r = append(r, c)
		b = b[n:]
	}
	return r
}

func (m *Modem) cmdCMGR(c Command) reply {
	if c.Op == OpTest {
		return okReply()
	}
	if c.Op != OpSet {
		return errReply()
	}
	if r, bad := m.simErrLocked(true); bad {
		return resReply(r)
	}
	idx, err := strconv.Atoi(c.Arg(0))
	if err != nil || len(c.Args) > 2 {
		return errReply()
	}
	s := m.stores[m.set.cpms[0]]
	msg, in := s.get(idx)
	if !in {
		return resReply(cms(321))
	}
	if msg == nil {
		// An empty slot: OK without data, as SIM800 and Huawei answer.
		return okReply()
	}
	lines, okText := m.formatStoredLocked(msg, "+CMGR: ", "")
	if !okText {
		return resReply(cms(500))
	}
	if msg.stat == statRecUnread && c.Arg(1) != "1" {
		msg.stat = statRecRead
	}
	return okReply(lines...)
}

// formatStoredLocked formats a stored message for +CMGR (index "") or
// +CMGL. It reports false for a message that text mode cannot show: a PDU
// a test stored (PutStored) that does not decode.
func (m *Modem) formatStoredLocked(msg *storedMsg, prefix, index string) ([]string, bool) {
	if m.set.cmgf == 0 {
		var smsc []byte
		if !msg.report || !m.faults.NoSMSCInReports {
			smsc = smscField(msg.smsc, msg.smscRaw)
		}
		return []string{
			fmt.Sprintf("%s%s%d,,%d", prefix, index, msg.stat, msg.lengthField()),
			pduHex(smsc, msg.tpdu, m.faults.LowercaseHex),
		}, true
	}
	st := fmt.Sprintf("%q", statText[msg.stat])
	t, err := decodeMT(msg.tpdu)
	if err != nil {
		return nil, false
	}
	if msg.report {
		return []string{m.textReportLocked(prefix+index+st+",", msg.tpdu)}, true
	}
	return []string{
		fmt.Sprintf("%s%s%s,%q,,%q", prefix, index, st, m.encodeString(t.OA.Number()), sctsText(t.SCTS.Time)),
		m.encodeText(partText(t)),
	}, true
}

// encodeText formats message text for text mode under AT+CSCS.
func (m *Modem) encodeText(s string) string {
	if m.set.cscs == "UCS2" {
		return strings.ToUpper(hex.EncodeToString(ucs2.Encode([]rune(s))))
	}
	return s
}

// textCMTLocked formats a routed SMS in text mode:
// +CMT: <oa>,[<alpha>],<scts> and the text.
func (m *Modem) textCMTLocked(p pendingMsg) []string {
	t, err := decodeMT(p.tpdu)
	if err != nil {
		return []string{`+CMT: "",,""`, ""}
	}
	return []string{
		fmt.Sprintf("+CMT: %q,,%q", m.encodeString(t.OA.Number()), sctsText(t.SCTS.Time)),
		m.encodeText(partText(t)),
	}
}

// textReportLocked formats a status report in text mode:
// <fo>,<mr>,<ra>,<tora>,<scts>,<dt>,<st> after prefix.
func (m *Modem) textReportLocked(prefix string, b []byte) string {
	t, err := decodeMT(b)
	if err != nil {
		return prefix + `0,0,"",129,"","",0`
	}
	return fmt.Sprintf("%s%d,%d,%q,%d,%q,%q,%d", prefix, byte(t.FirstOctet), t.MR,
		m.encodeString(t.RA.Number()), t.RA.TOA, sctsText(t.SCTS.Time), sctsText(t.DT.Time), t.ST)
}

func (m *Modem) cmdCMGL(c Command) reply {
	if c.Op == OpTest {
		if m.set.cmgf == 0 {
			return okReply("+CMGL: (0-4)")
		}
		return okReply(`+CMGL: ("REC UNREAD","REC READ","STO UNSENT","STO SENT","ALL")`)
	}
	if c.Op != OpSet && c.Op != OpExec {
		return errReply()
	}
	if r, bad := m.simErrLocked(true); bad {
		return resReply(r)
	}
	want := statRecUnread
	if c.Op == OpSet {
		if len(c.Args) > 2 {
			return errReply()
		}
		if m.set.cmgf == 0 {
			v, err := strconv.Atoi(c.Arg(0))
			if err != nil || v < 0 || v > 4 {
				return errReply()
			}
			want = v
		} else if want = statFromText(strings.ToUpper(c.Arg(0))); want < 0 {
			return errReply()
		}
	}
	s := m.stores[m.set.cpms[0]]
	var lines []string
	for i, msg := range s.slots {
		if msg == nil || (want != statAll && msg.stat != want) {
			continue
		}
		l, okText := m.formatStoredLocked(msg, "+CMGL: ", strconv.Itoa(i+1)+",")
		if !okText {
			// As a modem that cannot convert a PDU to text: the list
			// so far, then an error.
			return reply{lines: lines, res: cms(500)}
		}
		lines = append(lines, l...)
		if msg.stat == statRecUnread && c.Arg(1) != "1" {
			msg.stat = statRecRead
		}
	}
	return okReply(lines...)
}

func (m *Modem) cmdCMGD(c Command) reply {
	if c.Op == OpTest {
		return okReply("+CMGD: (1-100),(0-4)")
	}
	if c.Op != OpSet {
		return errReply()
	}
	if r, bad := m.simErrLocked(true); bad {
		return resReply(r)
	}
	if len(c.Args) > 2 {
		return errReply()
	}
	flag := 0
	if c.Arg(1) != "" {
		v, err := strconv.Atoi(c.Arg(1))
		if err != nil || v < 0 || v > 4 {
			return errReply()
		}
		flag = v
	}
	s := m.stores[m.set.cpms[0]]
	if flag == 0 {
		idx, err := strconv.Atoi(c.Arg(0))
		if err != nil {
			return errReply()
		}
		if !s.del(idx) {
			return resReply(cms(321))
		}
		return okReply()
	}
	// <delflag> 1: read; 2: read and sent; 3: read, sent and unsent; 4: all.
	for i, msg := range s.slots {
		if msg == nil {
			continue
		}
		del := flag == 4 || msg.stat == statRecRead ||
			flag >= 2 && msg.stat == statStoSent ||
			flag >= 3 && msg.stat == statStoUnsent
		if del {
			s.slots[i] = nil
		}
	}
	return okReply()
}
