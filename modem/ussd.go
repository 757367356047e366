package modem

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/warthog618/sms/encoding/gsm7"
	"github.com/warthog618/sms/encoding/ucs2"

	"github.com/simgate/simgate"
)

// USSD errors callers branch on.
var (
	// ErrUSSDSession: the session named in a reply or cancel is not the one
	// the modem has open (it ended, or another request replaced it).
	ErrUSSDSession = errors.New("no such USSD session open on the modem")
	// ErrUSSDInvalid: the code or reply cannot be sent as USSD.
	ErrUSSDInvalid = errors.New("invalid USSD string")
)

// ussdJob is one USSD request for the modem's goroutine: a code to dial,
// or a reply to (or the cancel of) the open session.
type ussdJob struct {
	code    string // the code, or the reply when session is set
	session string
	cancel  bool
	result  simgate.USSDResult
}

// USSD sends code (e.g. "*100#") with AT+CUSD and waits, up to
// Options.USSDTimeout, for the network's answer. It takes its turn on the
// modem's goroutine between submits, so no submit is lost; one waits at most
// the USSD's own time. An answer that asks for more opens a session
// (USSDResult.Session) for USSDReply or USSDCancel; a new USSD request
// cancels a session still open.
func (m *Modem) USSD(ctx context.Context, code string) (simgate.USSDResult, error) {
	return m.ussd(ctx, &ussdJob{code: code})
}

// USSDReply answers the open session with reply (e.g. "1" from a menu).
func (m *Modem) USSDReply(ctx context.Context, session, reply string) (simgate.USSDResult, error) {
	return m.ussd(ctx, &ussdJob{code: reply, session: session})
}

// USSDCancel ends the open session (AT+CUSD=2).
func (m *Modem) USSDCancel(ctx context.Context, session string) error {
	_, err := m.ussd(ctx, &ussdJob{session: session, cancel: true})
	return err
}

func (m *Modem) ussd(ctx context.Context, job *ussdJob) (simgate.USSDResult, error) {
	if !job.cancel {
		if err := checkUSSD(job.code); err != nil {
			return simgate.USSDResult{}, err
		}
	}
	m.mu.Lock()
	up := m.up
	m.mu.Unlock()
	if up == nil {
		return simgate.USSDResult{}, &Error{Op: "USSD", Class: simgate.ClassModemUnhealthy, Err: ErrNotReady}
	}
	if err := m.controlJob(ctx, ctlReq{kind: ctlUSSD, ussd: job}, up); err != nil {
		return simgate.USSDResult{}, err
	}
	return job.result, nil
}

// checkUSSD refuses what AT+CUSD cannot carry: an empty string, one longer
// than a USSD string may be (182 characters, TS 23.038 §6.1.2.3), and
// characters that would end or break the quoted AT argument.
func checkUSSD(s string) error {
	if s == "" || len(s) > 182 {
		return fmt.Errorf("%w: %d characters, want 1 to 182", ErrUSSDInvalid, len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7E || c == '"' || c == '\\' {
			return fmt.Errorf("%w: character %q at %d", ErrUSSDInvalid, c, i)
		}
	}
	return nil
}

// runUSSD runs job on the modem's goroutine. Only errors that end the
// session are returned as such; the others are the job's result.
func (m *Modem) runUSSD(ctx context.Context, c *conn, job *ussdJob) error {
	if job.session != "" && job.session != m.ussdSession {
		return fmt.Errorf("%w: %q", ErrUSSDSession, job.session)
	}
	if job.cancel || job.session == "" && m.ussdSession != "" {
		// A cancel, or a new request while a session is open: end it.
		m.ussdSession = ""
		if _, err := c.cmd(ctx, "+CUSD=2"); err != nil && (job.cancel || sessionEnding(err)) {
			return err
		}
		if job.cancel {
			return nil
		}
	}
	m.ussdSession = ""
	c.f.takeCUSD() // an answer nobody waits for any more
	if err := m.sendUSSD(ctx, c, job.code); err != nil {
		return err
	}
	t := time.NewTimer(m.opts.USSDTimeout)
	defer t.Stop()
	for {
		if lines := c.f.takeCUSD(); len(lines) > 0 {
			a, err := parseCUSD(lines[len(lines)-1])
			if err != nil {
				return err
			}
			r := a.result()
			if r.Status == simgate.USSDFurtherAction {
				r.Session = newSessionID()
				m.ussdSession = r.Session
			}
			job.result = r
			return nil
		}
		select {
		case <-c.f.cusdSeen:
		case <-t.C:
			// The network did not answer: end the session, so that a late
			// answer does not stay open on the modem.
			if _, err := c.cmd(ctx, "+CUSD=2"); err != nil && sessionEnding(err) {
				return err
			}
			job.result = simgate.USSDResult{Status: simgate.USSDTimeout}
			return nil
		case <-c.closed():
			return &Error{Op: "USSD", Class: simgate.ClassModemUnhealthy, Err: ErrPortClosed}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sendUSSD sends str with AT+CUSD. Huawei sticks take it only as packed
// GSM 7-bit septets in hex (as gammu sends it to them), other modems only as
// text: the form the modem refused is tried the other way once, and the one
// it took is used from then on.
func (m *Modem) sendUSSD(ctx context.Context, c *conn, str string) error {
	send := func(packed bool) error {
		s := str
		if packed {
			septets, err := gsm7.Encode([]byte(str))
			if err != nil {
				return fmt.Errorf("%w: %v", ErrUSSDInvalid, err)
			}
			s = strings.ToUpper(hex.EncodeToString(gsm7.Pack7BitUSSD(septets, 0)))
		}
		_, err := c.cmd(ctx, `+CUSD=1,"`+s+`",15`)
		return err
	}
	err := send(m.ussdPacked)
	if err == nil || sessionEnding(err) || errors.Is(err, ErrUnsupported) {
		return err
	}
	if send(!m.ussdPacked) == nil {
		m.ussdPacked = !m.ussdPacked
		return nil
	}
	return err
}

func newSessionID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "ussd_" + hex.EncodeToString(b)
}

// cusdAnswer is a +CUSD line, read.
type cusdAnswer struct {
	mode int    // <m>
	dcs  int    // <dcs>; 15 when not given
	text string // <str>, decoded
}

// parseCUSD reads "+CUSD: <m>[,<str>[,<dcs>]]" (TS 27.007 §7.15). <str> is
// quoted by most modems, bare hex by some Huawei firmware; a quoted one may
// span lines (Sony Ericsson), which the filter joined with "\n".
func parseCUSD(line string) (cusdAnswer, error) {
	v := strings.TrimSpace(strings.TrimPrefix(line, "+CUSD:"))
	mPart, rest, _ := strings.Cut(v, ",")
	mode, err := strconv.Atoi(strings.TrimSpace(mPart))
	if err != nil {
		return cusdAnswer{}, fmt.Errorf("%w: +CUSD status %q in %q", ErrMalformed, mPart, line)
	}
	a := cusdAnswer{mode: mode, dcs: 15}
	str := ""
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, `"`) {
		end := strings.LastIndexByte(rest, '"')
		if end <= 0 {
			end = len(rest)
		}
		str, rest = rest[1:end], rest[min(end+1, len(rest)):]
		rest = strings.TrimPrefix(strings.TrimSpace(rest), ",")
	} else {
		str, rest, _ = strings.Cut(rest, ",")
		str = strings.TrimSpace(str)
	}
	if d := strings.TrimSpace(rest); d != "" {
		if a.dcs, err = strconv.Atoi(d); err != nil {
			return cusdAnswer{}, fmt.Errorf("%w: +CUSD data coding scheme %q in %q", ErrMalformed, d, line)
		}
	}
	a.text = decodeUSSD(str, a.dcs)
	return a, nil
}

// result is the answer as the API gives it.
func (a cusdAnswer) result() simgate.USSDResult {
	r := simgate.USSDResult{Text: a.text}
	switch a.mode {
	case 0:
		r.Status = simgate.USSDDone
	case 1:
		r.Status = simgate.USSDFurtherAction
	case 5:
		r.Status = simgate.USSDTimeout
	default: // 2 terminated by the network, 3 another client, 4 not supported
		r.Status = simgate.USSDTerminated
	}
	return r
}

// decodeUSSD decodes a +CUSD <str> by its data coding scheme (TS 23.038 §5,
// the cell broadcast scheme USSD uses). For the GSM 7-bit alphabet the
// modem should give text in its character set (AT+CSCS), but modems differ:
// Huawei gives the packed septets in hex, and a modem whose AT+CSCS is UCS2
// gives UCS-2 in hex, both with <dcs> 15. So a string that is all hex is
// read as UCS-2 when it has the shape of it (mostly high octets 00 to 07:
// Latin, Greek, Cyrillic, Arabic, Hebrew), else as packed septets when they
// decode to text, else as it is. For UCS-2 and 8-bit schemes the string is
// hex (§7.15); one that is not is kept as it is.
func decodeUSSD(s string, dcs int) string {
	b, err := hex.DecodeString(s)
	isHex := err == nil && len(b) > 0
	switch ussdAlphabet(dcs) {
	case alphaUCS2:
		if isHex {
			if dcs&0xF0 == 0x10 && len(b) >= 2 {
				b = b[2:] // "preceded by language" (group 0001): two octets of language
			}
			if t, ok := ucs2Text(b); ok {
				return t
			}
		}
	case alpha8Bit:
		if isHex {
			return string(b)
		}
	default:
		if isHex {
			if len(b)%2 == 0 && ucs2Shaped(b) {
				if t, ok := ucs2Text(b); ok {
					return t
				}
			}
			if t, ok := packedText(b); ok {
				return t
			}
		}
	}
	return s
}

type ussdAlpha int

const (
	alphaGSM7 ussdAlpha = iota
	alpha8Bit
	alphaUCS2
)

// ussdAlphabet reads the alphabet of a cell broadcast data coding scheme
// (TS 23.038 §5): group 0000 and 0010/0011 are GSM 7-bit, 0001 is GSM 7-bit
// or (0x11) UCS-2 preceded by language, 01xx is general data coding (bits
// 3-2: 00 7-bit, 01 8-bit, 10 UCS-2), 1111 is 7-bit or 8-bit by bit 2.
func ussdAlphabet(dcs int) ussdAlpha {
	switch {
	case dcs == 0x11:
		return alphaUCS2
	case dcs&0xC0 == 0x40:
		switch dcs & 0x0C {
		case 0x04:
			return alpha8Bit
		case 0x08:
			return alphaUCS2
		}
	case dcs&0xF0 == 0xF0 && dcs&0x04 != 0:
		return alpha8Bit
	}
	return alphaGSM7
}

// ucs2Shaped reports whether most high octets of b, read as UCS-2, are 00
// to 07: the scripts a UCS-2 USSD answer with a GSM 7-bit scheme is in.
func ucs2Shaped(b []byte) bool {
	low := 0
	for i := 0; i < len(b); i += 2 {
		if b[i] <= 0x07 {
			low++
		}
	}
	return 2*low >= len(b)/2
}

// ucs2Text decodes UCS-2 up to a NUL (padding) and reports whether it is
// text.
func ucs2Text(b []byte) (string, bool) {
	for i := 0; i+1 < len(b); i += 2 {
		if b[i] == 0 && b[i+1] == 0 {
			b = b[:i]
			break
		}
	}
	rs, err := ucs2.Decode(b[:len(b)&^1])
	if err != nil || len(rs) == 0 {
		return "", false
	}
	t := string(rs)
	return t, printable(t)
}

// packedText decodes GSM 7-bit septets packed as in USSD (TS 23.038
// §6.1.2.3) and reports whether they are text.
func packedText(b []byte) (string, bool) {
	t, err := gsm7.Decode(gsm7.Unpack7BitUSSD(b, 0))
	if err != nil || len(t) == 0 {
		return "", false
	}
	return string(t), printable(string(t))
}

// printable reports whether s is text: no control characters but line
// ends, and no replacement characters.
func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\r' || r == 0x7F || r == 0xFFFD {
			return false
		}
	}
	return true
}

// USSD runs a USSD request on the modem named name: the code to dial, or,
// with session set, the reply to (or, with cancel, the end of) the session
// an earlier answer opened. Errors carry simgate error codes: CodeNotFound
// for an unknown modem, CodeInvalid for a code USSD cannot carry, CodeConflict
// for a session that is not open, CodeUnavailable for a modem that is not
// connected or did not answer.
func (p *Pool) USSD(ctx context.Context, name, code, session string, cancel bool) (simgate.USSDResult, error) {
	mb, err := p.member(name)
	if err != nil {
		return simgate.USSDResult{}, simgate.Errorf(simgate.CodeNotFound, "modem %q not found", name)
	}
	var r simgate.USSDResult
	switch {
	case cancel:
		err = mb.m.USSDCancel(ctx, session)
		r.Status = simgate.USSDTerminated
	case session != "":
		r, err = mb.m.USSDReply(ctx, session, code)
	default:
		r, err = mb.m.USSD(ctx, code)
	}
	switch {
	case err == nil:
		return r, nil
	case errors.Is(err, ErrUSSDInvalid):
		return r, simgate.Errorf(simgate.CodeInvalid, "%v", err)
	case errors.Is(err, ErrUSSDSession):
		return r, simgate.Errorf(simgate.CodeConflict, "%v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return r, err
	}
	return r, simgate.Errorf(simgate.CodeUnavailable, "modem %s: %v", name, err)
}
