package modem

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/warthog618/modem/at"
)

// Class tells a caller what to do with a failed send (docs/PROTOCOL.md,
// "Errors: what to do with them").
type Class int

// Error classes.
const (
	// ClassTransient: the network or the modem is busy or briefly failing.
	// Nothing went out; try again later or on another modem.
	ClassTransient Class = iota + 1
	// ClassPermanentRecipient: the number is unknown, unassigned or barred.
	// Retrying will not help, on any modem.
	ClassPermanentRecipient
	// ClassPermanentSIM: this SIM cannot send (barred, no subscription, no
	// SMSC). Nothing went out; another modem may succeed.
	ClassPermanentSIM
	// ClassPermanentMessage: the modem rejected the PDU itself (protocol
	// error, invalid PDU): a bug on our side that no retry fixes.
	ClassPermanentMessage
	// ClassAmbiguous: the message may have gone out (a timeout after the PDU
	// was written, a network timeout). Never resend it automatically.
	ClassAmbiguous
	// ClassModemUnhealthy: the modem is down, hung, unplugged or its SIM is
	// missing or locked. Nothing went out; another modem may succeed.
	ClassModemUnhealthy
)

// String returns the name of c.
func (c Class) String() string {
	switch c {
	case ClassTransient:
		return "transient"
	case ClassPermanentRecipient:
		return "permanent-recipient"
	case ClassPermanentSIM:
		return "permanent-sim"
	case ClassPermanentMessage:
		return "permanent-message"
	case ClassAmbiguous:
		return "ambiguous"
	case ClassModemUnhealthy:
		return "modem-unhealthy"
	}
	return "unknown"
}

// Retryable reports whether a send that failed with c may be tried again on
// another modem: nothing went out and the recipient is not at fault.
func (c Class) Retryable() bool {
	switch c {
	case ClassTransient, ClassPermanentSIM, ClassModemUnhealthy:
		return true
	}
	return false
}

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
	ErrNotReady = errors.New("modem not ready")
	// ErrDisabled: the modem was taken out of rotation.
	ErrDisabled = errors.New("modem disabled")
	// ErrClosed: the modem or pool was closed.
	ErrClosed = errors.New("modem closed")
	// ErrNotFound: no candidate port answered with the wanted identity.
	ErrNotFound = errors.New("modem not found")
	// ErrNoModem: the pool has no usable modem for this send.
	ErrNoModem = errors.New("no modem available")
	// ErrCapReached: every usable modem reached one of its per-SIM caps.
	ErrCapReached = errors.New("every usable modem reached its SMS cap")
	// ErrMalformed: the modem answered something we cannot parse.
	ErrMalformed = errors.New("malformed answer from modem")
)

// Error is a failed modem operation: what was done, its class and, for a
// +CMS or +CME ERROR, the numeric code. For a multipart send, Sent holds the
// message references of the parts that went out before the failure, in
// order, and Parts the number of parts of the message.
type Error struct {
	Op    string // e.g. "submit", "init", "AT+CPIN"
	Class Class
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

// ClassOf returns the class of the first *Error in err's chain. A context
// error counts as ClassTransient (nothing was attempted), anything else
// unknown as ClassModemUnhealthy; nil has class 0.
func ClassOf(err error) Class {
	var e *Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e.Class
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ClassTransient
	}
	return ClassModemUnhealthy
}

// SentParts returns the message references of the parts that went out before
// err, from the first *Error in its chain.
func SentParts(err error) []int {
	var e *Error
	if errors.As(err, &e) {
		return e.Sent
	}
	return nil
}

// ClassifyCMS returns the class of a +CMS ERROR code (TS 27.005 §3.2.5).
func ClassifyCMS(code int) Class {
	switch code {
	case 1, 21, 28, 30, 0xC3, 0xC4:
		return ClassPermanentRecipient
	case 8, 10, 50, 0xC1, 330:
		// 330: SMSC address unknown: this modem needs AT+CSCA; another may
		// send fine.
		return ClassPermanentSIM
	case 95, 96, 97, 98, 99, 111, 304:
		return ClassPermanentMessage
	case 310, 311, 312, 313, 315, 316, 317, 318:
		return ClassModemUnhealthy
	case 332:
		return ClassAmbiguous
	}
	// 17, 22, 38, 41, 42, 47, 0xC0, 0xC2, 0xD4, 300, 301, 302, 314, 331,
	// 500, 512+ and anything unlisted.
	return ClassTransient
}

// ClassifyCME returns the class of a +CME ERROR code (TS 27.007 §9.2) met
// while submitting.
func ClassifyCME(code int) Class {
	switch code {
	case 10, 11, 12, 13, 15, 16, 17, 18:
		return ClassModemUnhealthy
	case 31:
		return ClassAmbiguous
	}
	return ClassTransient
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
		e.CME, _ = strconv.Atoi(strings.TrimSpace(string(cme)))
		e.Class = ClassifyCME(e.CME)
		e.Err = fmt.Errorf("+CME ERROR: %s", strings.TrimSpace(string(cme)))
	case errors.Is(err, at.ErrDeadlineExceeded):
		e.Err = ErrTimeout
		e.Class = ClassModemUnhealthy
		if submit && prompted {
			e.Class = ClassAmbiguous
		}
	case errors.Is(err, at.ErrClosed):
		e.Err = ErrPortClosed
		e.Class = ClassModemUnhealthy
		if submit && prompted {
			e.Class = ClassAmbiguous
		}
	case errors.Is(err, at.ErrError):
		e.Err = errors.New("ERROR")
		e.Class = ClassTransient
	default:
		e.Class = ClassModemUnhealthy
		if submit && prompted {
			e.Class = ClassAmbiguous
		}
	}
	return e
}
