package modem

import (
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

// countParts returns how many SMS text takes, without a modem.
func countParts(text string) int {
	charsets.Warm()
	tps, err := sms.Encode([]byte(text), sms.To("+1"))
	if err != nil || len(tps) == 0 {
		return 1
	}
	return len(tps)
}

// decodePDU decodes a PDU line read from the modem. tlen is the <length>
// the modem gave (TPDU octets, without the SMSC part), or -1 when unknown.
// Some modems leave out the SMSC prefix: when the line holds exactly tlen
// octets, it is the bare TPDU (defect 7's companion). Hex of either case is
// accepted.
func decodePDU(line string, tlen int) (*tpdu.TPDU, error) {
	line = strings.TrimSpace(line)
	var raw []byte
	if tlen >= 0 && len(line) == 2*tlen {
		b, err := hex.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("cannot decode PDU hex: %w", err)
		}
		raw = b
	} else {
		p, err := pdumode.UnmarshalHexString(line)
		if err != nil {
			return nil, fmt.Errorf("cannot decode PDU: %w", err)
		}
		raw = p.TPDU
	}
	// The zero Direction is MT: MTI 0 is SMS-DELIVER, MTI 2 SMS-STATUS-REPORT.
	var t tpdu.TPDU
	if err := t.UnmarshalBinary(raw); err != nil {
		return nil, fmt.Errorf("cannot decode TPDU: %w", err)
	}
	return &t, nil
}
