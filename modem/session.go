package modem

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/simgate/simgate"
)

// health is what a probe learns about the network side of a modem.
type health struct {
	Operator     string
	AccessTech   string
	Registration string
	Registered   bool // SMS possible
	RSSI         int  // 99: unknown
}

// cnmiSetting is the AT+CNMI chosen from the modem's capabilities.
type cnmiSetting struct {
	mode, mt, bm, ds, bfr int
	dsStored              bool // the modem offers stored reports (ds=2)
}

func (s cnmiSetting) String() string {
	return fmt.Sprintf("%d,%d,%d,%d,%d", s.mode, s.mt, s.bm, s.ds, s.bfr)
}

// handshake gets a freshly opened port into a known state: ESC and CR to
// cancel whatever was pending, echo off, numeric errors, and a command whose
// answer carries its own prefix to prove the stream is in step.
func (c *conn) handshake(ctx context.Context) error {
	c.at.Escape([]byte("\r\n")...)
	var err error
	for i := 0; i < 3; i++ {
		if _, err = c.cmd(ctx, "E0"); err == nil {
			break
		}
		if errors.Is(err, ErrPortClosed) || ctx.Err() != nil {
			break
		}
		c.at.Escape([]byte("\r\n")...)
	}
	if err != nil {
		return fmt.Errorf("cannot get an answer: %w", err)
	}
	if _, err := c.cmd(ctx, "+CMEE=1"); err != nil {
		return err
	}
	if _, err := c.query(ctx, "+CMEE?", "+CMEE"); err != nil {
		return err
	}
	return nil
}

// reset sends ATZ (which also resets AT+CNMI, hence indications are
// configured after it) and repeats the handshake.
func (c *conn) reset(ctx context.Context) error {
	// Some modems answer ERROR to ATZ; what matters is the handshake after.
	_, _ = c.cmd(ctx, "Z")
	return c.handshake(ctx)
}

// unlock checks the SIM and enters the PIN when it asks for one. A PUK, a
// wrong PIN or a PIN asked for without one configured are errors that must
// not be retried: each try uses up one of the SIM's attempts.
func (c *conn) unlock(ctx context.Context, pin string) error {
	st, err := c.cpin(ctx)
	if err != nil {
		return err
	}
	switch st {
	case "READY", "SIM PIN2", "SIM PUK2":
		// PIN2 and PUK2 guard only fixed dialling and call metering (TS
		// 27.007 §8.3): SMS works, and the PUK2 must not be tried here.
		return nil
	case "SIM PIN":
		if pin == "" {
			return &Error{Op: "unlock SIM", Class: simgate.ClassModemUnhealthy, Err: ErrPINRequired}
		}
	case "SIM PUK":
		return &Error{Op: "unlock SIM", Class: simgate.ClassModemUnhealthy, Err: ErrPUKRequired}
	default:
		return &Error{Op: "unlock SIM", Class: simgate.ClassModemUnhealthy, Err: fmt.Errorf("SIM wants %q", st)}
	}
	// The command text holds the PIN: it must not reach an error or a log.
	if _, err := c.at.Command(`+CPIN="` + pin + `"`); err != nil {
		e := atError("enter PIN", err, false, false)
		switch {
		case e.CME == 16 || e.CME == 12 || e.CMS == 311 || e.CMS == 316:
			// 16 incorrect password; 12 / 316: the PIN was the last try.
			e.Err = ErrWrongPIN
			if e.CME == 12 || e.CMS == 316 {
				e.Err = fmt.Errorf("%w (now %w)", ErrWrongPIN, ErrPUKRequired)
			}
		case e.CME != 0 || e.CMS != 0 || errors.Is(err, ErrTimeout):
			// A SIM that says no in another way: treat as wrong rather
			// than trying again.
			e.Err = fmt.Errorf("%w: %w", ErrWrongPIN, e.Err)
		}
		e.Class = simgate.ClassModemUnhealthy
		return e
	}
	// The SIM takes a moment to get ready after the PIN.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := c.cpin(ctx)
		if err == nil && st == "READY" {
			return nil
		}
		if err == nil && (st == "SIM PIN" || st == "SIM PUK") {
			return &Error{Op: "unlock SIM", Class: simgate.ClassModemUnhealthy, Err: ErrWrongPIN}
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("SIM says %q after the PIN", st)
			}
			return &Error{Op: "unlock SIM", Class: simgate.ClassModemUnhealthy, Err: err}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// cpin returns the AT+CPIN? state (READY, SIM PIN, SIM PUK, ...).
func (c *conn) cpin(ctx context.Context) (string, error) {
	v, err := c.query(ctx, "+CPIN?", "+CPIN")
	if err != nil {
		var e *Error
		if errors.As(err, &e) && (e.CME == 10 || e.CME == 13 || e.CMS == 310 || e.CMS == 313) {
			e.Err = fmt.Errorf("%w: %w", ErrSIMMissing, e.Err)
		}
		return "", err
	}
	return strings.Trim(v, `"`), nil
}

// identity reads the manufacturer, model, firmware, IMEI, IMSI and ICCID.
// Only the IMEI is required.
func (c *conn) identity(ctx context.Context, sim bool) (simgate.ModemIdentity, error) {
	var id simgate.ModemIdentity
	id.Manufacturer = c.text(ctx, "+CGMI")
	id.Model = c.text(ctx, "+CGMM")
	id.Revision = c.text(ctx, "+CGMR")
	info, err := c.cmd(ctx, "+CGSN")
	if err != nil {
		return id, err
	}
	id.IMEI = imeiLine(info)
	if id.IMEI == "" {
		return id, &Error{Op: "AT+CGSN", Class: simgate.ClassModemUnhealthy, Err: fmt.Errorf("%w: no IMEI in %q", ErrMalformed, info)}
	}
	if !sim {
		return id, nil
	}
	if info, err := c.cmd(ctx, "+CIMI"); err == nil {
		id.IMSI = digitsLine(info, "+CIMI", 5, 15)
	}
	id.ICCID = c.iccid(ctx)
	return id, nil
}

// ownNumber reads the SIM's own number with AT+CNUM (TS 27.007 §7.1) and
// returns it in E.164, or "" (cnumNumber). Many SIMs do not hold their
// number: the network knows it, and an operator need not write it to the
// card. A SIM that lacks it answers OK alone, an empty number, or an error.
func (c *conn) ownNumber(ctx context.Context) string {
	info, err := c.cmd(ctx, "+CNUM")
	if err != nil {
		return ""
	}
	return cnumNumber(info)
}

// cnumNumber returns the voice number of an AT+CNUM answer, "+CNUM:
// [<alpha>],<number>,<type>[,<speed>,<service>[,<itc>]]" a line per
// number, in E.164: a line without <service> or with 4 (voice; the others
// are data and fax numbers), whose number is "+" and digits or digits of
// type 145 (international). A national number cannot be placed in a
// country here, and is not taken.
func cnumNumber(info []string) string {
	for _, l := range info {
		v, ok := strings.CutPrefix(strings.TrimSpace(l), "+CNUM:")
		if !ok {
			continue
		}
		f := fields(strings.TrimSpace(v))
		if len(f) < 3 || len(f) >= 5 && f[4] != "" && f[4] != "4" {
			continue
		}
		typ, _ := atoi(f[2])
		if n := simgate.AddressE164(f[1], typ, ""); n != "" {
			return n
		}
	}
	return ""
}

// text returns the bare answer of AT+CGMI and the like, skipping lines that
// are unsolicited rather than the answer.
func (c *conn) text(ctx context.Context, cmd string) string {
	info, err := c.cmd(ctx, cmd)
	if err != nil {
		return ""
	}
	if v, ok := findPrefix(info, cmd); ok {
		return strings.Trim(v, `"`)
	}
	// Some phones answer in several lines (Nokia's AT+CGMR: version, date,
	// model): they are kept, one per line.
	var lines []string
	for _, l := range info {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "+") || strings.HasPrefix(l, "^") || strings.HasPrefix(l, "AT") {
			continue
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

// digitsLine returns the first line that is min..max digits, after an
// optional "prefix:".
func digitsLine(info []string, prefix string, min, max int) string {
	for _, l := range info {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), prefix+":"))
		l = strings.Trim(l, `"`)
		if len(l) >= min && len(l) <= max && allDigits(l) {
			return l
		}
	}
	return ""
}

// imeiLine returns the IMEI (TS 23.003 §6.2: 14 digits and a check digit, or
// 16 digits of IMEISV; some modules leave the check digit out) of an AT+CGSN
// answer. Some phones put their serial number after it
// ("356936001568843,NL2A62Z0N5"): the first field is the IMEI.
func imeiLine(info []string) string {
	for _, l := range info {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(l), "+CGSN:"), "+GSN:"))
		l, _, _ = strings.Cut(l, ",")
		l = strings.Trim(strings.TrimSpace(l), `"`)
		if len(l) >= 14 && len(l) <= 17 && allDigits(l) {
			return l
		}
	}
	return ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// iccidCommands are the vendors' ways to read the ICCID, with the prefix of
// their answers.
var iccidCommands = []struct{ cmd, prefix string }{
	{"+CCID", "+CCID"},
	{"+QCCID", "+QCCID"},  // Quectel
	{"^ICCID?", "^ICCID"}, // Huawei
	{"+ICCID", "ICCID"},   // Sierra: "ICCID: ..."
	{"!ICCID?", "!ICCID"}, // Sierra
}

// iccid reads the SIM's ICCID with the first command the modem knows,
// falling back to reading EF_ICCID (0x2FE2 = 12258) with AT+CRSM. Every
// answer is brought to the form printed on the card (NormalizeICCID).
func (c *conn) iccid(ctx context.Context) string {
	for _, ic := range iccidCommands {
		info, err := c.cmd(ctx, ic.cmd)
		if err != nil {
			if errors.Is(err, ErrPortClosed) || errors.Is(err, ErrTimeout) {
				return ""
			}
			continue
		}
		for _, l := range info {
			l = strings.TrimSpace(l)
			for _, p := range []string{ic.prefix + ":", "+ICCID:", "ICCID:", "+CCID:"} {
				l = strings.TrimSpace(strings.TrimPrefix(l, p))
			}
			if v := NormalizeICCID(l); v != "" {
				return v
			}
		}
	}
	v, err := c.query(ctx, "+CRSM=176,12258,0,0,10", "+CRSM")
	if err != nil {
		return ""
	}
	f := fields(v)
	if len(f) < 3 || (f[0] != "144" && f[0] != "145") {
		return ""
	}
	return NormalizeICCID(f[2])
}

// NormalizeICCID returns the ICCID in s as it is printed on the card, or ""
// when s holds none. An ICCID is 18 to 20 digits (ITU-T E.118) that begin
// with 89, the telecom industry identifier, and end with a Luhn check digit.
// The SIM stores it in EF_ICCID as BCD with the digits of each byte swapped
// and F padding (TS 102 221 §13.2); AT+CRSM returns those bytes, and Huawei's
// AT^ICCID? prints them as they are ("98555023010073579185" for
// 89550532100037751958), so a swapped form is recognised by its leading 98
// and unswapped: the Luhn digit cannot tell, as both forms may pass it.
// Quotes, spaces and F padding are taken off.
func NormalizeICCID(s string) string {
	s = strings.ToUpper(strings.Trim(strings.TrimSpace(s), `"`))
	if strings.HasPrefix(s, "98") {
		if v := strings.TrimRight(swapNibbles(s), "F"); strings.HasPrefix(v, "89") && iccidShape(v) {
			return v
		}
	}
	if v := strings.TrimRight(s, "F"); iccidShape(v) {
		return v
	}
	return ""
}

// iccidShape reports whether s has the length and digits of an ICCID.
// Digits A to E occur: China Mobile puts a hex digit in the account part
// ("898600C6112051005816"); F is padding only.
func iccidShape(s string) bool {
	if len(s) < 18 || len(s) > 22 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'A' <= s[i] && s[i] <= 'E') {
			return false
		}
	}
	return true
}

// swapNibbles swaps each pair of characters: EF_ICCID holds BCD digits low
// nibble first.
func swapNibbles(s string) string {
	b := []byte(s)
	for i := 0; i+1 < len(b); i += 2 {
		b[i], b[i+1] = b[i+1], b[i]
	}
	return string(b)
}

// probeHealth reads registration, operator and signal.
func (c *conn) probeHealth(ctx context.Context) (health, error) {
	h := health{RSSI: 99}
	v, err := c.query(ctx, "+CSQ", "+CSQ")
	if err != nil {
		return h, err
	}
	h.RSSI, _ = parseCSQ(v)
	stat := -1
	for _, q := range []string{"+CREG", "+CEREG", "+CGREG"} {
		info, err := c.cmd(ctx, q+"?")
		if err != nil {
			if errors.Is(err, ErrTimeout) || errors.Is(err, ErrPortClosed) {
				return h, err
			}
			continue
		}
		s, ok := regStat(info, q)
		if !ok {
			continue
		}
		if stat < 0 || regOK(s) {
			stat = s
		}
		if regOK(s) {
			break
		}
	}
	h.Registration = regName(stat)
	h.Registered = regOK(stat)
	if v, err := c.query(ctx, "+COPS?", "+COPS"); err == nil {
		var act int
		h.Operator, act = parseCOPS(v)
		if act >= 0 {
			h.AccessTech = actName(act)
		}
	} else if errors.Is(err, ErrTimeout) || errors.Is(err, ErrPortClosed) {
		return h, err
	}
	return h, nil
}

// parseCSQ returns <rssi> and <ber> of a +CSQ answer (TS 27.007 §8.5); 99
// for a field that is missing or unknown.
func parseCSQ(v string) (rssi, ber int) {
	rssi, ber = 99, 99
	f := fields(v)
	if n, ok := atoi(f[0]); ok {
		rssi = n
	}
	if len(f) > 1 {
		if n, ok := atoi(f[1]); ok {
			ber = n
		}
	}
	return rssi, ber
}

// parseCOPS returns <oper> and <AcT> (-1 when not given) of an AT+COPS?
// answer "<mode>[,<format>,<oper>[,<AcT>]]" (TS 27.007 §7.3).
func parseCOPS(v string) (oper string, act int) {
	act = -1
	f := fields(v)
	if len(f) >= 3 {
		oper = f[2]
	}
	if len(f) >= 4 {
		if n, ok := atoi(f[3]); ok {
			act = n
		}
	}
	return oper, act
}

// regStat finds the solicited answer of AT+CREG? and the like,
// "<n>,<stat>[,<lac>,<ci>[,<AcT>...]]" (TS 27.007 §7.2, §10.1.20, §10.1.22).
// An unsolicited "+CREG: <stat>[,<lac>,<ci>[,<AcT>]]" may slip into the
// answer; it is told apart by its second field, the location area or
// tracking area code: quoted by most modems, but some print it bare
// ("+CEREG: 2, 0001, 00000100, 7"), as four hex digits or more, which a
// stat (0 to 11, which Iridium zero-pads to three digits: "+CREG:002,001")
// never looks like. The last solicited line wins: the answer comes after
// any URC that slipped in before it.
func regStat(info []string, prefix string) (int, bool) {
	stat, found := 0, false
	for _, l := range info {
		if !strings.HasPrefix(l, prefix+":") {
			continue
		}
		raw := strings.Split(strings.TrimSpace(l[len(prefix)+1:]), ",")
		if len(raw) < 2 {
			continue
		}
		n, s := strings.TrimSpace(raw[0]), strings.TrimSpace(raw[1])
		if len(n) > 3 || len(s) > 3 || !allDigits(n) || !allDigits(s) {
			continue // a LAC or TAC: 4 hex digits or more
		}
		if v, _ := atoi(s); v <= 11 {
			stat, found = v, true
		}
	}
	return stat, found
}

// regOK reports whether stat lets the modem send SMS (TS 27.007 §7.2): 1
// home and 5 roaming; 6 and 7 registered for SMS only (E-UTRAN); 9 and 10
// registered with CSFB not preferred, home and roaming (SMS over SGs or IMS
// still works). 8 is emergency bearer services only.
func regOK(stat int) bool {
	return stat == 1 || stat == 5 || stat == 6 || stat == 7 || stat == 9 || stat == 10
}

func regName(stat int) string {
	switch stat {
	case 0:
		return "not registered"
	case 1:
		return "home"
	case 2:
		return "searching"
	case 3:
		return "denied"
	case 4:
		return "unknown"
	case 5:
		return "roaming"
	case 6:
		return "home (SMS only)"
	case 7:
		return "roaming (SMS only)"
	case 8:
		return "emergency only"
	case 9:
		return "home (CSFB not preferred)"
	case 10:
		return "roaming (CSFB not preferred)"
	}
	return "unknown"
}

func actName(act int) string {
	switch act {
	case 0, 1, 3:
		return "GSM"
	case 2, 4, 5, 6:
		return "UTRAN"
	case 7, 9, 10, 12, 13:
		return "E-UTRAN"
	}
	return strconv.Itoa(act)
}

// configureSMS sets PDU mode, the SMSC when one is configured, reads the
// message service phase (for AT+CNMA) and chooses AT+CNMI from AT+CNMI=?.
// It must run after ATZ, which resets AT+CNMI.
func (c *conn) configureSMS(ctx context.Context, smsc string) (cnmi cnmiSetting, phase2 bool, err error) {
	if _, err = c.cmd(ctx, "+CMGF=0"); err != nil {
		return cnmi, false, err
	}
	if smsc != "" {
		if _, err = c.cmd(ctx, fmt.Sprintf(`+CSCA="%s",145`, smsc)); err != nil {
			return cnmi, false, err
		}
	}
	if v, err := c.query(ctx, "+CSMS?", "+CSMS"); err == nil {
		if f := fields(v); len(f) > 0 && f[0] == "1" {
			phase2 = true
		}
	}
	// COPS format 0: long alphanumeric operator names in AT+COPS?.
	_, _ = c.cmd(ctx, "+COPS=3,0")
	v, err := c.query(ctx, "+CNMI=?", "+CNMI")
	if err != nil {
		return cnmi, phase2, err
	}
	cnmi, err = chooseCNMI(v)
	if err != nil {
		return cnmi, phase2, &Error{Op: "AT+CNMI=?", Class: simgate.ClassModemUnhealthy, Err: err}
	}
	if _, err = c.cmd(ctx, "+CNMI="+cnmi.String()); err != nil {
		return cnmi, phase2, err
	}
	// The caller's number after each RING (+CLIP), for incoming calls.
	_, err = c.cmd(ctx, "+CLIP=1")
	if err != nil && sessionEnding(err) {
		return cnmi, phase2, err
	}
	c.clip = err == nil
	return cnmi, phase2, nil
}

// chooseCNMI picks AT+CNMI values from an AT+CNMI=? answer such as
// "(0-2),(0-3),(0,2),(0-2),(0,1)": mode 2 (buffer while busy) or 1, inbound
// SMS stored with +CMTI (mt=1) or else routed (mt=2), status reports routed
// (ds=1) or else stored (ds=2). Routed reports save two commands each on
// the modem's goroutine; before the host lets go of the port, reports are
// switched to stored where the modem offers it (handOver), so that none is
// lost while nobody reads the port.
func chooseCNMI(caps string) (cnmiSetting, error) {
	groups := capGroups(caps)
	if len(groups) < 4 {
		return cnmiSetting{}, fmt.Errorf("cannot read AT+CNMI=? answer %q", caps)
	}
	for len(groups) < 5 {
		groups = append(groups, map[int]bool{0: true})
	}
	pick := func(g map[int]bool, prefs ...int) int {
		for _, p := range prefs {
			if g[p] {
				return p
			}
		}
		return -1
	}
	s := cnmiSetting{
		mode: pick(groups[0], 2, 1, 3),
		mt:   pick(groups[1], 1, 2, 0),
		bm:   pick(groups[2], 0),
		ds:   pick(groups[3], 1, 2, 0),
		bfr:  pick(groups[4], 0, 1),
	}
	s.dsStored = groups[3][2]
	if s.mode < 0 || s.mt < 0 || s.ds < 0 {
		return s, fmt.Errorf("no usable AT+CNMI setting in %q", caps)
	}
	if s.bm < 0 {
		s.bm = 0
	}
	if s.bfr < 0 {
		s.bfr = 0
	}
	return s, nil
}

// capGroups parses "(0-2),(0,1),1" into sets of values.
func capGroups(s string) []map[int]bool {
	var groups []map[int]bool
	for len(s) > 0 {
		s = strings.TrimLeft(s, " ,")
		if s == "" {
			break
		}
		var g string
		if s[0] == '(' {
			end := strings.IndexByte(s, ')')
			if end < 0 {
				end = len(s) - 1
			}
			g, s = s[1:end], s[end+1:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			g, s = s[:end], s[end:]
		}
		set := map[int]bool{}
		for _, item := range strings.Split(g, ",") {
			item = strings.TrimSpace(item)
			if lo, hi, ok := strings.Cut(item, "-"); ok {
				a, ok1 := atoi(lo)
				b, ok2 := atoi(hi)
				if ok1 && ok2 {
					for i := a; i <= b && i-a < 64; i++ {
						set[i] = true
					}
				}
			} else if n, ok := atoi(item); ok {
				set[n] = true
			}
		}
		groups = append(groups, set)
	}
	return groups
}
