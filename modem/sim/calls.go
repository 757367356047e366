package sim

import (
	"errors"
	"fmt"
	"time"
)

// Incoming calls. A call rings the modem (RING, and +CLIP with the caller's
// number when AT+CLIP=1 is set) every RingInterval until the host rejects
// it (AT+CHUP or ATH), answers it (ATA), or the caller gives up after
// MaxRings, when the modem prints NO CARRIER.

const (
	// RingInterval is the time between two RINGs of one call, as networks
	// ring (about 5 s; shorter here so that tests run quickly).
	RingInterval = time.Second
	// MaxRings is how often a call rings before the caller gives up.
	MaxRings = 5
)

// CallRecord is what became of one call to a modem.
type CallRecord struct {
	From     string
	At       time.Time
	Rings    int
	Rejected bool // the host hung up (AT+CHUP, ATH)
	Answered bool // the host answered (ATA)
}

// call is the call that rings now.
type call struct {
	rec *CallRecord
}

// ErrBusy is returned by Network.Call for a modem that has a call already.
var ErrBusy = errors.New("the modem has a call")

// Call makes the handset from call the modem whose number is to: it rings
// at once and then every RingInterval. It fails for an unknown number
// (ErrUnknownNumber) or while the modem already has a call (ErrBusy).
func (n *Network) Call(from, to string) error {
	n.mu.Lock()
	target := n.byNumberLocked(to)
	closed := n.closed
	n.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case target == nil:
		return fmt.Errorf("cannot call %s: %w", to, ErrUnknownNumber)
	case numberKey(from) == "":
		return fmt.Errorf("cannot call from %q: invalid number", from)
	}
	target.mu.Lock()
	defer target.mu.Unlock()
	if target.call != nil {
		return fmt.Errorf("cannot call %s: %w", to, ErrBusy)
	}
	rec := &CallRecord{From: from, At: time.Now()}
	target.calls = append(target.calls, rec)
	target.call = &call{rec: rec}
	target.ringLocked()
	return nil
}

// Calls returns what became of the calls to the modem, oldest first.
func (m *Modem) Calls() []CallRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]CallRecord, len(m.calls))
	for i, c := range m.calls {
		out[i] = *c
	}
	return out
}

// ringLocked rings once and arms the next ring.
func (m *Modem) ringLocked() {
	c := m.call
	if c.rec.Rings >= MaxRings {
		m.endCallLocked()
		m.urcLocked("NO CARRIER")
		return
	}
	c.rec.Rings++
	if m.clip {
		m.urcLocked("RING", fmt.Sprintf("+CLIP: %q,%d,,,,0", c.rec.From, numberType(c.rec.From)))
	} else {
		m.urcLocked("RING")
	}
	m.net.after(RingInterval, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.call == c {
			m.ringLocked()
		}
	})
}

// endCallLocked forgets the call that rings; its next ring finds it gone.
func (m *Modem) endCallLocked() {
	m.call = nil
}

// cmdHangup is AT+CHUP and ATH: the ringing call is rejected.
func (m *Modem) cmdHangup(c Command) reply {
	if c.Name == "+CHUP" && c.Op == OpTest {
		return okReply()
	}
	if m.call != nil {
		m.call.rec.Rejected = true
		m.endCallLocked()
	}
	return okReply()
}

// cmdAnswer is ATA: the call is answered (and, as nothing is said, ends).
func (m *Modem) cmdAnswer(c Command) reply {
	if m.call == nil {
		return resReply(result{kind: resText, text: "NO CARRIER"})
	}
	m.call.rec.Answered = true
	m.endCallLocked()
	return okReply()
}

// cmdCLIP is AT+CLIP: calling line identification presentation.
func (m *Modem) cmdCLIP(c Command) reply {
	switch c.Op {
	case OpTest:
		return okReply("+CLIP: (0,1)")
	case OpRead:
		n := 0
		if m.clip {
			n = 1
		}
		return okReply(fmt.Sprintf("+CLIP: %d,1", n))
	case OpSet:
		switch c.Arg(0) {
		case "0":
			m.clip = false
			return okReply()
		case "1":
			m.clip = true
			return okReply()
		}
	}
	return errReply()
}

// numberType is the type of address of a number: 145 international, 129
// otherwise.
func numberType(n string) int {
	if len(n) > 0 && n[0] == '+' {
		return 145
	}
	return 129
}
