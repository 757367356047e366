package simgate

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// SendRequest is one message for the modem pool to send.
type SendRequest struct {
	To   string // E.164
	Text string
	// StickyKey, when set (e.g. a verification id), makes a resend with the
	// same key leave from the same SIM when that SIM can take it.
	StickyKey string
	// NotAfter, when set, is when the message stops being worth sending (it
	// or its verification expires). No submit of it begins later, even when
	// it waited behind another submit of the modem; such a send fails with
	// ClassExpired and nothing goes out. A submit begun in time is finished.
	NotAfter time.Time
}

// Receipt says which modem sent a message and the message reference (TP-MR)
// of each part, for matching status reports. With a failed send it names
// the modem whose failure ended the send (ambiguous, after some parts, or for
// a reason that is not the modem's), with the parts that went out; it is
// empty when every modem tried failed for its own reasons, or none could be.
type Receipt struct {
	ModemID  string
	Identity ModemIdentity
	MRs      []int
	SentAt   time.Time
}

// LateSubmit is the answer to a submit that came after the host gave up on
// it: the send was ClassAmbiguous (a timeout after the PDU was written), and
// the modem's late "+CMGS: <mr>" shows that the part did go out. The part is
// the one the failed send's error counted as not sent: its index is the
// number of message references that send returned (simgate.SentParts).
type LateSubmit struct {
	ModemID string
	To      string // the recipient of the submit, E.164
	Part    int    // index of the part, from 0
	MR      int    // the message reference the modem gave it
	At      time.Time
}

// SendClass tells the dispatcher what to do with a failed send
// (docs/PROTOCOL.md, "Send error classes").
type SendClass int

// Send error classes.
const (
	// ClassTransient: the network or the modem is busy or briefly failing.
	// Nothing went out; try again later or on another modem.
	ClassTransient SendClass = iota + 1
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
	// ClassExpired: the request's NotAfter passed before a modem began the
	// submit. Nothing went out, and it must not.
	ClassExpired
)

// String returns the name of c.
func (c SendClass) String() string {
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
	case ClassExpired:
		return "expired"
	}
	return "unknown"
}

// Retryable reports whether a send that failed with c may be tried again,
// later or on another modem: nothing went out and the recipient is not at
// fault.
func (c SendClass) Retryable() bool {
	switch c {
	case ClassTransient, ClassPermanentSIM, ClassModemUnhealthy:
		return true
	}
	return false
}

// ErrNoSender is matched (errors.Is) by a Sender's error when no modem could
// even be asked to send: none is usable (all down, disabled or draining), or
// every usable one reached its SMS cap. Nothing went out and no modem failed,
// so the dispatcher does not count it as an attempt: the message waits for a
// modem until it expires. The modem pool's ErrNoModem and ErrCapReached,
// and a modem's ErrNotReady and ErrDisabled, match it.
var ErrNoSender = errors.New("no modem could be asked to send")

// SendClassOf returns the class of a send error: that of the first error in
// err's chain with a SendClass method; ClassTransient for a context error
// (nothing was attempted); ClassModemUnhealthy for anything else; 0 for nil.
func SendClassOf(err error) SendClass {
	var c interface{ SendClass() SendClass }
	switch {
	case err == nil:
		return 0
	case errors.As(err, &c):
		return c.SendClass()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ClassTransient
	}
	return ClassModemUnhealthy
}

// SentParts returns the message references of the parts of a long message
// that went out before a send failed, from the first error in err's chain
// with a SentParts method.
func SentParts(err error) []int {
	var s interface{ SentParts() []int }
	if errors.As(err, &s) {
		return s.SentParts()
	}
	return nil
}

// Backoff is the wait before the next try after the attempt-th failed one
// (1 for the first): first, doubled for each attempt after the first, up to
// max. The queue's retries and the webhook deliveries use it.
func Backoff(first, max time.Duration, attempt int) time.Duration {
	w := first
	for i := 1; i < attempt && w < max; i++ {
		w *= 2
	}
	return min(w, max)
}

// Jitter returns d moved at random by up to a fifth either way, so that
// things that failed together do not retry in step.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - d/5 + rand.N(2*d/5+1)
}
