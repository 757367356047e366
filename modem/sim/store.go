package sim

import "slices"

// Message status values of AT+CMGL/AT+CMGR (27.005 §3.1 <stat>).
const (
	statRecUnread = 0
	statRecRead   = 1
	statStoUnsent = 2
	statStoSent   = 3
	statAll       = 4
)

var statText = []string{"REC UNREAD", "REC READ", "STO UNSENT", "STO SENT", "ALL"}

// statFromText maps a text-mode <stat> to its PDU-mode number, or -1.
func statFromText(s string) int {
	for i, t := range statText {
		if t == s {
			return i
		}
	}
	return -1
}

// storedMsg is one message in a modem's storage: an SMS-DELIVER in SM or ME,
// or an SMS-STATUS-REPORT in SR.
type storedMsg struct {
	stat   int
	smsc   string // the SMSC that handled it, for the PDU-mode prefix
	tpdu   []byte
	report bool // an SMS-STATUS-REPORT
	// smscRaw, if set, is the exact SMSC part of a PDU a test placed
	// (PutStored, DeliverPDU): PDU mode prints it instead of the field for
	// smsc, so that the PDU comes back byte for byte.
	smscRaw []byte
	// length, if fixedLength, is the <length> of the +CMGR and +CMGL
	// header instead of the TPDU's octet count (PutStoredLen).
	length      int
	fixedLength bool
}

// lengthField is the <length> of the PDU-mode header: TPDU octets, not
// counting the SMSC part (27.005 §3.1), unless fixed.
func (s *storedMsg) lengthField() int {
	if s.fixedLength {
		return s.length
	}
	return len(s.tpdu)
}

// pdu is the message as PDU mode prints it: SMSC part and TPDU.
func (s *storedMsg) pdu() []byte {
	return append(slices.Clip(smscField(s.smsc, s.smscRaw)), s.tpdu...)
}

// store is one message storage (27.005 <mem>): a fixed number of slots,
// indexed from 1 like on a SIM.
type store struct {
	name  string
	slots []*storedMsg
}

func newStore(name string, capacity int) *store {
	return &store{name: name, slots: make([]*storedMsg, capacity)}
}

// add puts m into the first free slot and returns its index, or 0 if the
// store is full.
func (s *store) add(m *storedMsg) int {
	for i, v := range s.slots {
		if v == nil {
			s.slots[i] = m
			return i + 1
		}
	}
	return 0
}

// get returns the message at index i, nil for an empty slot, and false if i
// is outside the store.
func (s *store) get(i int) (*storedMsg, bool) {
	if i < 1 || i > len(s.slots) {
		return nil, false
	}
	return s.slots[i-1], true
}

func (s *store) del(i int) bool {
	if i < 1 || i > len(s.slots) {
		return false
	}
	s.slots[i-1] = nil
	return true
}

func (s *store) used() int {
	n := 0
	for _, v := range s.slots {
		if v != nil {
			n++
		}
	}
	return n
}

func (s *store) total() int { return len(s.slots) }
