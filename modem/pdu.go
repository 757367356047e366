package modem

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"

	"github.com/simgate/simgate/modem/internal/charsets"
)

// srrOption sets TP-SRR on the SMS-SUBMIT first octet: the sms package has
// no option for it (defect 9).
type srrOption struct{}

func (srrOption) ApplyTPDUOption(t *tpdu.TPDU) error {
	t.FirstOctet |= tpdu.FoSRR
	return nil
}

// vpOption sets a relative validity period and TP-VPF.
type vpOption time.Duration

func (o vpOption) ApplyTPDUOption(t *tpdu.TPDU) error {
	var vp tpdu.ValidityPeriod
	vp.SetRelative(time.Duration(o))
	t.SetVP(vp)
	return nil
}

// newEncoder returns the one encoder a modem uses for all its messages, so
// that its concatenation reference counter advances from message to message
// (sms.Encode would start a new one at 1 each time: defect 3).
func newEncoder(validity time.Duration) *sms.Encoder {
	charsets.Warm()
	opts := []sms.EncoderOption{sms.AsSubmit, sms.WithTemplateOption(srrOption{})}
	if validity > 0 {
		opts = append(opts, sms.WithTemplateOption(vpOption(validity)))
	}
	return sms.NewEncoder(opts...)
}

// submitPDU is one part of a message, ready for AT+CMGS.
type submitPDU struct {
	hex  string // uppercase, with the empty SMSC prefix "00"
	tlen int    // TPDU octets, the AT+CMGS=<length>
}

// encode splits text into SMS-SUBMIT PDUs for to: GSM 7-bit when every
// character is in the default alphabet (with its extension table), UCS-2
// otherwise.
func encode(e *sms.Encoder, to, text string) ([]submitPDU, error) {
	if text == "" {
		return nil, fmt.Errorf("cannot send an empty message")
	}
	tps, err := e.Encode([]byte(text), sms.To(to))
	if err != nil {
		return nil, fmt.Errorf("cannot encode message: %w", err)
	}
	out := make([]submitPDU, 0, len(tps))
	for i := range tps {
		tps[i].MR = 0 // the modem sets TP-MR
		b, err := tps[i].MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("cannot encode message: %w", err)
		}
		// "00": no SMSC in the PDU, use the one from AT+CSCA. Uppercase:
		// some modems and smsd reject lowercase (defect 4).
		out = append(out, submitPDU{hex: "00" + strings.ToUpper(hex.EncodeToString(b)), tlen: len(b)})
	}
	return out, nil
}

// decoded is a PDU read from the modem, decoded.
type decoded struct {
	t *tpdu.TPDU
	// warning says what decodePDU had to overlook to decode it; "" when
	// nothing.
	warning string
	// truncated is true when the user data ended before its length said.
	truncated bool
}

// decodePDU decodes a PDU line read from the modem. tlen is the <length>
// the modem gave (TPDU octets, without the SMSC part), or -1 when unknown.
// Some modems leave out the SMSC prefix: when the line holds exactly tlen
// octets, it is the bare TPDU (defect 7's companion). Hex of either case is
// accepted.
//
// It decodes leniently where the bytes allow and says so in the warning:
// octets after a report's TP-ST or after an SMS's user data (SIMs pad their
// records to 176 octets with FF), and user data shorter than TP-UDL says
// (what is there is decoded, and truncated is set). Anything else is an
// error that says which field is wrong.
func decodePDU(line string, tlen int) (decoded, error) {
	raw, err := hex.DecodeString(strings.TrimSpace(line))
	if err != nil {
		return decoded{}, fmt.Errorf("cannot decode PDU hex: %w", err)
	}
	b := raw
	if tlen < 0 || len(raw) != tlen {
		p, err := pdumode.UnmarshalBinary(raw)
		if err != nil {
			return decoded{}, fmt.Errorf("cannot decode PDU: %w", err)
		}
		b = p.TPDU
	}
	// The zero Direction is MT: MTI 0 is SMS-DELIVER, MTI 2 SMS-STATUS-REPORT.
	var t tpdu.TPDU
	err = t.UnmarshalBinary(b)
	if err == nil {
		return decoded{t: &t}, nil
	}
	fixed, warning, truncated := repairTPDU(b)
	if fixed != nil {
		var t2 tpdu.TPDU
		if t2.UnmarshalBinary(fixed) == nil {
			return decoded{t: &t2, warning: warning, truncated: truncated}, nil
		}
	}
	return decoded{}, fmt.Errorf("cannot decode TPDU: %w", err)
}

// repairTPDU returns b cut or mended where a SIM or a modem is known to
// spoil it, with what was done, or nil. b is an MT TPDU: an SMS-DELIVER
// (TS 23.040 §9.2.2.1: first octet, TP-OA, TP-PID, TP-DCS, TP-SCTS, TP-UDL,
// TP-UD) or an SMS-STATUS-REPORT (§9.2.2.3: first octet, TP-MR, TP-RA,
// TP-SCTS, TP-DT, TP-ST, then optional parameters).
func repairTPDU(b []byte) (fixed []byte, warning string, truncated bool) {
	if len(b) < 2 {
		return nil, "", false
	}
	switch b[0] & 0x03 {
	case 0x00: // SMS-DELIVER
		udl := addrEnd(b, 1) + 1 + 1 + 7 // TP-PID, TP-DCS, TP-SCTS
		if udl <= 0 || udl >= len(b) {
			return nil, "", false
		}
		dcs := b[udl-8]
		n := udOctets(dcs, int(b[udl]))
		have := len(b) - udl - 1
		switch {
		case have > n:
			return b[:udl+1+n], fmt.Sprintf("%d octets after the user data ignored (padding)", have-n), false
		case have < n:
			fixed = bytes.Clone(b)
			fixed[udl] = byte(udFits(dcs, have))
			return fixed, fmt.Sprintf("user data truncated: TP-UDL says %d octets, %d present", n, have), true
		}
	case 0x02: // SMS-STATUS-REPORT
		st := addrEnd(b, 2) + 7 + 7 // TP-SCTS, TP-DT
		if st <= 0 || st >= len(b) {
			return nil, "", false
		}
		if len(b) > st+1 {
			return b[:st+1], fmt.Sprintf("%d octets after TP-ST ignored (padding)", len(b)-st-1), false
		}
	}
	return nil, "", false
}

// addrEnd returns the offset after the address field (TS 23.040 §9.1.2.5)
// at off in b, or -1 when b ends first.
func addrEnd(b []byte, off int) int {
	if off >= len(b) {
		return -1
	}
	end := off + 2 + (int(b[off])+1)/2 // length in digits, TOA, semi-octets
	if end > len(b) {
		return -1
	}
	return end
}

// udOctets is how many octets TP-UD takes for a TP-UDL of udl under dcs:
// septets for the GSM 7-bit alphabet, octets otherwise (TS 23.038 §4).
func udOctets(dcs byte, udl int) int {
	if sevenBit(dcs) {
		return (udl*7 + 7) / 8
	}
	return udl
}

// udFits is the largest TP-UDL whose user data fits in n octets.
func udFits(dcs byte, n int) int {
	if sevenBit(dcs) {
		return min(n*8/7, 255)
	}
	if a, err := tpdu.DCS(dcs).Alphabet(); err == nil && a == tpdu.AlphaUCS2 {
		return n &^ 1
	}
	return n
}

func sevenBit(dcs byte) bool {
	a, err := tpdu.DCS(dcs).Alphabet()
	return err == nil && a == tpdu.Alpha7Bit
}
