package modem

import (
	"context"
	"log/slog"
	"regexp"
	"time"

	"github.com/simgate/simgate"
)

// DefaultCandidates are the ports searched for a modem bound by identity
// (IMEI or ICCID) when Options.Candidates is nil.
var DefaultCandidates = []string{"/dev/serial/by-id/*", "/dev/ttyUSB*", "/dev/ttyACM*"}

// Config is one modem. It is found by Device (a path or a glob) or, when IMEI
// or ICCID is set, by probing candidate ports for that identity.
type Config struct {
	Name   string // short name used in the API, logs and metrics
	Device string // path or glob; may be empty when IMEI or ICCID is set
	IMEI   string
	ICCID  string
	Baud   int    // default 115200
	PIN    string // SIM PIN, never logged
	SMSC   string // AT+CSCA when set, e.g. "+4917012345678"
	// Number is the SIM's own number in E.164. Empty: read from the SIM
	// (AT+CNUM) at each connect, which many SIMs cannot tell. A modem
	// whose number is unknown is not offered for missed calls.
	Number string
	// SubmitTimeout is how long AT+CMGS may take (default 60 s). A submit
	// that times out is simgate.ClassAmbiguous and never resent.
	SubmitTimeout time.Duration
	// Validity is the relative TP-VP of submitted messages (default 24 h;
	// negative: none).
	Validity time.Duration
	// Prefixes are recipient number prefixes ("+49") this modem is preferred
	// for. Empty: no preference.
	Prefixes []string
	// Caps on the SMS (parts) this SIM sends; 0 means no cap. PerMinute and
	// PerHour are sliding windows, PerDay a calendar day of Options.Now.
	PerMinute, PerHour, PerDay int
	// Disabled starts the modem out of rotation.
	Disabled bool
	// Balance, when set, reads the SIM's prepaid balance by USSD now and
	// then (balance.go).
	Balance *BalanceWatch
	// IgnoreCalls lets incoming calls ring instead of rejecting them
	// (calls.go); either way each call is handed on once (EventCall). A
	// modem that ignores calls is not offered for missed calls.
	IgnoreCalls bool
	// ResetCommand is the soft reset of a modem that stopped answering
	// (default "+CFUN=1,1"); USBReset allows a USB reset through the
	// kernel when that did not help (reset.go).
	ResetCommand string
	USBReset     bool
}

// BalanceWatch says how a modem reads its SIM's balance: the USSD code to
// send, how often, the pattern whose group "amount" is the number, and the
// amount at or below which the balance is low (LowSet: a low mark is set).
type BalanceWatch struct {
	Code    string
	Every   time.Duration
	Pattern *regexp.Regexp
	Low     float64
	LowSet  bool
}

func (c Config) withDefaults() Config {
	if c.Baud <= 0 {
		c.Baud = 115200
	}
	if c.SubmitTimeout <= 0 {
		c.SubmitTimeout = 60 * time.Second
	}
	if c.Validity == 0 {
		c.Validity = 24 * time.Hour
	}
	return c
}

// Options are settings shared by the modems of a pool.
type Options struct {
	Logger     *slog.Logger
	Subscriber Subscriber // receives status reports and inbound SMS
	// CommandTimeout bounds ordinary AT commands (default 5 s). A modem that
	// misses it is resynchronised, then reopened.
	CommandTimeout time.Duration
	// ProbeInterval is how often signal, registration and operator are read.
	// 0 switches the probe off (tests call RunOnce).
	ProbeInterval time.Duration
	// Candidates are the globs searched for a modem bound by identity
	// (default DefaultCandidates).
	Candidates []string
	// MinBackoff and MaxBackoff bound the wait between reconnect attempts
	// (defaults 1 s and 1 min).
	MinBackoff, MaxBackoff time.Duration
	// After QuarantineAfter failed connects in a row (default 5), a modem is
	// left alone for QuarantineFor (default 5 min) before it is probed again.
	QuarantineAfter int
	QuarantineFor   time.Duration
	// LateWait is how long a modem whose submit timed out waits for the late
	// +CMGS answer before it resynchronises (default 10 s).
	LateWait time.Duration
	// USSDTimeout is how long a USSD request waits for the network's answer
	// (default 30 s).
	USSDTimeout time.Duration
	// MaxResetsPerDay is how many resets a day a modem may need before it
	// is reported degraded for them (default 3).
	MaxResetsPerDay int
	// ListInterval is how often a connected modem's message stores are
	// listed, for SMS stored without an indication (default 10 min); the
	// periodic probe does it, so it is never more often than that.
	ListInterval time.Duration
	// ReassemblyTimeout is how long the parts of a long inbound SMS are kept
	// waiting for the rest before what arrived is delivered (default 24 h).
	ReassemblyTimeout time.Duration
	// Now is the clock (default time.Now).
	Now simgate.Clock

	// PINs remembers, across restarts, the PINs each SIM rejected, so that
	// none is entered twice (pin.go); nil: only while the process runs.
	// PINKey keys the PIN fingerprints it keeps.
	PINs   PINMemory
	PINKey []byte

	// usb resets USB devices, with the sysfs and /dev trees at sysfsRoot
	// and devRoot (defaults: the kernel, "/sys", "/dev"); tests put fakes
	// here.
	usb                usbResetter
	sysfsRoot, devRoot string
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 5 * time.Second
	}
	if o.Candidates == nil {
		o.Candidates = DefaultCandidates
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(time.Minute, o.MinBackoff)
	}
	if o.QuarantineAfter <= 0 {
		o.QuarantineAfter = 5
	}
	if o.QuarantineFor <= 0 {
		o.QuarantineFor = 5 * time.Minute
	}
	if o.LateWait <= 0 {
		o.LateWait = 10 * time.Second
	}
	if o.USSDTimeout <= 0 {
		o.USSDTimeout = 30 * time.Second
	}
	if o.ListInterval <= 0 {
		o.ListInterval = 10 * time.Minute
	}
	if o.ReassemblyTimeout <= 0 {
		o.ReassemblyTimeout = 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.usb == nil {
		o.usb = kernelUSB{}
	}
	if o.sysfsRoot == "" {
		o.sysfsRoot, o.devRoot = "/sys", "/dev"
	}
	if o.MaxResetsPerDay <= 0 {
		o.MaxResetsPerDay = defaultResetLimit
	}
	return o
}

// EventKind is what an Event carries.
type EventKind int

// Event kinds.
const (
	EventReport     EventKind = iota + 1 // an SMS-STATUS-REPORT
	EventInbound                         // an SMS received, reassembled
	EventLateSubmit                      // the late answer of a submit that timed out
	EventBalance                         // a balance read by USSD
	EventCall                            // an incoming voice call
)

// Event is a status report or an inbound SMS received by a modem.
type Event struct {
	Kind     EventKind
	ModemID  string
	Identity simgate.ModemIdentity // IMEI and ICCID identify the sender SIM
	Report   *simgate.StatusReport // for EventReport
	Inbound  *simgate.InboundMessage
	Late     *simgate.LateSubmit  // for EventLateSubmit
	Balance  *simgate.Balance     // for EventBalance
	Call     *simgate.InboundCall // for EventCall
	// Stored is true when the event was read from the SIM's storage; it is
	// deleted there only after HandleEvent returned nil.
	Stored bool
}

// Subscriber receives a modem's events. HandleEvent is called on the
// modem's goroutine, one event at a time, and should be quick (a database
// write). Returning an error keeps a stored message on the SIM, to be
// offered again when the modem next starts.
type Subscriber interface {
	HandleEvent(ctx context.Context, ev Event) error
}

// SubscriberFunc adapts a function to Subscriber.
type SubscriberFunc func(ctx context.Context, ev Event) error

// HandleEvent calls f.
func (f SubscriberFunc) HandleEvent(ctx context.Context, ev Event) error { return f(ctx, ev) }
