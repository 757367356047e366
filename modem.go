package simgate

import "time"

// ModemIdentity is what makes a modem the same modem after a USB reset gives
// it another tty name: its IMEI, and the ICCID of the SIM in it.
type ModemIdentity struct {
	Manufacturer string
	Model        string
	Revision     string
	IMEI         string
	IMSI         string
	ICCID        string
}

// ModemState is the health of a modem as the pool sees it.
type ModemState string

// Modem states.
const (
	ModemStarting ModemState = "starting"
	ModemReady    ModemState = "ready"
	ModemDegraded ModemState = "degraded" // usable, with a problem (weak signal, errors)
	ModemDown     ModemState = "down"     // not usable; being recovered
	ModemDisabled ModemState = "disabled" // taken out of rotation by an admin
)

// ModemCounters count what a modem did since it was first seen.
type ModemCounters struct {
	Sent    int64
	Failed  int64
	Reports int64
	Inbound int64
	// SoftResets and USBResets count the resets of a modem that stopped
	// answering.
	SoftResets int64
	USBResets  int64
}

// ModemStatus is a snapshot of one modem for the API, the console and metrics.
type ModemStatus struct {
	ID string // configured name, e.g. "modem0"
	// Node is the node that drives it (simgate.Node); "" for a modem of
	// this process when it shares its database with no other.
	Node     string
	Device   string // tty path in use
	Identity ModemIdentity
	// Number is the SIM's own number in E.164: configured, or read from
	// the SIM (AT+CNUM); "" when unknown, and then it is not offered for
	// missed-call verifications.
	Number       string
	State        ModemState
	Reason       string
	Operator     string
	AccessTech   string // GSM, UTRAN, E-UTRAN
	Registration string // home, roaming, searching, denied, ...
	SignalDBm    int    // 0 when unknown
	SignalBars   int    // 0-4
	Counters     ModemCounters
	SentToday    int
	DailyCap     int // 0: no cap
	LastError    string
	LastSeen     time.Time
	// Warnings are lasting problems of the modem's setup that do not stop
	// it, e.g. that it cannot give status reports.
	Warnings []string
	// Balance is the last balance read, when the modem watches it.
	Balance *Balance
	// Foreign counts, per message store ("SM", "ME"), the messages on the
	// SIM that simgate did not consume and leaves there: SMS-SUBMITs a
	// phone stored (sent messages, drafts) and other PDUs not addressed to
	// simgate.
	Foreign map[string]int
}

// RSSIToDBm converts a +CSQ rssi (0-31) to dBm (TS 27.007 §8.5). It reports
// false for 99 (unknown) and for out-of-range values.
func RSSIToDBm(rssi int) (int, bool) {
	if rssi < 0 || rssi > 31 {
		return 0, false
	}
	return -113 + 2*rssi, true
}

// SignalBars maps a +CSQ rssi to 0-4 bars: <=9 marginal (1), 10-14 workable
// (2), 15-19 good (3), >=20 excellent (4); unknown or none is 0.
func SignalBars(rssi int) int {
	switch {
	case rssi <= 0 || rssi > 31:
		return 0
	case rssi <= 9:
		return 1
	case rssi <= 14:
		return 2
	case rssi <= 19:
		return 3
	}
	return 4
}

// USSDStatus is how a USSD request (TS 22.090, AT+CUSD of TS 27.007 §7.15)
// ended.
type USSDStatus string

// USSD statuses.
const (
	USSDDone          USSDStatus = "done"           // the network answered; nothing more to do (<m> 0)
	USSDFurtherAction USSDStatus = "further_action" // the network asks for a reply in the open session (<m> 1)
	USSDTerminated    USSDStatus = "terminated"     // the network or the modem ended the session (<m> 2, 3, 4)
	USSDTimeout       USSDStatus = "timeout"        // no answer in time (<m> 5, or none at all); the session is canceled
)

// USSDResult is the network's answer to a USSD request.
type USSDResult struct {
	Status USSDStatus
	Text   string // decoded by its data coding scheme
	// Session names the open session of a USSDFurtherAction answer, for the
	// reply or the cancel; "" otherwise.
	Session string
}

// Balance is a prepaid SIM's balance, read by USSD.
type Balance struct {
	ModemID string
	At      time.Time
	// Amount is the number the answer's pattern found; nil when the answer
	// did not match, or none came.
	Amount *float64
	Text   string // the network's answer, as it came
	Err    string // why there is no amount
	// Low is set when Amount is at or below the modem's low mark;
	// CrossedLow when, in addition, the reading before was above it (or
	// there was none): the moment to tell someone.
	Low, CrossedLow bool
}
