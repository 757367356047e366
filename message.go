package simgate

import "time"

// MessageStatus is where a message or a part is in its life.
//
//	accepted -> queued -> sending -> sent -> delivered | failed
//	                 \-> expired | canceled | failed
//	scheduled --(its SendAt came)--> queued
//	          \-> expired | canceled
//	sending --(process died during the submit)--> unknown
//
// Only a message is ever scheduled; its parts are queued meanwhile.
type MessageStatus string

// Message statuses.
const (
	StatusAccepted MessageStatus = "accepted"
	// StatusScheduled marks a message that waits for its SendAt; it is
	// queued then.
	StatusScheduled MessageStatus = "scheduled"
	StatusQueued    MessageStatus = "queued"
	StatusSending   MessageStatus = "sending"
	StatusSent      MessageStatus = "sent"
	StatusDelivered MessageStatus = "delivered"
	StatusFailed    MessageStatus = "failed"
	StatusExpired   MessageStatus = "expired"
	StatusCanceled  MessageStatus = "canceled"
	// StatusUnknown marks a message whose submit was under way when the
	// process died: the modem may or may not have sent it.
	StatusUnknown MessageStatus = "unknown"
)

// Final reports whether no further transition is expected. A sent message is
// not final: its status report may still arrive. Once the report window has
// passed without one, the queue's sweep closes the message (it stays sent,
// with a reason saying so), but the status is the same, so Final still
// reports false for it.
func (s MessageStatus) Final() bool {
	switch s {
	case StatusDelivered, StatusFailed, StatusExpired, StatusCanceled, StatusUnknown:
		return true
	}
	return false
}

// Valid reports whether s is one of the defined statuses.
func (s MessageStatus) Valid() bool {
	switch s {
	case StatusAccepted, StatusScheduled, StatusQueued, StatusSending, StatusSent, StatusDelivered,
		StatusFailed, StatusExpired, StatusCanceled, StatusUnknown:
		return true
	}
	return false
}

// Message is one outbound SMS as the client asked for it. A long text is
// split into Parts, each submitted and reported on its own.
type Message struct {
	ID             string
	To             string // E.164
	Text           string
	Priority       Priority
	Status         MessageStatus
	Reason         string // why the last transition happened, e.g. "+CMS ERROR: 21"
	Attempts       int
	NextAttemptAt  time.Time // zero: as soon as a modem is free
	SendAt         time.Time // not before; zero: at once (see StatusScheduled)
	ExpiresAt      time.Time // zero: never
	ModemID        string    // modem that took the last attempt
	VerificationID string    // set for the SMS of a verification
	APIKeyID       string    // key that created it; scopes the idempotency key
	IdempotencyKey string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Parts          []Part
	Events         []MessageEvent
}

// CheckInsert checks m before a store inserts it as it is given
// (MessageTx.InsertMessage): it needs a recipient, a valid status and at
// least one part, each with a valid status. Its errors have CodeInvalid.
func (m *Message) CheckInsert() error {
	switch {
	case m.To == "":
		return Errorf(CodeInvalid, "message has no recipient")
	case !m.Status.Valid():
		return Errorf(CodeInvalid, "message has no valid status: %q", m.Status)
	case len(m.Parts) == 0:
		return Errorf(CodeInvalid, "message has no part")
	}
	for i, p := range m.Parts {
		if !p.Status.Valid() {
			return Errorf(CodeInvalid, "part %d of the message has no valid status: %q", i+1, p.Status)
		}
	}
	return nil
}

// Part is one SMS-SUBMIT of a message. Long messages have several, each with
// its own message reference (TP-MR) and status report.
type Part struct {
	MessageID    string
	Seq          int // 1-based
	Status       MessageStatus
	ModemID      string
	MR           int // TP-MR assigned by the modem; -1 before it was submitted
	SubmittedAt  time.Time
	ReportStatus int // TP-ST of the last status report; -1 without one
	DoneAt       time.Time
}

// MessageEvent records one status transition and why it happened.
type MessageEvent struct {
	MessageID string
	At        time.Time
	Status    MessageStatus
	Reason    string
}

// StatusReport is an SMS-STATUS-REPORT received from a modem (TS 23.040
// §9.2.2.3). It is matched to a part by modem identity, message reference,
// recipient and time; unmatched reports are kept too.
type StatusReport struct {
	ID            int64
	ModemID       string
	MR            int
	Recipient     string
	SCTS          time.Time // when the SMSC accepted the submit
	DischargeTime time.Time // when the SMSC delivered or gave up
	TPST          int       // TP-Status
	ReceivedAt    time.Time
	MessageID     string // empty when unmatched
	PartSeq       int
}

// ReportOutcome classifies a TP-Status value (TS 23.040 §9.2.3.15).
type ReportOutcome int

// Report outcomes.
const (
	ReportDelivered ReportOutcome = iota // 0x00-0x1F: transaction completed
	ReportPending                        // 0x20-0x3F: SMSC still trying, not final
	ReportFailed                         // 0x40-0x7F: permanent error, or the SMSC gave up
)

// ClassifyTPST returns the outcome of a TP-Status value.
func ClassifyTPST(st int) ReportOutcome {
	switch {
	case st >= 0x00 && st <= 0x1F:
		return ReportDelivered
	case st >= 0x20 && st <= 0x3F:
		return ReportPending
	default:
		return ReportFailed
	}
}

// InboundMessage is an SMS received by one of the modems, reassembled when it
// came in several parts.
type InboundMessage struct {
	ID         int64
	ModemID    string
	From       string    // the originating address; "" only when Status is InboundUndecodable
	Text       string    // the text of a InboundText message; "" for the other kinds
	SCTS       time.Time // the SMSC's timestamp
	ReceivedAt time.Time

	Kind   InboundKind
	Status InboundStatus
	// Parts is how many SMS the message came in, PartsTotal how many it
	// has: fewer when it is InboundIncomplete.
	Parts, PartsTotal int
	// Port is the destination application port of a port-addressed message
	// (TS 23.040 §9.2.3.24.4); 0 when none.
	Port int
	// Data is the user data of a message that is not text: the WAP push
	// PDU, or the 8-bit data.
	Data []byte
	// MMS is the decoded notification of an InboundMMSNotification.
	MMS *MMSNotification
	// Raw is the PDU of an InboundUndecodable message, kept as it was read.
	Raw *RawPDU
}

// CheckInsert completes and checks m before a store inserts it: a message
// without a kind is InboundText, one without a status InboundComplete, and
// it came in at least one part of at least as many. It needs a modem and,
// when undecodable, its raw PDU; the errors have CodeInvalid.
func (m *InboundMessage) CheckInsert() error {
	if m.Kind == "" {
		m.Kind = InboundText
	}
	if m.Status == "" {
		m.Status = InboundComplete
	}
	m.Parts, m.PartsTotal = max(m.Parts, 1), max(m.PartsTotal, m.Parts, 1)
	switch {
	case m.ModemID == "":
		return Errorf(CodeInvalid, "inbound message has no modem")
	case m.Status == InboundUndecodable && m.Raw == nil:
		return Errorf(CodeInvalid, "undecodable inbound message has no raw PDU")
	}
	return nil
}

// InboundKind is what an inbound SMS carries.
type InboundKind string

// Inbound kinds.
const (
	InboundText            InboundKind = "text"             // a text message (GSM 7-bit or UCS-2)
	InboundWAPPush         InboundKind = "wap_push"         // a WAP push to port 2948 or 2949 (WAP-230-WSP)
	InboundMMSNotification InboundKind = "mms_notification" // a WAP push holding an MMS m-notification-ind
	InboundData            InboundKind = "data"             // 8-bit data or another application port
)

// InboundStatus says whether an inbound SMS came whole and could be read.
type InboundStatus string

// Inbound statuses.
const (
	InboundComplete InboundStatus = "complete"
	// InboundIncomplete is a long SMS some of whose parts never came: what
	// came is delivered after the reassembly timeout.
	InboundIncomplete InboundStatus = "incomplete"
	// InboundUndecodable is a PDU that could not be decoded at all; it is
	// kept raw (Raw) so that nothing is lost, and taken off the SIM.
	InboundUndecodable InboundStatus = "undecodable"
)

// MMSNotification is what an MMS m-notification-ind (OMA-MMS-ENC) tells: who
// sent the MMS and where the phone would fetch it.
type MMSNotification struct {
	From            string
	Subject         string
	ContentLocation string
	TransactionID   string
	Size            int64
}

// RawPDU is a PDU the driver could not decode, with where it was read.
type RawPDU struct {
	Hex    string // as the modem printed it
	Length int    // the <length> the modem gave; -1 when none
	Store  string // the modem's message store ("SM", "ME", "SR"); "" for a routed one
	Index  int    // its index in Store
	Error  string // why it could not be decoded
}

// InboundCall is a voice call to one of the modems. simgate does not take
// calls: it rejects them (or lets them ring, as configured) and records who
// called.
type InboundCall struct {
	ID      int64
	ModemID string
	From    string // the caller's number as the modem printed it; "" when withheld or unknown
	// FromE164 is From in E.164 (AddressE164), "" when it cannot be read as
	// one: what missed-call verifications are matched on. It is not
	// stored; From is.
	FromE164 string
	At       time.Time
	Rejected bool // simgate hung up (AT+CHUP); false: it let the call ring
}
