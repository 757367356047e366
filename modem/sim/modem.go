package sim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults for Config fields left empty.
const (
	DefaultManufacturer = "SIMGATE"
	DefaultModel        = "VM-800"
	DefaultRevision     = "1.0"
	DefaultOperator     = "Simnet"
	DefaultSMSC         = "+15550000000"
	// DefaultCNMICaps is the AT+CNMI=? answer of a modem that supports every
	// mode of 27.005 §3.4.1.
	DefaultCNMICaps = "(0-2),(0-3),(0-3),(0-2),(0,1)"
	// SIM800CNMICaps is what a SIMCom SIM800 offers: no stored status
	// reports (ds 0 or 1 only).
	SIM800CNMICaps       = "(0-2),(0-3),(0,2),(0,1),(0,1)"
	DefaultSubmitLatency = 50 * time.Millisecond
	// DefaultUSSDDelay is how long the network takes to answer USSD.
	DefaultUSSDDelay   = 200 * time.Millisecond
	DefaultReportDelay = 100 * time.Millisecond
	// DefaultRetryDelay is how long the network waits before it delivers
	// again a message the modem refused with AT+CNMA=2.
	DefaultRetryDelay = 2 * time.Second
	// DefaultAckTimeout is how long a routed message waits for AT+CNMA in
	// phase 2+ (Telit modems switch routing off after about 17 s).
	DefaultAckTimeout = 15 * time.Second
	// DefaultResetDelay is how long a modem's device stays away after
	// AT+CFUN=1,1 (with Config.ResetUnplugs) or Modem.USBReset.
	DefaultResetDelay = 500 * time.Millisecond
)

// Sizes of the message stores.
const (
	SMCapacity = 30  // SIM
	MECapacity = 100 // modem memory
	SRCapacity = 30  // status reports
)

// Config describes one virtual modem. Empty fields get defaults in
// Network.Start; identities (IMEI, IMSI, ICCID, Number) are derived from the
// modem's position in the network so that they are unique and stable.
type Config struct {
	Name   string // device name, e.g. "modem0": the symlink is <dir>/<Name>
	Number string // the SIM's own MSISDN in E.164, e.g. "+15550000001"
	// NoNumber makes AT+CNUM answer OK alone, as a SIM that does not hold
	// its number does; the network still knows it (calls to Number ring).
	NoNumber bool

	// Profile makes the modem a real device (see Profiles): its identity
	// answers, ICCID commands and AT+CNMI=? become the defaults of the
	// fields below, and it shows the device's quirks. "" is the textbook
	// modem of 27.005 and 27.007.
	Profile string
	// ChatterEvery, for a profile whose device emits status lines now and
	// then (Huawei ^RSSI, ^BOOT, ^MODE; Quectel +QIND), writes one after
	// every ChatterEvery-th command line. 0 never does, so that tests see
	// them only when they ask.
	ChatterEvery int

	IMEI, IMSI, ICCID             string
	Manufacturer, Model, Revision string // AT+CGMI, AT+CGMM, AT+CGMR
	Operator                      string // AT+COPS? long name
	SMSC                          string // AT+CSCA? after power-on

	// PIN, if non-empty, makes the SIM start locked ("+CPIN: SIM PIN").
	PIN string
	// PUK unlocks the SIM after three wrong PINs; default "12345678".
	PUK string

	// Balance is the network's answer to the USSD code *100# (see
	// ussd.go); default DefaultBalance. USSDDelay is how long the network
	// takes to answer a USSD request; default DefaultUSSDDelay.
	Balance   string
	USSDDelay time.Duration

	// ICCIDCommands lists which ICCID commands answer: any of "+CCID",
	// "+QCCID" (Quectel), "^ICCID" (Huawei, read form), "+ICCID" (Sierra).
	// The others answer ERROR, as on hardware. Default {"+CCID","+QCCID"}.
	ICCIDCommands []string
	// CNMICaps is the AT+CNMI=? answer, and AT+CNMI accepts only values it
	// lists. Default DefaultCNMICaps.
	CNMICaps string
	// Phase2 makes AT+CSMS=1 (phase 2+) the profile that power-on and ATZ
	// restore, as on modems whose saved profile has it: every routed +CMT
	// and +CDS then waits for AT+CNMA before the next one is routed, and
	// one left unacknowledged for AckTimeout switches routing off (27.005
	// §3.4.4: <mt> and <ds> become 0) and is stored instead.
	Phase2 bool
	// AckTimeout is how long a routed message waits for AT+CNMA in phase 2+;
	// default DefaultAckTimeout.
	AckTimeout time.Duration
	// RetryDelay is how long the network waits before it delivers again a
	// routed message the modem refused with AT+CNMA=2 (an RP-ERROR); default
	// DefaultRetryDelay. Real SMSCs retry after minutes.
	RetryDelay time.Duration

	// SubmitLatency is the time from Ctrl-Z to the +CMGS answer; default
	// DefaultSubmitLatency.
	SubmitLatency time.Duration
	// ReportDelay is the time from the submit to delivery at the handset and
	// its status report; default DefaultReportDelay.
	ReportDelay time.Duration

	// ResetUnplugs makes AT+CFUN=1,1 restart the modem as a USB module
	// does: once the host has read the OK, the device goes away as with
	// Unplug (the pty and its symlink are removed, a client's read fails)
	// and comes back after ResetDelay in its power-on state, printing the
	// profile's boot lines for the first client. Without it the modem
	// restarts behind the open port, as one on a UART does, and the boot
	// lines follow the OK.
	ResetUnplugs bool
	// ResetDelay is how long the device stays away after AT+CFUN=1,1 (with
	// ResetUnplugs) or USBReset; default DefaultResetDelay.
	ResetDelay time.Duration
	// ResetRename, if set, is the device name the modem comes back under
	// after such a reset (<dir>/<ResetRename>), as a USB device that
	// re-enumerates under another tty; "" keeps its current name.
	ResetRename string
}

func (c *Config) setDefaults(i int) {
	p, _ := lookupProfile(c.Profile)
	if c.Manufacturer == "" {
		c.Manufacturer = p.manufacturer
	}
	if c.Model == "" {
		c.Model = p.model
	}
	if c.Revision == "" {
		c.Revision = p.revision
	}
	if c.ICCIDCommands == nil {
		c.ICCIDCommands = slices.Clone(p.iccidCommands)
	}
	if c.CNMICaps == "" {
		c.CNMICaps = p.cnmiCaps
	}
	if c.Name == "" {
		c.Name = "modem" + strconv.Itoa(i)
	}
	if c.Number == "" {
		c.Number = fmt.Sprintf("+1555%07d", 1+i)
	}
	if c.IMEI == "" {
		c.IMEI = luhn(fmt.Sprintf("35000000%06d", i))
	}
	if c.IMSI == "" {
		c.IMSI = fmt.Sprintf("00101%010d", i+1)
	}
	if c.ICCID == "" {
		c.ICCID = luhn(fmt.Sprintf("89010100%010d", i+1))
	}
	if c.Manufacturer == "" {
		c.Manufacturer = DefaultManufacturer
	}
	if c.Model == "" {
		c.Model = DefaultModel
	}
	if c.Revision == "" {
		c.Revision = DefaultRevision
	}
	if c.Operator == "" {
		c.Operator = DefaultOperator
	}
	if c.SMSC == "" {
		c.SMSC = DefaultSMSC
	}
	if c.PUK == "" {
		c.PUK = "12345678"
	}
	if c.ICCIDCommands == nil {
		c.ICCIDCommands = []string{"+CCID", "+QCCID"}
	}
	if c.CNMICaps == "" {
		c.CNMICaps = DefaultCNMICaps
	}
	if c.USSDDelay == 0 {
		c.USSDDelay = DefaultUSSDDelay
	}
	if c.SubmitLatency == 0 {
		c.SubmitLatency = DefaultSubmitLatency
	}
	if c.ReportDelay == 0 {
		c.ReportDelay = DefaultReportDelay
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = DefaultRetryDelay
	}
	if c.ResetDelay == 0 {
		c.ResetDelay = DefaultResetDelay
	}
}

func (c *Config) validate() error {
	if c.Name == "" || strings.ContainsAny(c.Name, "/\x00") || c.Name == "." || c.Name == ".." {
		return fmt.Errorf("invalid modem name %q", c.Name)
	}
	if numberKey(c.Number) == "" {
		return fmt.Errorf("modem %s: invalid number %q", c.Name, c.Number)
	}
	if _, ok := lookupProfile(c.Profile); !ok {
		return fmt.Errorf("modem %s: unknown profile %q (known: %s)", c.Name, c.Profile, strings.Join(Profiles(), ", "))
	}
	if c.ChatterEvery < 0 {
		return fmt.Errorf("modem %s: negative ChatterEvery %d", c.Name, c.ChatterEvery)
	}
	if c.ResetDelay < 0 {
		return fmt.Errorf("modem %s: negative ResetDelay %v", c.Name, c.ResetDelay)
	}
	if r := c.ResetRename; r != "" && (strings.ContainsAny(r, "/\x00") || r == "." || r == "..") {
		return fmt.Errorf("modem %s: invalid ResetRename %q", c.Name, r)
	}
	if _, err := parseCaps(c.CNMICaps); err != nil {
		return fmt.Errorf("modem %s: invalid CNMICaps %q: %w", c.Name, c.CNMICaps, err)
	}
	for _, s := range c.ICCIDCommands {
		switch s {
		case "+CCID", "+QCCID", "^ICCID", "+ICCID":
		default:
			return fmt.Errorf("modem %s: unknown ICCID command %q", c.Name, s)
		}
	}
	return nil
}

// luhn appends the Luhn check digit, as IMEIs and ICCIDs carry one.
func luhn(digits string) string {
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return digits + strconv.Itoa((10-sum%10)%10)
}

// numberKey normalises a phone number for lookups: digits only, so that
// "+15550001" and "15550001" name the same handset. Alphanumeric addresses
// are kept as they are.
func numberKey(n string) string {
	n = strings.TrimSpace(n)
	d := strings.TrimPrefix(n, "+")
	if d == "" {
		return ""
	}
	for i := 0; i < len(d); i++ {
		if !isDigit(d[i]) {
			return n
		}
	}
	return d
}

// ErrUnplugged is returned by Modem.Unplug for a modem that is not plugged
// in.
var ErrUnplugged = errors.New("modem is unplugged")

// simState is the SIM's lock state.
type simState int

const (
	simReady simState = iota
	simPIN
	simPUK
	simBlocked
)

type simCard struct {
	state    simState
	pin, puk string
	pinTries int
	pukTries int
}

// settings is the AT-visible configuration that ATZ and AT&F reset.
type settings struct {
	echo, verbose, quiet bool
	cmee                 int
	cmgf                 int
	cscs                 string
	cnmi                 [5]int
	csms                 int
	creg, cgreg, cereg   int
	cpms                 [3]string
	csca                 string
	cscaType             int
	csmp                 [4]int
	csdh                 int
	cfun                 int
	copsFormat           int
}

// Modem is one virtual modem: a pseudo-terminal, the state behind its AT
// command set, and its SIM. All methods are safe for concurrent use.
type Modem struct {
	net   *Network
	cfg   Config
	prof  profile
	index int
	caps  [5][]int

	mu       sync.Mutex
	faults   Faults
	set      settings
	sim      simCard
	stores   map[string]*store
	mr       int
	rng      *rand.Rand
	log      []string
	pending  []pendingMsg // inbound SMS and reports waiting for the modem
	buffered []string     // SMS URCs held while AT+CNMI mode is 0
	// ussdN is AT+CUSD <n>; ussdSession the service whose menu waits for a
	// reply ("" none).
	ussdN       int
	ussdSession string
	// clip is AT+CLIP; call is the call that rings now, calls all of them.
	clip     bool
	call     *call
	calls    []*CallRecord
	ackWait  *pendingMsg // the routed +CMT/+CDS that awaits AT+CNMA (CSMS=1)
	ackTimer *time.Timer // switches routing off when ackWait stays unanswered
	noiseN   int
	chatN    int // command lines counted for Config.ChatterEvery
	lastStat int // registration stat last reported
	dev      *device
	path     string

	// crashed keeps Faults.Hung set when the host closes the device
	// (Crash): only a restart that cuts the power ends it.
	crashed bool
}

// pendingMsg is an SMS-DELIVER or SMS-STATUS-REPORT the network holds for
// the modem while it cannot take it (no network, unplugged, store full).
type pendingMsg struct {
	tpdu   []byte
	smsc   string
	report bool
	// smscRaw, if set, is the exact SMSC part of a PDU a test delivered
	// (DeliverPDU), printed instead of the field for smsc.
	smscRaw []byte
}

// device is one plug-in of a modem: a pty and the goroutines serving it.
type device struct {
	master, slave *os.File // nil in tests that feed input directly
	link          string
	wd            int
	ctx           context.Context
	cancel        context.CancelFunc
	wg            sync.WaitGroup
	out           outQueue

	// Guarded by Modem.mu.
	opens int  // client descriptors open on the slave, from inotify events (see openers)
	reset bool // a client closed the device: drop half-typed input

	// Owned by the read goroutine.
	in inputState
}

// inputState is the line editor of the command interpreter.
type inputState struct {
	line     []byte
	overflow bool
	send     *pendingSend // non-nil while the "> " prompt is open
	body     []byte
}

// pendingSend is an AT+CMGS waiting for its message body.
type pendingSend struct {
	pdu    bool
	length int    // PDU mode: TPDU octets
	da     string // text mode: destination
	toda   int
}

// maxBody bounds the message body after the prompt: 2 hex digits for each
// of 12 SMSC and 164 TPDU octets, with room to spare.
const maxBody = 1024

// outQueue serialises everything the modem writes: each put is one unit
// (a whole response, a whole URC), so a URC never lands inside a line.
type outQueue struct {
	mu      sync.Mutex
	buf     []byte
	ready   chan struct{}
	discard bool
	writing bool // the write goroutine took output it has not written yet
}

func (q *outQueue) put(b []byte) {
	q.mu.Lock()
	if !q.discard {
		q.buf = append(q.buf, b...)
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *outQueue) take() []byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	b := q.buf
	q.buf = nil
	q.writing = len(b) > 0
	return b
}

// written tells the queue that what take returned is written.
func (q *outQueue) written() {
	q.mu.Lock()
	q.writing = false
	q.mu.Unlock()
}

// empty reports whether everything put was written.
func (q *outQueue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf) == 0 && !q.writing
}

func (q *outQueue) clear() {
	q.mu.Lock()
	q.buf = nil
	q.mu.Unlock()
}

func newModem(n *Network, cfg Config, index int) *Modem {
	caps, _ := parseCaps(cfg.CNMICaps)
	h := fnv.New64a()
	h.Write([]byte(cfg.IMEI))
	seed := h.Sum64()
	prof, _ := lookupProfile(cfg.Profile)
	m := &Modem{
		net:    n,
		cfg:    cfg,
		prof:   prof,
		index:  index,
		caps:   caps,
		rng:    rand.New(rand.NewPCG(seed, seed>>1|1)),
		stores: map[string]*store{"SM": newStore("SM", SMCapacity), "ME": newStore("ME", MECapacity), "SR": newStore("SR", SRCapacity)},
	}
	m.sim = simCard{puk: cfg.PUK}
	m.powerOnLocked()
	return m
}

// powerOnLocked puts the modem in its power-on state: default settings, the
// SIM locked again if it has a PIN. Stored messages survive.
func (m *Modem) powerOnLocked() {
	m.resetSettingsLocked()
	m.faults.Wedged = false // a power cycle unsticks the firmware
	m.ussdN, m.ussdSession, m.clip = 0, "", false
	m.endCallLocked()
	m.set.cfun = 1
	m.set.csca = m.cfg.SMSC
	m.set.cscaType = 145
	if !strings.HasPrefix(m.cfg.SMSC, "+") {
		m.set.cscaType = 129
	}
	if m.sim.pin == "" {
		m.sim.pin = m.cfg.PIN
	}
	m.sim.pinTries, m.sim.pukTries = 3, 10
	if m.sim.state != simBlocked {
		m.sim.state = simReady
		if m.sim.pin != "" {
			m.sim.state = simPIN
		}
	}
	m.buffered = nil
	if m.crashed {
		// The power was cut: the firmware starts again.
		m.faults.Hung, m.crashed = false, false
	}
	m.lastStat = m.statLocked()
}

// resetSettingsLocked is ATZ / AT&F: the factory profile. Echo is on, as on
// real modems; indications go to the host (+CMTI for SMS, no reports).
func (m *Modem) resetSettingsLocked() {
	m.requeueAckWaitLocked()
	cfun, csca, cscaType := m.set.cfun, m.set.csca, m.set.cscaType
	m.set = settings{
		echo:    true,
		verbose: true,
		cscs:    "IRA",
		cnmi:    [5]int{2, 1, 0, 0, 0},
		cpms:    [3]string{"SM", "SM", "SM"},
		csmp:    [4]int{17, 167, 0, 0},
	}
	if m.cfg.Phase2 {
		m.set.csms = 1
	}
	for i := range m.set.cnmi {
		if !slices.Contains(m.caps[i], m.set.cnmi[i]) && len(m.caps[i]) > 0 {
			m.set.cnmi[i] = m.caps[i][0]
		}
	}
	m.set.cfun, m.set.csca, m.set.cscaType = cfun, csca, cscaType
}

// Config returns the modem's configuration with defaults filled in.
func (m *Modem) Config() Config {
	c := m.cfg
	c.ICCIDCommands = slices.Clone(c.ICCIDCommands)
	return c
}

// Path returns the symlink through which clients open the modem, e.g.
// "/tmp/x/modem0". After Replug it is the new path; while unplugged it is
// the last one, which no longer exists.
func (m *Modem) Path() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.path
}

// Plugged reports whether the modem's device exists.
func (m *Modem) Plugged() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dev != nil
}

// Faults returns the faults in force. Hung reads false once a client closed
// the device, unless the modem crashed (Crash).
func (m *Modem) Faults() Faults {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.faults.clone()
}

// SetFaults replaces the modem's faults; it takes effect at once. A change
// of Registration or SIMMissing raises registration URCs where the host
// enabled them, and messages held by the network flow once the modem is
// registered again.
func (m *Modem) SetFaults(f Faults) {
	f = f.clone()
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.faults
	m.faults = f
	if !f.Hung {
		m.crashed = false
	}
	if f.PINRequired && !old.PINRequired && m.sim.state != simBlocked {
		if m.sim.pin == "" {
			m.sim.pin = "0000"
		}
		m.sim.state = simPIN
		m.sim.pinTries = 3
	}
	m.afterChangeLocked()
}

// Unhang ends a Hung fault, as closing the device does, or a crash (Crash);
// other faults stay.
func (m *Modem) Unhang() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.faults.Hung = false
	m.crashed = false
}

// Log returns the most recent AT command lines the modem received, oldest
// first (at most 500).
func (m *Modem) Log() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.log)
}

func (m *Modem) logLocked(line string) {
	const max = 500
	if len(m.log) >= max {
		m.log = append(m.log[:0], m.log[len(m.log)-max+1:]...)
	}
	m.log = append(m.log, line)
}

// Unplug removes the modem's device as a USB disconnect would: the pty is
// closed (a client's read fails), the symlink removed. The modem keeps its
// identity and stored messages; the network holds messages for it.
func (m *Modem) Unplug() error {
	m.mu.Lock()
	d := m.dev
	m.dev = nil
	m.requeueAckWaitLocked()
	m.mu.Unlock()
	if d == nil {
		return ErrUnplugged
	}
	return m.net.unplug(d)
}

// Replug plugs an unplugged modem in again under <dir>/<newName> (its old
// name if newName is empty), as a USB device re-enumerated under a new tty.
// It comes up as after power-on: default settings, SIM locked if it has a
// PIN, the same IMEI and stored messages. It returns the new path.
func (m *Modem) Replug(newName string) (string, error) {
	if newName == "" {
		newName = m.cfg.Name
	}
	if strings.ContainsAny(newName, "/\x00") || newName == "." || newName == ".." {
		return "", fmt.Errorf("invalid device name %q", newName)
	}
	m.mu.Lock()
	plugged := m.dev != nil
	m.mu.Unlock()
	if plugged {
		return "", fmt.Errorf("cannot replug %s: still plugged in", m.cfg.Name)
	}
	d, err := m.net.plug(m, newName)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.powerOnLocked()
	m.attachLocked(d)
	return m.path, nil
}

func (m *Modem) attachLocked(d *device) {
	m.dev = d
	m.path = d.link
	if m.prof.bootAtPlug {
		// Power-on: the first client to open the device reads these.
		m.bootLocked()
	}
	m.afterChangeLocked()
}

// deviceEvent handles an inotify event on the modem's pts node.
func (m *Modem) deviceEvent(wd int, mask uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.dev
	if d == nil || d.wd != wd {
		return
	}
	if mask&unix.IN_OPEN != 0 {
		// Output written before anyone opened the device is kept for the
		// first client: dropping it here would race with URCs written
		// between the open and this event.
		d.opens++
	}
	if mask&unix.IN_CLOSE != 0 {
		if d.opens > 0 {
			d.opens--
		}
		if d.opens > 0 && d.slave != nil {
			// Merged events can leave the count too high for good (see
			// openers); the descriptors themselves say how many are open.
			if n, err := openers(d.slave); err == nil {
				d.opens = n
			}
		}
		if d.opens == 0 {
			// The host let go of the device: a hang ends (as a USB reset
			// would), but not a crash; half-typed input and unread output
			// are dropped.
			if !m.crashed {
				m.faults.Hung = false
			}
			d.reset = true
			m.dropOutputLocked(d)
			if d.slave != nil {
				// serial libraries set TIOCEXCL; a client that died
				// without clearing it would lock everyone else out (but
				// root) for as long as the sim holds the tty open.
				_ = control(d.slave, func(fd int) error { return unix.IoctlSetInt(fd, unix.TIOCNXCL, 0) })
			}
		}
	}
}

// dropOutputLocked discards output no client has read yet.
func (m *Modem) dropOutputLocked(d *device) {
	d.out.clear()
	if d.slave != nil {
		_ = control(d.slave, flushInput)
	}
}

// writeLocked queues b for the host unless the modem is unplugged or hung.
func (m *Modem) writeLocked(b []byte) {
	if m.dev == nil || m.faults.Hung || len(b) == 0 {
		return
	}
	m.dev.out.put(b)
}

// block formats lines as one information response or URC:
// <CR><LF>line<CR><LF>line...<CR><LF>.
func (m *Modem) block(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	if !m.set.verbose {
		return strings.Join(lines, "\r\n") + "\r\n"
	}
	return "\r\n" + strings.Join(lines, "\r\n") + "\r\n"
}

func (m *Modem) finalText(r result) string {
	if m.set.quiet || r.kind == resNone || r.kind == resPrompt {
		return ""
	}
	if !m.set.verbose {
		if n := resultNumber(r); n != "" {
			return n + "\r"
		}
		return resultLine(r, m.set.cmee) + "\r\n"
	}
	return "\r\n" + resultLine(r, m.set.cmee) + "\r\n"
}

// noiseLocked returns the next unsolicited line of the Noise fault.
func (m *Modem) noiseLocked() string {
	m.noiseN++
	switch m.noiseN % 3 {
	case 0:
		return "RING"
	case 1:
		return "+CREG: " + strconv.Itoa(m.statLocked())
	}
	return "^RSSI: 20"
}

// respondLocked writes the information responses of a command line and its
// final result as one unit; with the Noise fault an unsolicited line goes
// before it or between the information and the result.
func (m *Modem) respondLocked(blocks [][]string, r result) {
	var sb strings.Builder
	noise := m.faults.Noise
	if noise && (m.noiseN%2 == 0 || len(blocks) == 0) {
		sb.WriteString(m.block([]string{m.noiseLocked()}))
		noise = false
	}
	for _, b := range blocks {
		sb.WriteString(m.block(b))
	}
	if noise {
		sb.WriteString(m.block([]string{m.noiseLocked()}))
	}
	sb.WriteString(m.finalText(r))
	m.writeLocked([]byte(sb.String()))
}

// urcLocked writes an unsolicited result code.
func (m *Modem) urcLocked(lines ...string) {
	m.writeLocked([]byte("\r\n" + strings.Join(lines, "\r\n") + "\r\n"))
}

// smsURCLocked writes an SMS indication (+CMTI, +CMT, +CDS, +CDSI), or holds
// it while AT+CNMI mode is 0 (27.005 §3.4.1: buffer in the TA).
func (m *Modem) smsURCLocked(lines ...string) {
	if m.set.cnmi[0] == 0 {
		m.buffered = append(m.buffered, "\r\n"+strings.Join(lines, "\r\n")+"\r\n")
		if len(m.buffered) > 64 {
			m.buffered = m.buffered[1:]
		}
		return
	}
	m.urcLocked(lines...)
}

// statLocked is the registration <stat> the modem reports now.
func (m *Modem) statLocked() int {
	if m.faults.SIMMissing || m.sim.state != simReady || m.set.cfun != 1 {
		return 0
	}
	return m.faults.Registration.Stat()
}

func (m *Modem) registeredLocked() bool {
	s := m.statLocked()
	return s == 1 || s == 5
}

// afterChangeLocked raises registration URCs if the registration changed and
// hands over messages the network held while the modem could not take them.
func (m *Modem) afterChangeLocked() {
	if st := m.statLocked(); st != m.lastStat {
		m.lastStat = st
		if m.set.creg > 0 {
			m.urcLocked(m.regLine("+CREG", m.set.creg, st, false))
		}
		if m.set.cgreg > 0 {
			m.urcLocked(m.regLine("+CGREG", m.set.cgreg, st, false))
		}
		if m.set.cereg > 0 {
			m.urcLocked(m.regLine("+CEREG", m.set.cereg, st, false))
		}
	}
	m.flushPendingLocked()
}

// regLine formats +CREG/+CGREG/+CEREG: the read form starts with <n>, the
// URC form does not (27.007 §7.2). Location is shown with n=2 while
// registered.
func (m *Modem) regLine(name string, n, stat int, read bool) string {
	s := name + ": "
	if read {
		s += strconv.Itoa(n) + ","
	}
	s += strconv.Itoa(stat)
	if n == 2 && (stat == 1 || stat == 5) {
		lac := fmt.Sprintf("%04X", 0x1A00+m.index%256)
		if name == "+CEREG" {
			s += fmt.Sprintf(",\"%s\",\"%08X\",7", lac, 0xC300+m.index)
		} else {
			s += fmt.Sprintf(",\"%s\",\"%04X\"", lac, 0xC300+m.index%4096)
		}
	}
	return s
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// readLoop is the one goroutine that reads the pty master: it feeds the
// command interpreter until the device goes away.
func (m *Modem) readLoop(d *device) {
	defer d.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := d.master.Read(buf)
		if n > 0 {
			// Handle a close of the device that happened before this input
			// was written (see watcher.mu).
			if m.net.watch != nil {
				m.net.watch.drain()
			}
			m.feed(d, buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// writeLoop is the one goroutine that writes the pty master.
func (m *Modem) writeLoop(d *device) {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.out.ready:
		}
		if b := d.out.take(); len(b) > 0 {
			_, err := d.master.Write(b)
			d.out.written()
			if err != nil {
				return
			}
		}
	}
}

// feed runs input from the host through the line editor: echo, CR-terminated
// command lines, and the message body after the AT+CMGS prompt (Ctrl-Z
// sends, ESC cancels).
func (m *Modem) feed(d *device, data []byte) {
	m.mu.Lock()
	if d.reset {
		d.reset = false
		d.in = inputState{}
	}
	hung, echo := m.faults.Hung, m.set.echo
	m.mu.Unlock()
	var echoBuf []byte
	flush := func() {
		if len(echoBuf) > 0 {
			m.mu.Lock()
			m.writeLocked(echoBuf)
			m.mu.Unlock()
			echoBuf = nil
		}
	}
	refresh := func() {
		m.mu.Lock()
		hung, echo = m.faults.Hung, m.set.echo
		m.mu.Unlock()
	}
	in := &d.in
	for _, c := range data {
		if hung {
			// A hung modem swallows input; refresh in case it recovered.
			refresh()
			if hung {
				continue
			}
		}
		if in.send != nil {
			switch c {
			case 0x1A: // Ctrl-Z: send
				flush()
				s, body, over := in.send, in.body, in.overflow
				in.send, in.body, in.overflow = nil, nil, false
				m.finishSend(d, s, body, over)
				refresh()
			case 0x1B: // ESC: cancel
				flush()
				in.send, in.body, in.overflow = nil, nil, false
				m.mu.Lock()
				m.respondLocked(nil, ok)
				m.mu.Unlock()
			case '\r':
				if !in.send.pdu {
					// Text mode: a new line in the message and a new prompt.
					in.body = append(in.body, '\n')
					flush()
					m.mu.Lock()
					m.writeLocked([]byte("\r\n> "))
					m.mu.Unlock()
				}
			case '\n':
			case 0x08:
				if len(in.body) > 0 {
					in.body = in.body[:len(in.body)-1]
				}
			default:
				if len(in.body) < maxBody {
					in.body = append(in.body, c)
				} else {
					in.overflow = true
				}
				if echo {
					echoBuf = append(echoBuf, c)
				}
			}
			continue
		}
		if echo {
			echoBuf = append(echoBuf, c)
		}
		switch c {
		case '\r':
			flush()
			line, over := in.line, in.overflow
			in.line, in.overflow = nil, false
			m.execLine(d, line, over)
			refresh()
		case '\n', 0, 0x1A, 0x1B:
			// LF after CR, NUL padding, a stray Ctrl-Z or ESC (gammu starts
			// with ESC CR to leave any prompt): ignored in command mode.
		case 0x08, 0x7F:
			if len(in.line) > 0 {
				in.line = in.line[:len(in.line)-1]
			}
		default:
			if len(in.line) < MaxLineLength {
				in.line = append(in.line, c)
			} else {
				in.overflow = true
			}
		}
	}
	flush()
}

// execLine executes one command line.
func (m *Modem) execLine(d *device, raw []byte, overflow bool) {
	s := strings.TrimLeft(string(raw), " \t")
	if len(s) < 2 || upper(s[0]) != 'A' || (upper(s[1]) != 'T' && s[1] != '/') {
		// Not a command: modems wait for "AT" and ignore the rest.
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dev != d {
		// The device is going away (a restart): the modem reads no more.
		return
	}
	m.logLocked(s)
	if s[1] == '/' {
		// A/ repeats the last command line; not supported.
		m.respondLocked(nil, errRes)
		return
	}
	if overflow {
		m.respondLocked(nil, errRes)
		return
	}
	cmds, err := ParseCommandLine(s)
	if err != nil {
		m.respondLocked(nil, errRes)
		return
	}
	var blocks [][]string
	var after []func()
	final := ok
	for _, c := range cmds {
		r := m.execLocked(c)
		if len(r.lines) > 0 {
			blocks = append(blocks, r.lines)
		}
		if r.res.kind == resPrompt {
			// The prompt takes over the line; commands after it are dropped.
			var sb strings.Builder
			for _, b := range blocks {
				sb.WriteString(m.block(b))
			}
			sb.WriteString("\r\n> ")
			if m.faults.Noise {
				sb.WriteString(m.block([]string{m.noiseLocked()}))
			}
			m.writeLocked([]byte(sb.String()))
			d.in.send = r.send
			d.in.body = nil
			return
		}
		if r.after != nil {
			after = append(after, r.after)
		}
		if r.res.kind != resOK {
			final = r.res
			break
		}
	}
	m.respondLocked(blocks, final)
	for _, f := range after {
		f()
	}
	m.afterChangeLocked()
	m.chatterLocked()
}

// finishSend submits the message body of AT+CMGS: checks, latency, the
// network, the +CMGS answer. It runs on the read goroutine, which blocks
// meanwhile, as a modem does not read commands during a submit.
func (m *Modem) finishSend(d *device, ps *pendingSend, body []byte, overflow bool) {
	received := time.Now()
	m.mu.Lock()
	var sub *submitPDU
	var err error
	if overflow {
		err = errors.New("message too long")
	} else if ps.pdu {
		sub, err = decodeSubmitPDU(string(body), ps.length)
	} else {
		sub, err = m.textSubmitLocked(ps, body)
	}
	if err != nil {
		code := 304
		if !ps.pdu {
			code = 305
		}
		m.respondLocked(nil, cms(code))
		m.mu.Unlock()
		return
	}
	code := 0
	if r, bad := m.simErrLocked(true); bad {
		code = r.code
	} else if !m.registeredLocked() {
		code = 331
	}
	dest := sub.tpdu.DA.Number()
	if code == 0 {
		for k, v := range m.faults.CMSErrorFor {
			if v != 0 && numberKey(k) == numberKey(dest) {
				code = v
				break
			}
		}
	}
	if code == 0 && m.faults.Wedged {
		code = 300
	}
	if code == 0 && m.faults.CMSErrorRate > 0 && m.rng.Float64() < m.faults.CMSErrorRate {
		code = m.faults.CMSErrorCode
		if code == 0 {
			code = 500
		}
	}
	smsc := sub.smsc
	if smsc == "" {
		smsc = m.set.csca
	}
	if code == 0 && smsc == "" {
		code = 330
	}
	lat := m.cfg.SubmitLatency
	if m.faults.SubmitLatency > 0 {
		lat = m.faults.SubmitLatency
	}
	if j := m.faults.SubmitJitter; j > 0 {
		lat += time.Duration(m.rng.Int64N(int64(j)))
	}
	if m.faults.Noise {
		m.urcLocked(m.noiseLocked())
	}
	m.mu.Unlock()

	if !sleep(d.ctx, lat) {
		return
	}
	m.mu.Lock()
	if code != 0 {
		m.respondLocked(nil, cms(code))
		m.mu.Unlock()
		return
	}
	mr := m.mr
	m.mr = (m.mr + 1) % 256
	late := m.faults.LateCMGS
	plan := reportPlan{
		outcome: m.faults.Report,
		delay:   m.cfg.ReportDelay,
		st:      m.faults.ReportStatus,
	}
	if m.faults.ReportDelay > 0 {
		plan.delay = m.faults.ReportDelay
	}
	m.mu.Unlock()

	m.net.submitted(m, sub, mr, smsc, plan, received)

	if late > 0 && !sleep(d.ctx, late) {
		return
	}
	m.mu.Lock()
	m.respondLocked([][]string{{"+CMGS: " + strconv.Itoa(mr)}}, ok)
	m.mu.Unlock()
}

// receiveSMS takes an SMS-DELIVER from the network, or leaves it pending.
func (m *Modem) receiveSMS(tp []byte, smsc string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pending = append(m.pending, pendingMsg{tpdu: tp, smsc: smsc})
	m.flushPendingLocked()
}

// receiveReport takes an SMS-STATUS-REPORT from the network.
func (m *Modem) receiveReport(tp []byte, smsc string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pending = append(m.pending, pendingMsg{tpdu: tp, smsc: smsc, report: true})
	m.flushPendingLocked()
}

// flushPendingLocked hands the held messages to the modem in order while it
// is plugged in and registered; messages that find their store full stay.
func (m *Modem) flushPendingLocked() {
	if len(m.pending) == 0 || m.dev == nil || !m.registeredLocked() {
		return
	}
	keep := m.pending[:0]
	for _, p := range m.pending {
		var done bool
		if p.report {
			done = m.placeReportLocked(p)
		} else {
			done = m.placeSMSLocked(p)
		}
		if !done {
			keep = append(keep, p)
		}
	}
	clear(m.pending[len(keep):])
	m.pending = keep
}

// lostRoutedLocked reports whether a routed +CMT or +CDS written now would
// be lost, as on hardware: Faults.RoutedLostWhileClosed is set, no client
// has the device open, and nobody will ask for an acknowledgement (phase 1).
func (m *Modem) lostRoutedLocked() bool {
	if !m.faults.RoutedLostWhileClosed || m.set.csms == 1 || m.dev == nil || m.dev.opens > 0 {
		return false
	}
	m.logLocked("(routed message lost: nobody has the port open)")
	return true
}

// placeSMSLocked routes or stores an incoming SMS according to AT+CNMI <mt>.
func (m *Modem) placeSMSLocked(p pendingMsg) bool {
	if m.set.cnmi[1] == 2 {
		if m.lostRoutedLocked() {
			return true
		}
		// Routed: +CMT, nothing stored (27.005 §3.4.1 mt=2).
		if m.ackWait != nil {
			return false // the previous one is not acknowledged yet
		}
		if m.set.cmgf == 1 {
			m.smsURCLocked(m.textCMTLocked(p)...)
		} else {
			m.smsURCLocked(fmt.Sprintf("+CMT: ,%d", len(p.tpdu)), pduHex(smscField(p.smsc, p.smscRaw), p.tpdu, m.faults.LowercaseHex))
		}
		m.awaitAckLocked(p)
		return true
	}
	mem := m.set.cpms[2]
	idx := m.stores[mem].add(&storedMsg{stat: statRecUnread, smsc: p.smsc, smscRaw: p.smscRaw, tpdu: p.tpdu})
	if idx == 0 {
		return false
	}
	if m.set.cnmi[1] == 1 || m.set.cnmi[1] == 3 {
		m.smsURCLocked(fmt.Sprintf("+CMTI: %q,%d", mem, idx))
	}
	return true
}

// awaitAckLocked makes the routed message p wait for AT+CNMA in phase 2+.
// Unacknowledged for AckTimeout, it switches routing off and goes back to
// the network, which delivers it again: now stored.
func (m *Modem) awaitAckLocked(p pendingMsg) {
	if m.set.csms != 1 {
		return
	}
	m.ackWait = &p
	m.ackTimer = time.AfterFunc(m.cfg.AckTimeout, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.ackWait != &p {
			return // acknowledged, or the modem was reset or unplugged
		}
		m.requeueAckWaitLocked()
		m.set.cnmi[1], m.set.cnmi[3] = 0, 0
		m.flushPendingLocked()
	})
}

// requeueAckWaitLocked gives a message that waits for AT+CNMA back to the
// network, which delivers it again: it was never acknowledged.
func (m *Modem) requeueAckWaitLocked() {
	if p := m.ackWait; p != nil {
		m.endAckWaitLocked()
		m.pending = append([]pendingMsg{*p}, m.pending...)
	}
}

// refuseAckWaitLocked answers AT+CNMA=2 for the message that waits for an
// acknowledgement: the network takes it back and delivers it again after
// RetryDelay (27.005 §3.4.4: the RP-ERROR goes to the network).
func (m *Modem) refuseAckWaitLocked() {
	p := *m.ackWait
	m.endAckWaitLocked()
	m.net.after(m.cfg.RetryDelay, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.pending = append(m.pending, p)
		m.flushPendingLocked()
	})
}

// endAckWaitLocked forgets the message waiting for AT+CNMA.
func (m *Modem) endAckWaitLocked() {
	if m.ackTimer != nil {
		m.ackTimer.Stop()
	}
	m.ackWait, m.ackTimer = nil, nil
}

// placeReportLocked routes or stores a status report according to AT+CNMI
// <ds>: 1 routed as +CDS, 2 stored in SR and announced with +CDSI, 0 stored
// silently.
func (m *Modem) placeReportLocked(p pendingMsg) bool {
	if m.set.cnmi[3] == 1 {
		if m.lostRoutedLocked() {
			return true
		}
		if m.ackWait != nil {
			return false // the previous one is not acknowledged yet
		}
		if m.set.cmgf == 1 {
			m.smsURCLocked(m.textReportLocked("+CDS: ", p.tpdu))
		} else {
			var smsc []byte
			if !m.faults.NoSMSCInReports {
				smsc = smscField(p.smsc, p.smscRaw)
			}
			m.smsURCLocked(fmt.Sprintf("+CDS: %d", len(p.tpdu)), pduHex(smsc, p.tpdu, m.faults.LowercaseHex))
		}
		m.awaitAckLocked(p)
		return true
	}
	idx := m.stores["SR"].add(&storedMsg{stat: statRecUnread, smsc: p.smsc, smscRaw: p.smscRaw, tpdu: p.tpdu, report: true})
	if idx == 0 {
		// A full SR store drops reports, as modems do.
		return true
	}
	if m.set.cnmi[3] == 2 {
		// The report is in SR, whatever store the device names (EC25: "SM").
		mem := "SR"
		if m.prof.cdsiMem != "" {
			mem = m.prof.cdsiMem
		}
		m.smsURCLocked(fmt.Sprintf("+CDSI: %q,%d", mem, idx))
	}
	return true
}
