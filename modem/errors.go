package modem

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/warthog618/modem/at"

	"github.com/simgate/simgate"
)

// Named errors callers branch on. They come wrapped in an *Error.
var (
	// ErrPINRequired: the SIM wants a PIN and none is configured.
	ErrPINRequired = errors.New("SIM PIN required and no PIN configured")
	// ErrWrongPIN: the SIM rejected the configured PIN. The modem is not
	// retried: each try uses up one of the SIM's three attempts.
	ErrWrongPIN = errors.New("SIM rejected the configured PIN")
	// ErrPUKRequired: the SIM is blocked and wants its PUK.
	ErrPUKRequired = errors.New("SIM PUK required")
	// ErrSIMMissing: no SIM in the modem, or the SIM failed.
	ErrSIMMissing = errors.New("SIM not inserted or failed")
	// ErrTimeout: the modem did not answer in time.
	ErrTimeout = errors.New("modem did not answer in time")
	// ErrPortClosed: the serial port went away (unplugged) or was closed.
	ErrPortClosed = errors.New("serial port closed")
	// ErrPortBusy: another process or modem holds the serial port.
	ErrPortBusy = errors.New("serial port in use")
	// ErrNotReady: the modem is not connected or not usable right now.
	// Nothing was sent: it matches simgate.ErrNoSender.
	ErrNotReady error = noSender("modem not ready")
	// ErrDisabled: the modem was taken out of rotation. It matches
	// simgate.ErrNoSender.
	ErrDisabled error = noSender("modem disabled")
	// ErrClosed: the modem or pool was closed.
	ErrClosed = errors.New("modem closed")
	// ErrNotFound: no candidate port answered with the wanted identity.
	ErrNotFound = errors.New("modem not found")
	// ErrNotAnswering: a device is there but does not answer AT commands.
	ErrNotAnswering = errors.New("modem not answering")
	// ErrNoModem: the pool has no usable modem for this send. It matches
	// simgate.ErrNoSender: no modem was asked, so it is no attempt.
	ErrNoModem error = noSender("no modem available")
	// ErrCapReached: every usable modem reached one of its per-SIM caps. It
	// matches simgate.ErrNoSender.
	ErrCapReached error = noSender("every usable modem reached its SMS cap (modems[].per_minute, per_hour or per_day)")
	// ErrExpired: the send's NotAfter passed before its submit began.
	ErrExpired = errors.New("expired before a modem could begin the submit")
	// ErrMalformed: the modem answered something we cannot parse.
	ErrMalformed = errors.New("malformed answer from modem")
	// ErrUnsupported: the modem does not know the command. The modem
	// remembers it and does not send it again until Reset.
	ErrUnsupported = errors.New("command not supported by the modem")
)

// noSender is an error that says no modem could be asked to send: it is
// itself, and matches simgate.ErrNoSender (errors.Is), so that the queue does
// not count it as an attempt.
type noSender string

func (e noSender) Error() string { return string(e) }

// Is reports whether target is simgate.ErrNoSender.
func (e noSender) Is(target error) bool { return target == simgate.ErrNoSender }

// Error is a failed modem operation: what was done, its class and, for a
// +CMS or +CME ERROR, the numeric code. For a multipart send, Sent holds the
// message references of the parts that went out before the failure, in
// order, and Parts the number of parts of the message.
type Error struct {
	Op    string // e.g. "submit", "init", "AT+CPIN"
	Class simgate.SendClass
	CMS   int // +CMS ERROR code; 0 when none
	CME   int // +CME ERROR code; 0 when none
	Sent  []int
	Parts int
	Err   error
}

// Error implements the error interface.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("cannot ")
	b.WriteString(e.Op)
	if e.Parts > 1 {
		fmt.Fprintf(&b, " (part %d of %d)", len(e.Sent)+1, e.Parts)
	}
	fmt.Fprintf(&b, ": %s", e.Class)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// SendClass returns e's class; simgate.SendClassOf finds it in a chain.
func (e *Error) SendClass() simgate.SendClass { return e.Class }

// SentParts returns the message references of the parts that went out
// before the failure; simgate.SentParts finds it in a chain.
func (e *Error) SentParts() []int { return e.Sent }

// ClassifyCMS returns the class of a +CMS ERROR code (TS 27.005 §3.2.5).
func ClassifyCMS(code int) simgate.SendClass {
	switch code {
	case 1, 21, 28, 30, 0xC3, 0xC4:
		return simgate.ClassPermanentRecipient
	case 8, 10, 50, 0xC1, 330:
		// 330: SMSC address unknown: this modem needs AT+CSCA; another may
		// send fine.
		return simgate.ClassPermanentSIM
	case 95, 96, 97, 98, 99, 111, 304:
		return simgate.ClassPermanentMessage
	case 310, 311, 312, 313, 315, 316, 317, 318:
		return simgate.ClassModemUnhealthy
	case 332:
		return simgate.ClassAmbiguous
	}
	// 17, 22, 38, 41, 42, 47, 0xC0, 0xC2, 0xD4, 300, 301, 302, 314, 331,
	// 500, 512+ and anything unlisted.
	return simgate.ClassTransient
}

// ClassifyCME returns the class of a +CME ERROR code (TS 27.007 §9.2) met
// while submitting.
func ClassifyCME(code int) simgate.SendClass {
	switch code {
	case 10, 11, 12, 13, 15, 16, 17, 18:
		return simgate.ClassModemUnhealthy
	case 31:
		return simgate.ClassAmbiguous
	}
	return simgate.ClassTransient
}

// atError turns an error of the at package into an *Error for op. For a
// submit, prompted tells whether the PDU may have been written.
func atError(op string, err error, submit, prompted bool) *Error {
	e := &Error{Op: op, Err: err}
	var cms at.CMSError
	var cme at.CMEError
	switch {
	case errors.As(err, &cms):
		e.CMS, _ = strconv.Atoi(strings.TrimSpace(string(cms)))
		e.Class = ClassifyCMS(e.CMS)
		e.Err = fmt.Errorf("+CMS ERROR: %s", strings.TrimSpace(string(cms)))
	case errors.As(err, &cme):
		e.CME = cmeCode(string(cme))
		e.Class = ClassifyCME(e.CME)
		e.Err = fmt.Errorf("+CME ERROR: %s", strings.TrimSpace(string(cme)))
		if e.CME == 4 {
			e.Err = fmt.Errorf("%w (+CME ERROR: %s)", ErrUnsupported, strings.TrimSpace(string(cme)))
		}
	case errors.Is(err, at.ErrDeadlineExceeded):
		e.Err = ErrTimeout
		e.Class = simgate.ClassModemUnhealthy
		if submit && prompted {
			e.Class = simgate.ClassAmbiguous
		}
	case errors.Is(err, at.ErrClosed):
		e.Err = ErrPortClosed
		e.Class = simgate.ClassModemUnhealthy
		if submit && prompted {
			e.Class = simgate.ClassAmbiguous
		}
	case errors.Is(err, at.ErrError):
		e.Err = errors.New("ERROR")
		e.Class = simgate.ClassTransient
	default:
		e.Class = simgate.ClassModemUnhealthy
		if submit && prompted {
			e.Class = simgate.ClassAmbiguous
		}
	}
	return e
}

// cmeText are the verbose +CME ERROR texts of TS 27.007 §9.2.1, for modems
// that print the text although AT+CMEE=1 asked for numbers (some firmware
// ignores it, and others restore CMEE=2 from a saved profile).
var cmeText = map[string]int{
	"phone failure": 0, "no connection to phone": 1, "phone-adaptor link reserved": 2,
	"operation not allowed": 3, "operation not supported": 4, "ph-sim pin required": 5,
	"sim not inserted": 10, "sim pin required": 11, "sim puk required": 12, "sim failure": 13,
	"sim busy": 14, "sim wrong": 15, "incorrect password": 16, "sim pin2 required": 17,
	"sim puk2 required": 18, "memory full": 20, "invalid index": 21, "not found": 22,
	"memory failure": 23, "text string too long": 24, "invalid characters in text string": 25,
	"no network service": 30, "network timeout": 31, "network not allowed - emergency calls only": 32,
	"unknown": 100,
}

// cmeCode returns the number of a +CME ERROR value, numeric or verbose; 0
// for a text it does not know (0 is also "phone failure", which only its
// text or number gives).
func cmeCode(v string) int {
	v = strings.TrimSpace(v)
	if n, err := strconv.Atoi(v); err == nil {
		return n
	}
	return cmeText[strings.ToLower(strings.Trim(v, `"`))]
}
