package modem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/simgate/simgate"
	"github.com/warthog618/modem/at"
	"github.com/warthog618/sms"
)

// Modem is one GSM modem, driven by a goroutine that owns its serial port.
// It reconnects by itself: it finds the modem again by identity when the
// port goes away, with backoff, and quarantines a modem that keeps failing.
type Modem struct {
	cfg   Config
	opts  Options
	log   *slog.Logger
	ports *ports
	enc   *sms.Encoder
	asm   *assembler

	jobs chan *sendJob
	ctl  chan ctlReq
	// wake ends a wait to reconnect, and a quarantine, at once: the pool's
	// device watch sends on it when a device appears (Wake).
	wake chan struct{}
	// events carries routed events from run's goroutine to its delivery
	// goroutine (see hand in receive.go); run closes it when it ends.
	events chan Event
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	first  chan struct{} // closed after the first connect attempt
	once   sync.Once

	mu       sync.Mutex
	st       simgate.ModemStatus
	up       chan struct{} // open while a session serves sends; nil when none
	disabled bool
	fatal    error  // a SIM error that must not be retried, until Reset
	lastPath string // where the modem was last found
	firstErr error
	failures int // submits failed in a row

	// unsupported are the commands this modem said it does not know
	// (conn.unsupported), kept across sessions; used by run's goroutine
	// only, and forgotten at Reset and when another modem answers.
	unsupported map[string]bool
	// awaitLate is the part of a submit that timed out after its prompt,
	// whose late answer may still come (lateAnswers); rejectedPIN is the
	// fingerprint of a PIN the SIM rejected (pin.go).
	awaitLate   *simgate.LateSubmit
	rejectedPIN []byte
	// ussdSession is the USSD session the network keeps open, "" when none;
	// ussdPacked says the modem takes USSD strings packed (sendUSSD).
	ussdSession string
	ussdPacked  bool
	// resets counts the resets of the day (reset.go); meFailures the
	// submits in a row that failed with ME failure or operation not allowed.
	resets     *resetCounter
	meFailures int
	// balanceAt is when the balance was last read (balance.go); callAt the
	// last ring of an incoming call, callFrom its caller as +CLIP gave it,
	// callRejected whether it was rejected (calls.go).
	balanceAt    time.Time
	callAt       time.Time
	callFrom     string
	callRejected bool
	// input is the PDU being handled, named by the fault guard (guard);
	// poison are PDUs the driver failed on, handed on raw from then on;
	// foreignSeen are the messages on the SIM that are not simgate's
	// (receive.go). All three are used by run's goroutine only.
	input       string
	poison      map[string]bool
	foreignSeen map[storeLoc]string
}

type sendJob struct {
	ctx      context.Context
	to       string
	text     string
	notAfter time.Time // zero: none (simgate.SendRequest.NotAfter)
	result   chan sendResult
}

type sendResult struct {
	mrs []int
	err error
}

type ctlKind int

const (
	ctlReset ctlKind = iota + 1
	ctlProbe
	ctlClose
	ctlUSSD
)

type ctlReq struct {
	kind ctlKind
	ussd *ussdJob // for ctlUSSD
	done chan error
}

// Open starts the modem described by cfg and waits until it is connected and
// initialised, or the first attempt failed. On failure the modem is closed
// and the error returned; use a Pool to keep retrying in the background.
func Open(ctx context.Context, cfg Config, opts Options) (*Modem, error) {
	m := newModem(cfg, opts, nil)
	m.start()
	select {
	case <-m.first:
	case <-ctx.Done():
		m.Close()
		return nil, ctx.Err()
	}
	m.mu.Lock()
	err := m.firstErr
	m.mu.Unlock()
	if err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func newModem(cfg Config, opts Options, ps *ports) *Modem {
	cfg = cfg.withDefaults()
	opts = opts.withDefaults()
	if ps == nil {
		ps = newPorts()
	}
	m := &Modem{
		cfg:      cfg,
		opts:     opts,
		log:      opts.Logger.With("modem", cfg.Name),
		ports:    ps,
		enc:      newEncoder(cfg.Validity),
		asm:      newAssembler(),
		jobs:     make(chan *sendJob),
		ctl:      make(chan ctlReq),
		wake:     make(chan struct{}, 1),
		events:   make(chan Event, routedBuffer),
		first:    make(chan struct{}),
		disabled: cfg.Disabled,

		unsupported: map[string]bool{},
		resets:      newResetCounter(opts.MaxResetsPerDay, opts.Now),
		poison:      map[string]bool{},
		foreignSeen: map[storeLoc]string{},
	}
	m.ctx, m.stop = context.WithCancel(context.Background())
	m.st = simgate.ModemStatus{
		ID:       cfg.Name,
		State:    simgate.ModemStarting,
		Identity: simgate.ModemIdentity{IMEI: cfg.IMEI, ICCID: cfg.ICCID},
		Number:   cfg.Number,
		DailyCap: cfg.PerDay,
	}
	return m
}

func (m *Modem) start() {
	m.wg.Add(1)
	go m.run()
}

// Close stops the modem's goroutine, closes its port and waits. A
// connected modem is first told to store the status reports that come
// while nobody reads its port (handOver).
func (m *Modem) Close() error {
	m.mu.Lock()
	up := m.up
	m.mu.Unlock()
	if up != nil {
		ctx, cancel := context.WithTimeout(context.Background(), handOverTimeout)
		_ = m.control(ctx, ctlClose, up)
		cancel()
	}
	m.stop()
	m.wg.Wait()
	return nil
}

// handOverTimeout bounds what Close waits for the modem to hand over.
const handOverTimeout = 3 * time.Second

// errClosing ends a session that Close asked to end.
var errClosing = errors.New("closing")

// handOver switches status reports to stored (AT+CNMI <ds>=2) before the
// host lets go of a port that still answers, where the modem offers it and
// reports are routed: a routed report that comes while nobody reads the
// port (a restart, a reset) is lost in phase 1, while a stored one is read
// when the port is opened again (drainStores). The next session sets AT+CNMI
// up as usual.
func (m *Modem) handOver(ctx context.Context, c *conn) {
	if c.cnmi.ds != 1 || !c.cnmi.dsStored {
		return
	}
	s := c.cnmi
	s.ds = 2
	if _, err := c.cmd(ctx, "+CNMI="+s.String()); err != nil {
		m.log.Warn("cannot switch status reports to stored before letting go of the port; reports that come meanwhile may be lost", "error", err)
	}
}

// Name returns the configured name.
func (m *Modem) Name() string { return m.cfg.Name }

// Status returns a snapshot of the modem's state, identity, health and
// counters.
func (m *Modem) Status() simgate.ModemStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.st
	if m.disabled {
		s.State = simgate.ModemDisabled
		if s.Reason == "" {
			s.Reason = "disabled"
		}
	}
	return s
}

// Number returns the SIM's own number in E.164: configured, or read at the
// last connect; "" when unknown.
func (m *Modem) Number() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.Number
}

// Identity returns what the modem said it is; empty until it connected.
func (m *Modem) Identity() simgate.ModemIdentity {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.Identity
}

// usable reports whether the modem takes sends now, and its state.
func (m *Modem) usable() (bool, simgate.ModemState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.disabled {
		return false, simgate.ModemDisabled
	}
	ok := m.up != nil && (m.st.State == simgate.ModemReady || m.st.State == simgate.ModemDegraded)
	return ok, m.st.State
}

// setDisabled takes the modem out of rotation or puts it back.
func (m *Modem) setDisabled(d bool) {
	m.mu.Lock()
	m.disabled = d
	m.mu.Unlock()
}

// Reset clears a fatal SIM error or a quarantine and reconnects the modem
// from scratch (ATZ and a full initialisation).
func (m *Modem) Reset(ctx context.Context) error {
	return m.control(ctx, ctlReset, nil)
}

// control asks the modem's goroutine for kind and waits for its answer. A
// closed up (the session ended before the request was taken) is ErrNotReady.
func (m *Modem) control(ctx context.Context, kind ctlKind, up <-chan struct{}) error {
	return m.controlJob(ctx, ctlReq{kind: kind}, up)
}

// controlJob is control for a request that carries a job.
func (m *Modem) controlJob(ctx context.Context, req ctlReq, up <-chan struct{}) error {
	req.done = make(chan error, 1)
	select {
	case m.ctl <- req:
	case <-up:
		return &Error{Op: "probe", Class: simgate.ClassModemUnhealthy, Err: ErrNotReady}
	case <-ctx.Done():
		return ctx.Err()
	case <-m.ctx.Done():
		return ErrClosed
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RunOnce probes signal, registration and operator now, on the modem's
// goroutine, and handles pending indications. It is what the periodic probe
// does, for tests that switch it off.
func (m *Modem) RunOnce(ctx context.Context) error {
	m.mu.Lock()
	up := m.up
	m.mu.Unlock()
	if up == nil {
		return &Error{Op: "probe", Class: simgate.ClassModemUnhealthy, Err: ErrNotReady}
	}
	return m.control(ctx, ctlProbe, up)
}

// Send submits text to the number to (E.164) and returns the message
// reference (TP-MR) of each part, in order. A status report is requested for
// every part. On failure the error is an *Error whose Class says what to do;
// for a long message its Sent field lists the parts that went out before the
// failure. A submit that times out is simgate.ClassAmbiguous and is not resent.
// Cancelling ctx once the submit started also gives simgate.ClassAmbiguous.
func (m *Modem) Send(ctx context.Context, to, text string) ([]int, error) {
	return m.SendBefore(ctx, to, text, time.Time{})
}

// SendBefore is Send for a message that is not worth sending after notAfter
// (zero: always is). The modem's goroutine looks at the time when it takes
// the send up, just before AT+CMGS, so a send that waited behind another
// submit past notAfter fails with ErrExpired (simgate.ClassExpired) and
// nothing goes out.
func (m *Modem) SendBefore(ctx context.Context, to, text string, notAfter time.Time) ([]int, error) {
	m.mu.Lock()
	up, disabled := m.up, m.disabled
	m.mu.Unlock()
	switch {
	case disabled:
		return nil, &Error{Op: "submit", Class: simgate.ClassModemUnhealthy, Err: ErrDisabled}
	case up == nil:
		return nil, &Error{Op: "submit", Class: simgate.ClassModemUnhealthy, Err: ErrNotReady}
	}
	job := &sendJob{ctx: ctx, to: to, text: text, notAfter: notAfter, result: make(chan sendResult, 1)}
	select {
	case m.jobs <- job:
	case <-up:
		return nil, &Error{Op: "submit", Class: simgate.ClassModemUnhealthy, Err: ErrNotReady}
	case <-ctx.Done():
		return nil, &Error{Op: "submit", Class: simgate.ClassTransient, Err: ctx.Err()}
	case <-m.ctx.Done():
		return nil, &Error{Op: "submit", Class: simgate.ClassModemUnhealthy, Err: ErrClosed}
	}
	select {
	case r := <-job.result:
		return r.mrs, r.err
	case <-ctx.Done():
		return nil, &Error{Op: "submit", Class: simgate.ClassAmbiguous, Err: ctx.Err()}
	}
}

// run is the modem's goroutine: connect, serve, and reconnect with backoff.
func (m *Modem) run() {
	defer m.wg.Done()
	delivered := make(chan struct{})
	go m.deliverRouted(delivered)
	defer func() {
		close(m.events)
		<-delivered
	}()
	defer m.signalFirst(ErrClosed)
	ctx := m.ctx
	failures := 0
	for ctx.Err() == nil {
		if err := m.fatalErr(); err != nil {
			m.signalFirst(err)
			if !m.waitReset(ctx) {
				return
			}
			continue
		}
		c, err := m.connect(ctx)
		m.signalFirst(err)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if isFatal(err) {
				m.log.Error("modem stopped: not retried until reset", "error", err)
				m.setFatal(err)
				continue
			}
			failures++
			if errors.Is(err, errDriverFault) {
				failures = max(failures, m.opts.QuarantineAfter)
			}
			// A modem that is there but does not answer is reset before it
			// is quarantined: softly, then through USB where allowed.
			if failures >= m.opts.QuarantineAfter-2 && failures < m.opts.QuarantineAfter && notAnswering(err) {
				m.escalate(ctx, failures == m.opts.QuarantineAfter-2)
			}
			// Jitter keeps modems that failed together from retrying in
			// step (and probing each other's ports at the same moment).
			wait := simgate.Jitter(simgate.Backoff(m.opts.MinBackoff, m.opts.MaxBackoff, failures))
			reason := "cannot connect: " + err.Error()
			if failures >= m.opts.QuarantineAfter {
				wait = simgate.Jitter(m.opts.QuarantineFor)
				reason = fmt.Sprintf("quarantined after %d failed connects: %v", failures, err)
			}
			m.log.Warn("cannot connect", "error", err, "attempt", failures, "retry_in", wait)
			m.setState(simgate.ModemDown, reason, err)
			switch m.sleep(ctx, wait) {
			case wakeClosed:
				return
			case wakeReset, wakeDevice:
				// A device appeared or an admin asked: a fresh start.
				failures = 0
			}
			continue
		}
		failures = 0
		err = m.guard(c, func() error { return m.serve(ctx, c) })
		m.endSession()
		c.close()
		m.ports.release(c.claim)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errClosing) {
			<-ctx.Done() // Close cancels it next
			return
		}
		if errors.Is(err, errDriverFault) {
			m.setState(simgate.ModemDown, "quarantined: "+err.Error(), err)
			if m.sleep(ctx, simgate.Jitter(m.opts.QuarantineFor)) == wakeClosed {
				return
			}
			continue
		}
		if errors.Is(err, errReset) {
			m.forgetSession()
			m.setState(simgate.ModemStarting, "reset", nil)
			continue
		}
		m.log.Warn("modem lost; reconnecting", "error", err, "device", c.path)
		m.setState(simgate.ModemDown, "lost: "+err.Error(), err)
		if m.sleep(ctx, simgate.Jitter(m.opts.MinBackoff)) == wakeClosed {
			return
		}
	}
}

// forgetSession forgets what the modem learned of its port and its
// firmware, for a reset: where it was, what it does not support, the
// messages on its SIM that are not simgate's, and its claims.
func (m *Modem) forgetSession() {
	m.mu.Lock()
	m.lastPath = ""
	m.st.Foreign = nil
	m.mu.Unlock()
	clear(m.unsupported)
	clear(m.foreignSeen)
	m.ports.releaseAll(m)
}

// Wake ends a wait to reconnect, and a quarantine, of a modem that is not
// connected: its device may be back. It does not block.
func (m *Modem) Wake() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

var errReset = errors.New("reset requested")

func isFatal(err error) bool {
	return errors.Is(err, ErrWrongPIN) || errors.Is(err, ErrPUKRequired) || errors.Is(err, ErrPINRequired)
}

func (m *Modem) signalFirst(err error) {
	m.once.Do(func() {
		m.mu.Lock()
		m.firstErr = err
		m.mu.Unlock()
		close(m.first)
	})
}

func (m *Modem) fatalErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fatal
}

func (m *Modem) setFatal(err error) {
	m.mu.Lock()
	m.fatal = err
	m.st.State = simgate.ModemDown
	m.st.Reason = "SIM locked, not retried: " + err.Error()
	m.st.LastError = err.Error()
	m.mu.Unlock()
}

// waitReset waits for Reset (answering probes with an error meanwhile).
func (m *Modem) waitReset(ctx context.Context) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case req := <-m.ctl:
			if req.kind == ctlReset {
				m.mu.Lock()
				m.fatal = nil
				m.mu.Unlock()
				req.done <- nil
				return true
			}
			req.done <- &Error{Op: "probe", Class: simgate.ClassModemUnhealthy, Err: ErrNotReady}
		}
	}
}

// wakeReason is why sleep returned.
type wakeReason int

const (
	wakeTimer  wakeReason = iota // the time was up
	wakeReset                    // Reset was called
	wakeDevice                   // a device appeared (Wake)
	wakeClosed                   // ctx is done
)

// sleep waits d, or less when Reset or Wake is called, and says why it
// returned.
func (m *Modem) sleep(ctx context.Context, d time.Duration) wakeReason {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return wakeClosed
		case <-t.C:
			return wakeTimer
		case <-m.wake:
			return wakeDevice
		case req := <-m.ctl:
			if req.kind == ctlReset {
				m.forgetSession()
				req.done <- nil
				return wakeReset
			}
			req.done <- &Error{Op: "probe", Class: simgate.ClassModemUnhealthy, Err: ErrNotReady}
		}
	}
}

func (m *Modem) setState(s simgate.ModemState, reason string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.State = s
	m.st.Reason = reason
	if err != nil {
		m.st.LastError = err.Error()
	}
}

func (m *Modem) beginSession(path string, id simgate.ModemIdentity, number string, h health, warnings []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastPath = path
	m.st.Device = path
	m.st.Identity = id
	m.st.Number = number
	m.st.Warnings = warnings
	m.up = make(chan struct{})
	m.failures = 0
	m.applyHealth(h)
}

func (m *Modem) endSession() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.up != nil {
		close(m.up)
		m.up = nil
	}
}

// weakRSSI is the +CSQ <rssi> below which a modem is degraded: 0-4 is -113
// to -105 dBm, where vendors call the signal marginal and submits start to
// time out. The pool then prefers other modems. 99 (unknown) is not weak.
const weakRSSI = 5

// applyHealth records a probe. Called with m.mu held.
func (m *Modem) applyHealth(h health) {
	m.st.Operator = h.Operator
	m.st.AccessTech = h.AccessTech
	m.st.Registration = h.Registration
	m.st.SignalDBm, m.st.SignalBars = 0, 0
	if dbm, ok := simgate.RSSIToDBm(h.RSSI); ok {
		m.st.SignalDBm = dbm
		m.st.SignalBars = simgate.SignalBars(h.RSSI)
	}
	m.st.LastSeen = m.opts.Now()
	switch {
	case !h.Registered:
		m.st.State, m.st.Reason = simgate.ModemDegraded, "not registered: "+h.Registration
	case h.RSSI < weakRSSI:
		m.st.State, m.st.Reason = simgate.ModemDegraded, fmt.Sprintf("weak signal: %d dBm", m.st.SignalDBm)
	case m.tooManyResets() != "":
		m.st.State, m.st.Reason = simgate.ModemDegraded, m.tooManyResets()
	case m.failures > 0:
		m.st.State = simgate.ModemDegraded
		if m.st.Reason == "" {
			m.st.Reason = fmt.Sprintf("%d submits failed in a row", m.failures)
		}
	default:
		m.st.State, m.st.Reason = simgate.ModemReady, ""
	}
}

// connect finds the modem, opens its port and initialises it: first where
// it was last and at its configured device, then, for a modem bound by
// IMEI or ICCID, at the port the pool's search found it behind.
func (m *Modem) connect(ctx context.Context) (*conn, error) {
	m.setState(simgate.ModemStarting, "connecting", nil)
	paths := m.candidates()
	var lastErr error
	busy := 0
	for _, p := range paths {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c, err := m.tryClaimed(ctx, p)
		if err == nil {
			return c, nil
		}
		if errors.Is(err, errPortHeld) {
			busy++
			continue
		}
		lastErr = err
		if isFatal(err) {
			return nil, err
		}
		m.log.Debug("port not usable", "device", p, "error", err)
	}
	if !m.searching() {
		if lastErr == nil {
			if len(paths) == 0 {
				return nil, &Error{Op: "find modem", Class: simgate.ClassModemUnhealthy, Err: fmt.Errorf("%w: no device configured", ErrNotFound)}
			}
			return nil, &Error{Op: "find modem", Class: simgate.ClassModemUnhealthy, Err: fmt.Errorf("%s is held by another modem: %w", paths[0], ErrPortBusy)}
		}
		return nil, lastErr
	}
	imei, iccid := m.bound()
	p, err := m.ports.find(ctx, m, m.opts.Candidates, imei, iccid)
	if err == nil {
		c, err := m.tryClaimed(ctx, p)
		if err == nil {
			return c, nil
		}
		if isFatal(err) {
			return nil, err
		}
		lastErr = err
	} else if errors.Is(err, ErrNotAnswering) || lastErr == nil {
		lastErr = err
	}
	if errors.Is(lastErr, ErrNotAnswering) || errors.Is(lastErr, ErrTimeout) {
		return nil, &Error{Op: "find modem", Class: simgate.ClassModemUnhealthy, Err: fmt.Errorf("%w (%s): %w", ErrNotAnswering, m.wantIdentity(), lastErr)}
	}
	return nil, &Error{Op: "find modem", Class: simgate.ClassModemUnhealthy, Err: fmt.Errorf("%w (%s) among %d candidate ports (%d held by other modems); last: %w",
		ErrNotFound, m.wantIdentity(), len(expand(m.opts.Candidates)), busy, lastErr)}
}

// errPortHeld: another modem of the pool holds the port.
var errPortHeld = errors.New("port held by another modem")

// tryClaimed claims the port at p and opens the modem there; the claim goes
// with the conn, and is released when that fails.
func (m *Modem) tryClaimed(ctx context.Context, p string) (*conn, error) {
	cl, ok := m.ports.claim(p, m)
	if !ok {
		return nil, errPortHeld
	}
	c, err := m.tryPort(ctx, p)
	if err != nil {
		m.ports.release(cl)
		return nil, err
	}
	c.claim = cl
	return c, nil
}

// wantIdentity describes the identity looked for, for errors.
func (m *Modem) wantIdentity() string {
	imei, iccid := m.bound()
	var parts []string
	if imei != "" {
		parts = append(parts, "IMEI "+imei)
	}
	if iccid != "" {
		parts = append(parts, "ICCID "+iccid)
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, ", ")
}

// bound returns the identity the modem is bound to: configured, or learned
// when it first connected.
func (m *Modem) bound() (imei, iccid string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	imei, iccid = m.cfg.IMEI, m.cfg.ICCID
	if imei == "" && iccid == "" {
		imei = m.st.Identity.IMEI
	}
	return imei, iccid
}

// searching reports whether the modem is looked for by identity among
// candidate ports.
func (m *Modem) searching() bool {
	imei, iccid := m.bound()
	return imei != "" || iccid != ""
}

// candidates lists the ports to try first: where the modem was last, and
// the configured device (a glob for a modem bound only by its path).
func (m *Modem) candidates() []string {
	m.mu.Lock()
	last := m.lastPath
	m.mu.Unlock()
	var globs []string
	if last != "" {
		globs = append(globs, last)
	}
	if m.cfg.Device != "" {
		globs = append(globs, m.cfg.Device)
	}
	return expand(globs)
}

// tryPort opens p and initialises the modem there if it has the wanted
// identity.
func (m *Modem) tryPort(ctx context.Context, p string) (*conn, error) {
	c, err := openConn(p, m.cfg.Baud, m.opts.CommandTimeout)
	if err != nil {
		return nil, &Error{Op: "open port", Class: simgate.ClassModemUnhealthy, Err: err}
	}
	c.unsupported = m.unsupported
	// Close interrupts a command in flight by closing the port.
	stop := context.AfterFunc(ctx, func() { c.interrupt() })
	defer stop()
	if err := m.guard(c, func() error { return m.initialise(ctx, c) }); err != nil {
		m.endSession()
		c.close()
		return nil, err
	}
	return c, nil
}

// errDriverFault marks a session ended by a panic in the driver.
var errDriverFault = errors.New("driver fault on modem input")

// guard runs fn, the modem's work on port c, and turns a panic into an
// error: it is the last line of defence that keeps modem input from taking
// the process down. The log names the input (the PDU being handled, and the
// last answer read); the PDU is remembered and handed on raw from then on,
// so that a stored one does not fault the modem again at every start. The
// caller quarantines the modem.
func (m *Modem) guard(c *conn, fn func() error) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if m.input != "" {
			m.poison[m.input] = true
		}
		m.log.Error("driver fault on modem input; modem quarantined", "panic", r,
			"pdu", m.input, "last_answer", c.lastAnswer, "stack", string(debug.Stack()))
		err = &Error{Op: "handle modem input", Class: simgate.ClassModemUnhealthy, Err: fmt.Errorf("%w: %v", errDriverFault, r)}
		m.input = ""
	}()
	return fn()
}

// initialise checks the identity of the modem on c and sets it up for SMS.
func (m *Modem) initialise(ctx context.Context, c *conn) error {
	if err := c.handshake(ctx); err != nil {
		return fmt.Errorf("cannot initialise %s: %w", c.path, err)
	}
	id, err := c.identity(ctx, false)
	if err != nil {
		return fmt.Errorf("cannot identify %s: %w", c.path, err)
	}
	if prev := m.Identity().IMEI; prev != "" && prev != id.IMEI {
		clear(m.unsupported) // another modem: what the last one lacked says nothing
	}
	imei, iccid := m.bound()
	if imei != "" && id.IMEI != imei {
		return fmt.Errorf("%w: %s has IMEI %s, want %s", ErrNotFound, c.path, id.IMEI, imei)
	}
	if iccid != "" {
		if got := c.iccid(ctx); got != NormalizeICCID(iccid) {
			return fmt.Errorf("%w: %s has ICCID %q, want %s", ErrNotFound, c.path, got, iccid)
		}
	}
	// ATZ resets AT+CNMI among others: indications are configured after it
	// (defect 8).
	if err := c.reset(ctx); err != nil {
		return fmt.Errorf("cannot reset %s: %w", c.path, err)
	}
	if err := m.unlock(ctx, c); err != nil {
		return err
	}
	full, err := c.identity(ctx, true)
	if err != nil {
		return fmt.Errorf("cannot identify %s: %w", c.path, err)
	}
	number := m.cfg.Number
	if number == "" {
		if number = c.ownNumber(ctx); number == "" {
			m.log.Info("the SIM does not tell its number (AT+CNUM): it is not offered for missed calls until its number is configured", "device", c.path)
		}
	}
	cnmi, phase2, err := c.configureSMS(ctx, m.cfg.SMSC)
	if err != nil {
		return fmt.Errorf("cannot set up SMS on %s: %w", c.path, err)
	}
	h, err := c.probeHealth(ctx)
	if err != nil {
		return fmt.Errorf("cannot read network state on %s: %w", c.path, err)
	}
	c.cnmi, c.phase2 = cnmi, phase2
	var warnings []string
	if cnmi.ds == 0 {
		w := "no status reports: the modem offers only AT+CNMI <ds>=0, so no message can become delivered"
		m.log.Warn(w, "device", c.path)
		warnings = append(warnings, w)
	}
	m.beginSession(c.path, full, number, h, warnings)
	m.log.Info("modem ready", "device", c.path, "imei", full.IMEI, "iccid", full.ICCID, "number", number,
		"model", full.Model, "cnmi", cnmi.String(), "phase2", phase2,
		"operator", h.Operator, "registration", h.Registration, "rssi", h.RSSI)
	// Messages and reports that arrived while nobody listened.
	if err := m.drainStores(ctx, c); err != nil {
		m.log.Warn("cannot read stored messages", "error", err)
		if errors.Is(err, ErrPortClosed) || errors.Is(err, ErrTimeout) {
			m.endSession()
			return err
		}
	}
	return nil
}

// serve runs the session on c until the port goes away, the modem stops
// answering, or ctx is done.
func (m *Modem) serve(ctx context.Context, c *conn) error {
	stop := context.AfterFunc(ctx, func() { c.interrupt() })
	defer stop()
	var tick <-chan time.Time
	if m.opts.ProbeInterval > 0 {
		t := time.NewTicker(m.opts.ProbeInterval)
		defer t.Stop()
		tick = t.C
	}
	var balance *time.Timer
	var balanceC <-chan time.Time
	if m.cfg.Balance != nil {
		balance = time.NewTimer(m.balanceDue())
		defer balance.Stop()
		balanceC = balance.C
	}
	for {
		// Indications first: a report must not wait behind a queue of sends.
		select {
		case <-c.f.notify:
			if err := m.handleURCs(ctx, c); err != nil {
				return err
			}
			continue
		default:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closed():
			return &Error{Op: "read", Class: simgate.ClassModemUnhealthy, Err: ErrPortClosed}
		case <-c.f.notify:
			if err := m.handleURCs(ctx, c); err != nil {
				return err
			}
		case job := <-m.jobs:
			mrs, err := m.submit(ctx, c, job)
			job.result <- sendResult{mrs: mrs, err: err}
			if err := m.afterSubmit(ctx, c, job, err); err != nil {
				return err
			}
		case <-tick:
			if err := m.probe(ctx, c); err != nil {
				return err
			}
		case <-balanceC:
			if err := m.watchBalance(ctx, c); err != nil {
				return err
			}
			balance.Reset(m.balanceDue())
		case req := <-m.ctl:
			switch req.kind {
			case ctlReset:
				m.handOver(ctx, c)
				req.done <- nil
				return errReset
			case ctlClose:
				m.handOver(ctx, c)
				req.done <- nil
				return errClosing
			case ctlProbe:
				err := m.probe(ctx, c)
				req.done <- err
				if err != nil {
					return err
				}
			case ctlUSSD:
				err := m.runUSSD(ctx, c, req.ussd)
				req.done <- err
				if err != nil && sessionEnding(err) {
					return err
				}
			}
		}
	}
}

// probe reads the network state; a modem that does not answer is
// resynchronised, and reopened when that fails too.
func (m *Modem) probe(ctx context.Context, c *conn) error {
	if err := m.handleURCs(ctx, c); err != nil {
		return err
	}
	h, err := c.probeHealth(ctx)
	if err != nil {
		if errors.Is(err, ErrPortClosed) {
			return err
		}
		m.log.Warn("probe failed; resynchronising", "error", err)
		m.setState(simgate.ModemDegraded, "not answering: "+err.Error(), err)
		if rerr := c.resync(ctx); rerr != nil {
			return fmt.Errorf("modem hung: %w", rerr)
		}
		if h, err = c.probeHealth(ctx); err != nil {
			return fmt.Errorf("modem hung: %w", err)
		}
	}
	// A SIM reset or a brown-out locks the SIM again while the port stays
	// open: every submit would fail with +CMS ERROR: 311.
	if st, err := c.cpin(ctx); err == nil && (st == "SIM PIN" || st == "SIM PUK") {
		return m.relock(ctx, c)
	} else if err != nil && sessionEnding(err) {
		return err
	}
	m.mu.Lock()
	m.applyHealth(h)
	m.mu.Unlock()
	// Some modems store SMS without an indication (+CMTI lost, or a <mt>
	// they do not honour): the stores are listed now and then, not only at
	// connect.
	if m.opts.Now().Sub(c.listed) >= m.opts.ListInterval {
		if err := m.drainStores(ctx, c); err != nil && sessionEnding(err) {
			return err
		}
	}
	return m.expireParts(ctx, c)
}

// submit sends the parts of one message with AT+CMGS.
func (m *Modem) submit(ctx context.Context, c *conn, job *sendJob) ([]int, error) {
	if !job.notAfter.IsZero() && m.opts.Now().After(job.notAfter) {
		// Not the modem's failure: its state and counters stay as they are.
		return nil, &Error{Op: "submit", Class: simgate.ClassExpired, Err: ErrExpired}
	}
	pdus, err := encode(m.enc, job.to, job.text)
	if err != nil {
		return nil, &Error{Op: "submit", Class: simgate.ClassPermanentMessage, Err: err}
	}
	var mrs []int
	fail := func(e *Error) ([]int, error) {
		e.Sent, e.Parts = mrs, len(pdus)
		m.mu.Lock()
		m.st.Counters.Failed++
		m.st.LastError = e.Error()
		if e.Class != simgate.ClassPermanentRecipient && e.Class != simgate.ClassPermanentMessage {
			m.failures++
			m.st.State, m.st.Reason = simgate.ModemDegraded, e.Error()
		}
		m.mu.Unlock()
		return mrs, e
	}
	for _, p := range pdus {
		if err := job.ctx.Err(); err != nil {
			cl := simgate.ClassTransient
			return fail(&Error{Op: "submit", Class: cl, Err: err})
		}
		if ctx.Err() != nil {
			return fail(&Error{Op: "submit", Class: simgate.ClassModemUnhealthy, Err: ErrClosed})
		}
		mr, err := c.submitPart(p, cmdTimeout(job.ctx, m.cfg.SubmitTimeout))
		if err != nil {
			return fail(err)
		}
		mrs = append(mrs, mr)
		m.mu.Lock()
		m.st.Counters.Sent++
		m.st.LastSeen = m.opts.Now()
		m.mu.Unlock()
	}
	m.meFailures = 0
	m.mu.Lock()
	if m.failures > 0 {
		m.failures = 0
		if m.st.State == simgate.ModemDegraded && m.st.Registration != "" && !strings.HasPrefix(m.st.Reason, "not registered") {
			m.st.State, m.st.Reason = simgate.ModemReady, ""
		}
	}
	m.mu.Unlock()
	return mrs, nil
}

// submitPart submits one PDU with AT+CMGS and returns its message
// reference, the first field of the +CMGS answer (TS 27.005 §3.5.1; more
// may follow in phase 2+).
func (c *conn) submitPart(p submitPDU, timeout time.Duration) (int, *Error) {
	c.f.beginSubmit()
	info, err := c.at.SMSCommand("+CMGS="+strconv.Itoa(p.tlen), p.hex, at.WithTimeout(timeout))
	prompted := c.f.endSubmit()
	if err != nil {
		return 0, atError("submit", err, true, prompted)
	}
	v, ok := findPrefix(info, "+CMGS")
	mr, ok2 := atoi(fields(v)[0])
	if !ok || !ok2 {
		// OK without +CMGS: the PDU was written and accepted.
		return 0, &Error{Op: "submit", Class: simgate.ClassAmbiguous, Err: fmt.Errorf("%w: no +CMGS in %q", ErrMalformed, info)}
	}
	return mr, nil
}

// afterSubmit recovers the port after a failed submit: it waits for the late
// answer of a submit that timed out, resynchronises a modem that stopped
// answering, reinitialises one in the wrong state and unlocks a SIM that
// asks for its PIN again. A non-nil result ends the session (the port is
// reopened).
func (m *Modem) afterSubmit(ctx context.Context, c *conn, job *sendJob, err error) error {
	var e *Error
	if err == nil || !errors.As(err, &e) {
		return nil
	}
	switch {
	case errors.Is(e.Err, ErrPortClosed):
		return e
	case errors.Is(e.Err, ErrTimeout):
		if e.Class == simgate.ClassAmbiguous {
			// The at package sent ESC. If the modem did send the message, its
			// answer comes late; the filter keeps it from answering the next
			// command. Wait a little for it, then resynchronise.
			m.setState(simgate.ModemDegraded, "submit timed out; waiting for its late answer", e)
			m.awaitLate = &simgate.LateSubmit{ModemID: m.cfg.Name, To: job.to, Part: len(e.Sent)}
			t := time.NewTimer(m.opts.LateWait)
			select {
			case <-c.f.lateSeen:
			case <-t.C:
			case <-c.closed():
			case <-ctx.Done():
			}
			t.Stop()
			m.lateAnswers(ctx, c)
		}
		if rerr := c.resync(ctx); rerr != nil {
			return fmt.Errorf("modem hung after a submit timeout: %w", rerr)
		}
	case simLocked(e):
		return m.relock(ctx, c)
	case e.CMS == 302 || e.CMS == 300:
		// Operation not allowed / ME failure: the modem lost its setup, or
		// its firmware is stuck. Setting it up again helps the first; when
		// the next submit fails the same way, only a reset does.
		m.meFailures++
		if m.meFailures >= 2 {
			m.meFailures = 0
			return m.softResetInSession(ctx, c, e)
		}
		m.log.Warn("modem in the wrong state; reinitialising", "error", e)
		if rerr := m.reinit(ctx, c); rerr != nil {
			return rerr
		}
	}
	return nil
}

// lateAnswers hands on the late "+CMGS: <mr>" answers the filter took: the
// part of the submit that timed out did go out, and its reference lets its
// status report be matched (EventLateSubmit).
func (m *Modem) lateAnswers(ctx context.Context, c *conn) {
	for _, mr := range c.f.takeLate() {
		late := m.awaitLate
		m.awaitLate = nil
		if late == nil {
			m.log.Warn("late +CMGS answer, but no submit of this session timed out; not matched", "mr", mr)
			continue
		}
		m.log.Warn("late +CMGS answer after a submit timeout: the message went out", "mr", mr, "part", late.Part)
		late.MR, late.At = mr, m.opts.Now()
		ev := Event{Kind: EventLateSubmit, ModemID: m.cfg.Name, Identity: m.Identity(), Late: late}
		if err := m.deliver(ctx, ev, false); err != nil {
			m.log.Error("late +CMGS answer not taken by the subscriber; its status report will not match", "mr", mr, "error", err)
		}
	}
}

// simLocked reports whether e says the SIM wants its PIN (or PUK) again
// (TS 27.005 §3.2.5: 311 SIM PIN, 312 PH-SIM PIN, 316 SIM PUK, 317 SIM
// PIN2, 318 SIM PUK2; TS 27.007 §9.2: 11 SIM PIN, 12 SIM PUK), as after a
// SIM reset or a brown-out on a modem whose port stayed open.
func simLocked(e *Error) bool {
	switch e.CMS {
	case 311, 312, 316, 317, 318:
		return true
	}
	return e.CME == 11 || e.CME == 12
}

// relock takes a modem whose SIM asks for its PIN again out of rotation,
// enters the configured PIN once (never one the SIM rejected), sets SMS up
// again and puts it back. A SIM that wants its PUK, or rejects the PIN,
// stops the modem until Reset.
func (m *Modem) relock(ctx context.Context, c *conn) error {
	m.setState(simgate.ModemDown, "SIM locked again; unlocking", nil)
	m.log.Warn("SIM asks for its PIN again; unlocking it")
	if err := m.unlock(ctx, c); err != nil {
		if isFatal(err) {
			m.setFatal(err)
		}
		return err
	}
	if err := m.reinit(ctx, c); err != nil {
		return err
	}
	h, err := c.probeHealth(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.failures = 0 // the submits failed for the lock, which is gone
	m.applyHealth(h)
	m.mu.Unlock()
	m.log.Info("SIM unlocked again; modem back in rotation")
	return nil
}

// reinit runs ATZ and the SMS setup again on an open port.
func (m *Modem) reinit(ctx context.Context, c *conn) error {
	if err := c.reset(ctx); err != nil {
		return err
	}
	cnmi, phase2, err := c.configureSMS(ctx, m.cfg.SMSC)
	if err != nil {
		return err
	}
	c.cnmi, c.phase2, c.mem = cnmi, phase2, ""
	return nil
}
