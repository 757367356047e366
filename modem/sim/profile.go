package sim

import (
	"slices"
	"strconv"
	"strings"
)

// Names of the vendor profiles for Config.Profile.
const (
	ProfileHuaweiE1752 = "huawei-e1752" // Huawei E1752 3G USB stick
	ProfileWavecom     = "wavecom"      // Wavecom MULTIBAND 900E 1800
	ProfileQuectelEC25 = "quectel-ec25" // Quectel EC25 LTE module
	ProfileSIM800      = "sim800"       // SIMCom SIM800 GSM module
)

// Profiles returns the names Config.Profile accepts besides "" (the
// textbook modem), in alphabetical order.
func Profiles() []string {
	return []string{ProfileHuaweiE1752, ProfileQuectelEC25, ProfileSIM800, ProfileWavecom}
}

// Tokens in profile lines that are filled in when the line is written.
const (
	// cpinToken stands for the SIM state line ("+CPIN: READY") in boot
	// lines; the boot lines after it need a ready SIM.
	cpinToken = "<cpin>"
	// rssiToken stands for the current +CSQ <rssi> in chatter lines.
	rssiToken = "<rssi>"
)

// profile is a real device: the identity it prints and its quirks. Each
// quirk is one field with a zero value that means "as the standard says",
// so that profiles, and tests, can combine them.
type profile struct {
	name string

	// Identity answers and capabilities, used where Config leaves them
	// empty.
	manufacturer, model, revision string
	iccidCommands                 []string
	cnmiCaps                      string

	// unsupported is the final result code of a command the device does
	// not know ("" is ERROR). Huawei says COMMAND NOT SUPPORT.
	unsupported string
	// tooManyParams is the final result code of a set command given more
	// parameters than it takes (see maxParams); "" leaves the answer to the
	// command, usually ERROR. Huawei says TOO MANY PARAMETERS.
	tooManyParams string
	// lacks lists commands the device does not have, which it answers as
	// unknown: a 2G or 3G device has no +CEREG.
	lacks []string

	// ccidFormat formats the AT+CCID answer from the ICCID ("" is
	// "+CCID: %s"); ccidPadF pads an odd-length ICCID with F first, as
	// EF_ICCID stores it.
	ccidFormat string
	ccidPadF   bool
	// iccidSwapped makes AT^ICCID? answer the digits nibble-swapped, in the
	// order EF_ICCID stores them (Huawei).
	iccidSwapped bool
	// cpinNoOK makes AT+CPIN? answer its +CPIN line without a final result
	// code (Wavecom).
	cpinNoOK bool
	// cdsiMem is the store that +CDSI names for a stored status report;
	// "" names "SR", where it is. The EC25 says "SM".
	cdsiMem string
	// act is the access technology of +COPS?: 0 GSM, 2 UTRAN, 7 E-UTRAN.
	act int
	// ussdPacked makes +CUSD answers carry the packed GSM 7-bit septets in
	// hex, whatever AT+CSCS says (Huawei).
	ussdPacked bool

	// boot are the unsolicited lines after a reset (AT+CFUN=1,1); a
	// cpinToken line is the SIM state, and the lines after it come only
	// with a ready SIM. bootAtPlug writes them at power-on (plug-in) too,
	// bootOnCFUN after an AT+CFUN=1 that turns the radio on as well.
	boot                   []string
	bootAtPlug, bootOnCFUN bool
	// chatter are unsolicited lines the device emits now and then: one
	// after every Config.ChatterEvery command lines, in turn. rssiToken is
	// the signal.
	chatter []string
}

// lookupProfile returns the profile named name; "" is the textbook modem.
func lookupProfile(name string) (profile, bool) {
	switch name {
	case "":
		return profile{}, true
	case ProfileHuaweiE1752:
		// Strings as python-gsmmodem's test/fakemodems.py recorded them
		// from a device; ^BOOT and ^MODE as ModemManager logs show them.
		return profile{
			name:          name,
			manufacturer:  "huawei",
			model:         "E1752",
			revision:      "11.126.13.00.00",
			iccidCommands: []string{"^ICCID"},
			cnmiCaps:      "(0,1,2),(0,1,2,3),(0,2),(0,1,2),(0,1)",
			unsupported:   "COMMAND NOT SUPPORT",
			tooManyParams: "TOO MANY PARAMETERS",
			lacks:         []string{"+CEREG"},
			iccidSwapped:  true,
			act:           2,
			chatter:       []string{"^RSSI:" + rssiToken, "^BOOT:20952548,0,0,0,72", "^MODE:5,4"},
			// gammu's tests record Huawei E160 answers as packed hex.
			ussdPacked: true,
		}, true
	case ProfileWavecom:
		return profile{
			name:          name,
			manufacturer:  "WAVECOM MODEM",
			model:         "MULTIBAND  900E  1800",
			iccidCommands: []string{"+CCID"},
			lacks:         []string{"+CEREG"},
			ccidFormat:    `+CCID: "%s"`,
			ccidPadF:      true,
			cpinNoOK:      true,
			// +WIND: 3 AT commands ready, 1 SIM inserted, 7 emergency
			// calls possible, 4 all commands ready.
			boot:       []string{"+WIND: 3", "+WIND: 1", "+WIND: 7", "+WIND: 4"},
			bootAtPlug: true,
			bootOnCFUN: true,
		}, true
	case ProfileQuectelEC25:
		return profile{
			name:          name,
			manufacturer:  "Quectel",
			model:         "EC25",
			revision:      "EC25EFAR06A03M4G",
			iccidCommands: []string{"+QCCID"},
			cnmiCaps:      "(0-2),(0-3),(0,2),(0-2),(0,1)",
			cdsiMem:       "SM",
			act:           7,
			boot:          []string{"RDY", "+CFUN: 1", cpinToken, "+QUSIM: 1", "+QIND: SMS DONE", "+QIND: PB DONE"},
			chatter:       []string{`+QIND: "csq",` + rssiToken + ",99", `+QIND: "act","LTE"`},
		}, true
	case ProfileSIM800:
		return profile{
			name:          name,
			manufacturer:  "SIMCOM_Ltd",
			model:         "SIMCOM_SIM800",
			revision:      "Revision:1418B04SIM800L24",
			iccidCommands: []string{"+CCID"},
			cnmiCaps:      "(0-3),(0-3),(0,2),(0,1),(0,1)",
			lacks:         []string{"+CEREG"},
			ccidFormat:    "%s",
			boot:          []string{"RDY", "+CFUN: 1", cpinToken, "Call Ready", "SMS Ready"},
		}, true
	}
	return profile{}, false
}

// maxParams is how many parameters the set form of a command takes, for
// the tooManyParams quirk.
var maxParams = map[string]int{
	"+CMEE": 1, "+CMGF": 1, "+CSDH": 1, "+CSCS": 1, "+CSMS": 1, "+CGSN": 1,
	"+CREG": 1, "+CGREG": 1, "+CEREG": 1,
	"+CSCA": 2, "+CFUN": 2, "+CPIN": 2, "+CMGR": 2, "+CMGL": 2, "+CMGD": 2, "+CMGS": 2, "+CNMA": 2,
	"+CPMS": 3, "+CSMP": 4, "+COPS": 4, "+CNMI": 5, "+CRSM": 7,
}

// textRes is a final result code the device spells its own way.
func textRes(s string) result { return result{kind: resText, text: s} }

// unknownReply answers a command the device does not know.
func (m *Modem) unknownReply() reply {
	if m.prof.unsupported != "" {
		return resReply(textRes(m.prof.unsupported))
	}
	return errReply()
}

// quirkReply answers c for the profile's quirks before the command runs:
// commands the device lacks and set commands with too many parameters.
func (m *Modem) quirkReply(c Command) (reply, bool) {
	if slices.Contains(m.prof.lacks, c.Name) {
		return m.unknownReply(), true
	}
	if m.prof.tooManyParams != "" && c.Op == OpSet {
		if n, ok := maxParams[c.Name]; ok && len(c.Args) > n {
			return resReply(textRes(m.prof.tooManyParams)), true
		}
	}
	return reply{}, false
}

// iccidSIMOrder returns the ICCID as EF_ICCID stores it: padded with F to
// whole octets, each pair of digits swapped (BCD, low nibble first).
func iccidSIMOrder(iccid string) string {
	return swapPairs(padF(iccid))
}

// padF pads an odd-length ICCID with F to whole octets.
func padF(iccid string) string {
	if len(iccid)%2 == 1 {
		return iccid + "F"
	}
	return iccid
}

func swapPairs(s string) string {
	b := []byte(s)
	for i := 0; i+1 < len(b); i += 2 {
		b[i], b[i+1] = b[i+1], b[i]
	}
	return string(b)
}

// cpinStateLocked is the SIM state as +CPIN shows it, and whether the SIM
// is ready.
func (m *Modem) cpinStateLocked() (string, bool) {
	if m.faults.SIMMissing {
		return "NOT INSERTED", false
	}
	switch m.sim.state {
	case simPIN:
		return "SIM PIN", false
	case simPUK:
		return "SIM PUK", false
	case simBlocked:
		return "NOT READY", false
	}
	return "READY", true
}

// bootLocked writes the profile's boot lines, each as its own URC.
func (m *Modem) bootLocked() {
	for _, l := range m.prof.boot {
		if l == cpinToken {
			s, ready := m.cpinStateLocked()
			m.urcLocked("+CPIN: " + s)
			if !ready {
				return
			}
			continue
		}
		m.urcLocked(l)
	}
}

// chatterLocked counts a command line and, every Config.ChatterEvery
// lines, writes the profile's next chatter line.
func (m *Modem) chatterLocked() {
	every := m.cfg.ChatterEvery
	if every <= 0 || len(m.prof.chatter) == 0 {
		return
	}
	m.chatN++
	if m.chatN%every != 0 {
		return
	}
	l := m.prof.chatter[(m.chatN/every-1)%len(m.prof.chatter)]
	m.urcLocked(strings.ReplaceAll(l, rssiToken, strconv.Itoa(m.rssiLocked())))
}

// rssiLocked is the +CSQ <rssi>.
func (m *Modem) rssiLocked() int {
	if m.faults.Signal != 0 {
		return m.faults.Signal
	}
	return 20
}
