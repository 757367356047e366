package sim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
	"github.com/warthog618/sms/encoding/ucs2"

	"github.com/simgate/simgate/modem/internal/charsets"
)

// submitPDU is an SMS-SUBMIT as the host gave it to AT+CMGS, decoded.
type submitPDU struct {
	smsc string    // SMSC from the PDU prefix; "" when the PDU starts with 00
	tpdu tpdu.TPDU // decoded, Direction MO
	raw  []byte    // the TPDU octets, without the SMSC prefix
}

// maxTPDU is the longest SMS-SUBMIT TPDU: first octet, MR, a 12-octet DA,
// PID, DCS, a 7-octet VP, UDL and 140 octets of user data.
const maxTPDU = 164

// decodeSubmitPDU decodes the hex PDU of AT+CMGS=<length> in PDU mode and
// checks it the way a modem does: hex in either case, the optional SMSC
// prefix, <length> equal to the TPDU octet count (27.005 §3.5.1: the SMSC
// part is not counted), and a well-formed SMS-SUBMIT with a destination. It
// is a pure function and never panics.
func decodeSubmitPDU(hexPDU string, length int) (s *submitPDU, err error) {
	defer func() {
		// The TPDU decoder is third-party code fed with host input: a panic
		// in it must become a +CMS ERROR: 304, not a crashed modem.
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("cannot decode PDU: %v", r)
		}
	}()
	charsets.Warm()
	hexPDU = strings.TrimSpace(hexPDU)
	b, err := hex.DecodeString(hexPDU)
	if err != nil {
		return nil, fmt.Errorf("cannot decode PDU hex: %w", err)
	}
	p, err := pdumode.UnmarshalBinary(b)
	if err != nil {
		return nil, fmt.Errorf("cannot decode SMSC address: %w", err)
	}
	if len(p.TPDU) != length {
		return nil, fmt.Errorf("length %d does not match the %d TPDU octets", length, len(p.TPDU))
	}
	if len(p.TPDU) > maxTPDU {
		return nil, fmt.Errorf("TPDU of %d octets is too long", len(p.TPDU))
	}
	t := tpdu.TPDU{Direction: tpdu.MO}
	if err := t.UnmarshalBinary(p.TPDU); err != nil {
		return nil, fmt.Errorf("cannot decode TPDU: %w", err)
	}
	if t.SmsType() != tpdu.SmsSubmit {
		return nil, fmt.Errorf("not an SMS-SUBMIT but %v", t.SmsType())
	}
	if t.DA.Addr == "" {
		return nil, errors.New("no destination address")
	}
	if _, err := t.DCS.Alphabet(); err != nil {
		return nil, fmt.Errorf("unsupported DCS %#02x: %w", byte(t.DCS), err)
	}
	s = &submitPDU{tpdu: t, raw: append([]byte(nil), p.TPDU...)}
	if p.SMSC.Addr != "" {
		s.smsc = p.SMSC.Number()
	}
	return s, nil
}

// partText decodes the text of a single TPDU. Parts of a UCS-2 message may
// end in half a surrogate pair; such characters are dropped rather than
// failing.
func partText(t *tpdu.TPDU) string {
	b, err := sms.Decode([]*tpdu.TPDU{t})
	if err != nil {
		a, _ := t.Alphabet()
		if a == tpdu.AlphaUCS2 {
			ud := t.UD
			if len(ud)%2 == 1 {
				ud = ud[:len(ud)-1]
			}
			r, _ := ucs2.Decode(ud)
			var out []rune
			for _, c := range r {
				if utf8.ValidRune(c) {
					out = append(out, c)
				}
			}
			return string(out)
		}
		return ""
	}
	return validText(b)
}

// validText returns b as a string if it is UTF-8, and otherwise (8-bit data
// messages) with each byte taken as a Latin-1 character, so that texts are
// always valid UTF-8 for logs and JSON.
func validText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// smscPrefix returns the PDU-mode SMSC address field for number: "00" (one
// zero octet) when number is empty.
func smscPrefix(number string) []byte {
	if number == "" {
		return []byte{0}
	}
	a := pdumode.SMSCAddress{Address: tpdu.NewAddress(tpdu.FromNumber(number))}
	b, err := a.MarshalBinary()
	if err != nil {
		return []byte{0}
	}
	return b
}

// smscField returns the SMSC part of a PDU: exact, the bytes a test gave,
// if set, and otherwise the field for number.
func smscField(number string, exact []byte) []byte {
	if exact != nil {
		return exact
	}
	return smscPrefix(number)
}

// pduHex formats SMSC part (nil for none) and TPDU as the hex line of +CMT,
// +CDS, +CMGR and +CMGL: upper case as TS 27.005 examples and smsd expect,
// lower case for the LowercaseHex fault.
func pduHex(smsc, t []byte, lower bool) string {
	b := append(slices.Clip(smsc), t...)
	s := hex.EncodeToString(b)
	if !lower {
		s = strings.ToUpper(s)
	}
	return s
}

// addressOf returns the tpdu address for a number: international (TOA 0x91)
// with a leading '+', unknown (0x81) without.
func addressOf(number string) tpdu.Address {
	a := tpdu.NewAddress(tpdu.FromNumber(number))
	if !strings.HasPrefix(number, "+") {
		a.TOA = 0x81
	}
	return a
}

// statusReportTPDU builds the SMS-STATUS-REPORT (TS 23.040 §9.2.2.3) for the
// submit with reference mr to ra.
func statusReportTPDU(mr byte, ra tpdu.Address, scts, dt time.Time, st byte) ([]byte, error) {
	t := tpdu.TPDU{
		Direction: tpdu.MT,
		// MTI 10 (status report) and TP-MMS: no more messages waiting.
		FirstOctet: tpdu.FirstOctet(0x02 | tpdu.FoMMS),
		MR:         mr,
		RA:         ra,
		SCTS:       tpdu.Timestamp{Time: scts},
		DT:         tpdu.Timestamp{Time: dt},
		ST:         st,
	}
	b, err := t.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("cannot encode status report: %w", err)
	}
	return b, nil
}

// deliverFromSubmit turns a submitted part into the SMS-DELIVER that the
// destination receives, for modem-to-modem messages.
func deliverFromSubmit(s *tpdu.TPDU, from string, scts time.Time) ([]byte, error) {
	fo := tpdu.FoMMS // no more messages
	if s.FirstOctet.UDHI() {
		fo |= tpdu.FoUDHI
	}
	t := tpdu.TPDU{
		Direction:  tpdu.MT,
		FirstOctet: tpdu.FirstOctet(fo),
		OA:         addressOf(from),
		PID:        s.PID,
		DCS:        s.DCS,
		SCTS:       tpdu.Timestamp{Time: scts},
		UDH:        s.UDH,
		UD:         s.UD,
	}
	b, err := t.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("cannot encode deliver: %w", err)
	}
	return b, nil
}

// decodeMT decodes a stored or routed MT TPDU (SMS-DELIVER or
// SMS-STATUS-REPORT).
func decodeMT(b []byte) (*tpdu.TPDU, error) {
	t := tpdu.TPDU{Direction: tpdu.MT}
	if err := t.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return &t, nil
}

// scts formats a timestamp the way text mode shows it: "yy/MM/dd,hh:mm:ss±zz"
// with the zone in quarter hours (27.005 §3.3).
func sctsText(t time.Time) string {
	_, off := t.Zone()
	q := off / (15 * 60)
	sign := "+"
	if q < 0 {
		sign = "-"
		q = -q
	}
	return fmt.Sprintf("%s%s%02d", t.Format("06/01/02,15:04:05"), sign, q)
}

// relativeVP converts a relative TP-VP (TS 23.040 §9.2.3.12.1) to a duration.
func relativeVP(vp int) time.Duration {
	t := vp & 0xFF
	switch {
	case t < 144:
		return 5 * time.Minute * time.Duration(t+1)
	case t < 168:
		return 30 * time.Minute * time.Duration(t-119)
	case t < 197:
		return 24 * time.Hour * time.Duration(t-166)
	default:
		return 7 * 24 * time.Hour * time.Duration(t-192)
	}
}
