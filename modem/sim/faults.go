package sim

import (
	"maps"
	"time"
)

// ReportOutcome is what the simulated SMSC reports for a submitted message
// that asked for a status report.
type ReportOutcome int

// Report outcomes.
const (
	// ReportDelivered sends one report with TP-ST 0x00 (received by the SME).
	ReportDelivered ReportOutcome = iota
	// ReportTempThenDelivered sends a report with a temporary TP-ST
	// (0x20-0x25, SMSC still trying) and, after another report delay, the
	// message reaches the handset and a final 0x00 report follows.
	ReportTempThenDelivered
	// ReportPermanent sends one report with a permanent failure (0x40-0x45);
	// the message never reaches the handset.
	ReportPermanent
	// ReportNone delivers the message but never sends a report.
	ReportNone
)

// String returns the outcome's name.
func (o ReportOutcome) String() string {
	switch o {
	case ReportDelivered:
		return "delivered"
	case ReportTempThenDelivered:
		return "temp-then-delivered"
	case ReportPermanent:
		return "permanent"
	case ReportNone:
		return "none"
	}
	return "unknown"
}

// Registration is the network registration state a modem reports in
// +CREG/+CGREG/+CEREG. The zero value is registered on the home network.
type Registration int

// Registration states. Only RegHome and RegRoaming allow SMS.
const (
	RegHome          Registration = iota // stat 1
	RegNotRegistered                     // stat 0: not registered, not searching
	RegSearching                         // stat 2: not registered, searching
	RegDenied                            // stat 3: registration denied
	RegUnknown                           // stat 4
	RegRoaming                           // stat 5
)

// Stat returns the <stat> value of 27.007 §7.2.
func (r Registration) Stat() int {
	switch r {
	case RegHome:
		return 1
	case RegNotRegistered:
		return 0
	case RegSearching:
		return 2
	case RegDenied:
		return 3
	case RegUnknown:
		return 4
	case RegRoaming:
		return 5
	}
	return 4
}

// Faults are the misbehaviours a modem shows, settable while it runs with
// Modem.SetFaults. The zero value is a healthy modem.
type Faults struct {
	// SubmitLatency, if non-zero, overrides Config.SubmitLatency: the time
	// between Ctrl-Z and the +CMGS answer. SubmitJitter adds a random
	// 0..SubmitJitter on top.
	SubmitLatency, SubmitJitter time.Duration
	// ReportDelay, if non-zero, overrides Config.ReportDelay.
	ReportDelay time.Duration

	// CMSErrorRate (0..1) is the share of submits that fail with
	// +CMS ERROR: CMSErrorCode (500 if zero). Failed submits do not reach the
	// network.
	CMSErrorRate float64
	CMSErrorCode int
	// CMSErrorFor fails every submit to a destination (as in the PDU, e.g.
	// "+15551234567") with the given +CMS ERROR code.
	CMSErrorFor map[string]int

	// Report is the status report outcome of submits that request one.
	Report ReportOutcome
	// ReportStatus, if non-zero, is the TP-ST of the first report of a
	// ReportTempThenDelivered (default 0x21) or ReportPermanent (default
	// 0x41) outcome.
	ReportStatus byte

	// Registration is the network state; anything but RegHome and RegRoaming
	// is "no network": +CMGS fails with +CMS ERROR: 331 and inbound messages
	// and reports wait in the network until the modem registers again.
	// Changes raise +CREG/+CGREG/+CEREG URCs where enabled.
	Registration Registration

	// SIMMissing removes the SIM: +CPIN? and SIM commands answer
	// +CME ERROR: 10, SMS commands +CMS ERROR: 310.
	SIMMissing bool
	// PINRequired locks the SIM again (as after a SIM reset) when it changes
	// from false to true; the host must send AT+CPIN with Config.PIN (or
	// "0000" if none is configured).
	PINRequired bool

	// Hung makes the modem swallow all input and answer nothing, not even
	// URCs, until the host closes the device (and opens it again) or the
	// fault is cleared. Closing the device clears it.
	Hung bool
	// Noise interleaves unsolicited lines (RING, +CREG: <stat>, ^RSSI: 20)
	// with responses, including between the AT+CMGS prompt and its answer.
	Noise bool
	// LowercaseHex writes PDUs in lower-case hex.
	LowercaseHex bool
	// NoSMSCInReports writes status report PDUs (+CDS, and SR entries read
	// with +CMGR/+CMGL) without the SMSC address prefix.
	NoSMSCInReports bool
	// LateCMGS delays the +CMGS answer by this much after the message went
	// out: a host that times out must not send it again.
	LateCMGS time.Duration
	// Wedged is firmware that got stuck, as Huawei sticks do after hours:
	// the modem answers AT commands, but every submit fails with
	// +CMS ERROR: 300 (ME failure) until a power cycle (AT+CFUN=1,1) or a
	// replug clears it.
	Wedged bool
	// RoutedLostWhileClosed loses a routed +CMT or +CDS (phase 1) that the
	// modem writes while no client has its device open, as hardware does
	// when the host's port is closed for a restart or a reconnect. Without
	// it, output written while closed waits for the next client.
	RoutedLostWhileClosed bool
	// Signal, if non-zero, is the +CSQ <rssi> (1..31, or 99 for unknown);
	// the default is 20.
	Signal int
}

func (f Faults) clone() Faults {
	f.CMSErrorFor = maps.Clone(f.CMSErrorFor)
	return f
}
