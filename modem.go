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
}

// ModemStatus is a snapshot of one modem for the API, the console and metrics.
type ModemStatus struct {
	ID           string // configured name, e.g. "modem0"
	Device       string // tty path in use
	Identity     ModemIdentity
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
