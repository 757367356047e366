package sim

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/warthog618/sms/encoding/gsm7"
	"github.com/warthog618/sms/encoding/ucs2"
)

// The network's USSD services (TS 22.090), as an operator's would answer:
//
//	*100#  the balance (Config.Balance), and the session ends
//	*111#  a menu: "1" the balance, "2" the data left; the session stays
//	       open until a choice is made
//	*999#  no answer at all (the host's timeout)
//	other  "unknown service", the session ends
const (
	ussdBalance = "*100#"
	ussdMenu    = "*111#"
	ussdSilent  = "*999#"
)

// DefaultBalance is the answer to *100# when Config.Balance is empty.
const DefaultBalance = "Your balance is 12.50 EUR. Valid until 31.01.2027."

// cmdCUSD is AT+CUSD (TS 27.007 §7.15): <n> 0/1 presentation, 2 cancels the
// session; a <str> is sent to the network, whose answer comes as the
// unsolicited +CUSD: <m>,<str>,<dcs> after Config.USSDDelay.
func (m *Modem) cmdCUSD(c Command) reply {
	switch c.Op {
	case OpTest:
		return okReply("+CUSD: (0-2)")
	case OpRead:
		return okReply(fmt.Sprintf("+CUSD: %d", m.ussdN))
	case OpSet:
	default:
		return errReply()
	}
	n, err := strconv.Atoi(c.Arg(0))
	if err != nil || n < 0 || n > 2 || len(c.Args) > 3 {
		return errReply()
	}
	if n == 2 {
		m.ussdSession = ""
		return okReply()
	}
	m.ussdN = n
	if len(c.Args) < 2 {
		return okReply()
	}
	if r, bad := m.simErrLocked(false); bad {
		return resReply(r)
	}
	str, ok := m.decodeString(c.Arg(1))
	if m.prof.ussdPacked {
		// Huawei sticks take the request as packed septets in hex too, and
		// refuse it in plain text (gammu encodes it for them).
		str, ok = unpackUSSD(c.Arg(1))
	}
	if !ok {
		return errReply()
	}
	if !m.registeredLocked() {
		return resReply(cme(30)) // no network service
	}
	mode, text, silent := m.ussdAnswerLocked(str)
	if !silent {
		line := m.cusdLineLocked(mode, text)
		m.net.after(m.cfg.USSDDelay, func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.urcLocked(line)
		})
	}
	return okReply()
}

// ussdAnswerLocked is the network's answer to str: <m> and the text, or
// silent when it never answers.
func (m *Modem) ussdAnswerLocked(str string) (mode int, text string, silent bool) {
	balance := m.cfg.Balance
	if balance == "" {
		balance = DefaultBalance
	}
	session := m.ussdSession
	m.ussdSession = ""
	switch {
	case session == ussdMenu && str == "1":
		return 0, balance, false
	case session == ussdMenu && str == "2":
		return 0, "Data left: 1.2 GB until 31.01.2027.", false
	case session == ussdMenu:
		return 2, "Invalid choice.", false
	case str == ussdBalance:
		return 0, balance, false
	case str == ussdMenu:
		m.ussdSession = ussdMenu
		return 1, "1 Balance\n2 Data", false
	case str == ussdSilent:
		return 0, "", true
	}
	return 2, "Unknown service.", false
}

// cusdLineLocked formats the unsolicited answer as the device does: plain
// text in the character set of AT+CSCS, UCS-2 hex when that is "UCS2", or
// the packed septets in hex (Huawei), with <dcs> 15; a text the GSM 7-bit
// alphabet cannot carry comes from the network in UCS-2, <dcs> 72.
func (m *Modem) cusdLineLocked(mode int, text string) string {
	var str string
	if _, err := gsm7.Encode([]byte(text)); err != nil {
		str = strings.ToUpper(hex.EncodeToString(ucs2.Encode([]rune(text))))
		return fmt.Sprintf("+CUSD: %d,\"%s\",72", mode, str)
	}
	switch {
	case m.prof.ussdPacked:
		septets, _ := gsm7.Encode([]byte(text))
		str = strings.ToUpper(hex.EncodeToString(gsm7.Pack7BitUSSD(septets, 0)))
	case m.set.cscs == "UCS2":
		str = strings.ToUpper(hex.EncodeToString(ucs2.Encode([]rune(text))))
	default:
		str = text
	}
	return fmt.Sprintf("+CUSD: %d,\"%s\",15", mode, str) // a newline in the text stays one, as on devices
}

// unpackUSSD decodes a USSD string given as packed GSM 7-bit septets in hex.
func unpackUSSD(s string) (string, bool) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) == 0 {
		return "", false
	}
	t, err := gsm7.Decode(gsm7.Unpack7BitUSSD(b, 0))
	if err != nil {
		return "", false
	}
	return string(t), true
}
