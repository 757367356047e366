package simgate

import (
	"math"
	"strings"
	"time"
)

// ModemHour is one modem's hour in the hourly rollups that the console
// charts: the SMS parts it sent, and of its parts those delivered and those
// failed, in that UTC hour (the store's migration 0006 says exactly what
// counts), and the signal samples taken in the hour.
type ModemHour struct {
	ModemID string
	Hour    time.Time // the start of the UTC hour

	Sent, Delivered, Failed int

	// SignalSamples is how many times the signal was sampled in the hour
	// (about once a minute while the modem was up); SignalDBm is their
	// average, meaningful only when SignalSamples > 0.
	SignalSamples int
	SignalDBm     float64
}

// QueueHour is the queue as sampled during one UTC hour: the most messages
// waiting to be sent (accepted, queued or sending) and the greatest age of
// the oldest queued message seen in any sample. Hours without samples have
// no QueueHour.
type QueueHour struct {
	Hour         time.Time // the start of the UTC hour
	Samples      int
	MaxDepth     int
	MaxOldestAge time.Duration
}

// BalanceReading is one reading of a SIM's balance: the text the network
// answered and, when it could be parsed, the amount.
type BalanceReading struct {
	ModemID string
	At      time.Time
	// Amount is nil when Raw could not be parsed.
	Amount *float64
	// Currency is "" when unknown.
	Currency string
	Raw      string
}

// Sample is one reading of the modems' signal and of the queue, taken about
// once a minute for the hourly rollups.
type Sample struct {
	// Signal is the signal in dBm of each modem whose signal is known, by
	// modem id.
	Signal map[string]int
	// QueueDepth is how many messages wait to be sent: accepted, queued or
	// sending (not scheduled ones, which wait for their time).
	QueueDepth int
	// OldestQueuedAge is the age of the oldest queued message; 0 when none.
	OldestQueuedAge time.Duration
}

// RollupRetention is how long the hourly rollups and the balance readings
// are kept: a store's RecordSample deletes those of hours that began more
// than RollupRetention before the current hour.
const RollupRetention = 30 * 24 * time.Hour

// MaxBalanceText bounds the balance text kept (bytes): a USSD answer has at
// most 182 characters, and anything longer is not a balance.
const MaxBalanceText = 512

// HourStart is the start of t's UTC hour in unix milliseconds, as the
// stores' hourly rollups count hours.
func HourStart(t time.Time) int64 {
	ms := t.UnixMilli()
	return ms - ms%time.Hour.Milliseconds()
}

// BalanceText checks a balance reading of modemID before a store keeps it
// and returns raw as it is kept: valid UTF-8, cut to MaxBalanceText bytes of
// whole characters (a balance is no secret, but no answer is that long). It
// returns a CodeInvalid error for an empty modemID or an amount that is not
// a finite number.
func BalanceText(modemID string, amount *float64, raw string) (string, error) {
	if modemID == "" {
		return "", Errorf(CodeInvalid, "balance reading has no modem")
	}
	if amount != nil && (math.IsNaN(*amount) || math.IsInf(*amount, 0)) {
		return "", Errorf(CodeInvalid, "balance amount %v is not a number", *amount)
	}
	raw = strings.ToValidUTF8(raw, "\uFFFD")
	if len(raw) > MaxBalanceText {
		// Cut, then drop the bytes of a character cut in half.
		raw = strings.ToValidUTF8(raw[:MaxBalanceText], "")
	}
	return raw, nil
}
