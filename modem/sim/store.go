package sim

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
