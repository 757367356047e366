package queue

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/simgate/simgate"
)

// Sender sends one message through a modem. modem.Pool satisfies it. Send
// blocks for the whole submit; on failure its error carries a
// simgate.SendClass (simgate.SendClassOf) and, for a long message, the
// references of the parts that went out (simgate.SentParts). An error that
// matches simgate.ErrNoSender says that no modem could even be asked.
type Sender interface {
	Send(ctx context.Context, req simgate.SendRequest) (simgate.Receipt, error)
}

// Store keeps the queue. store.DB satisfies it. The rules are the queue's
// (state.go, report.go): the store only reads and writes, in a transaction
// the queue runs its rules in (UpdateMessages) or alone.
type Store interface {
	// UpdateMessages runs fn in one write transaction, committed when fn
	// returns nil and rolled back otherwise.
	UpdateMessages(ctx context.Context, fn func(simgate.MessageTx) error) error
	// CountDue returns how many queued messages are due now.
	CountDue(ctx context.Context) (int, error)
	// NextScheduled returns the earliest SendAt of the scheduled messages;
	// zero when none is scheduled.
	NextScheduled(ctx context.Context) (time.Time, error)
	// FindMessage returns a message with its parts and events;
	// simgate.CodeNotFound when none.
	FindMessage(ctx context.Context, id string) (*simgate.Message, error)
	// ListMessages returns a page of messages, newest first, and the cursor
	// of the next; simgate.CodeInvalid for a bad cursor or status.
	ListMessages(ctx context.Context, f simgate.MessageFilter) ([]*simgate.Message, string, error)
	// QueueStats returns the queue's depth and age, and the reports and late
	// submit answers received since since.
	QueueStats(ctx context.Context, since time.Time) (simgate.QueueStats, error)
	// CreateInboundMessage stores a received SMS; simgate.CodeInvalid for
	// one without a modem.
	CreateInboundMessage(ctx context.Context, m *simgate.InboundMessage) error
	// SetOptOut records or lifts the opt-out of number; both are
	// idempotent.
	SetOptOut(ctx context.Context, number, keyword string, out bool) error
	// RunExclusive runs fn unless another node sharing the database runs
	// the duty of the same name, and reports whether fn ran.
	RunExclusive(ctx context.Context, duty string, fn func(context.Context) error) (bool, error)
}

// Observer is told what the sweep resolves (see Dispatcher.Observe), for
// metrics. It runs on the dispatcher's goroutines and must not block.
// *metrics.Metrics satisfies it.
type Observer interface {
	// ReportsMissing counts sent messages closed because no status report
	// came within the report window.
	ReportsMissing(n int)
}

// MaxParts is the most SMS one message may take.
const MaxParts = 10

// Bounds of Message.SendAt (see Enqueue).
const (
	// MaxScheduleAhead is how far ahead a message may be scheduled.
	MaxScheduleAhead = 365 * 24 * time.Hour
	// ScheduleTolerance is how far in the past a SendAt may be and still
	// mean "now": the client's clock, or its request, may be a little late.
	ScheduleTolerance = time.Minute
)

// Defaults of Options fields left zero.
const (
	DefaultWorkers       = 4
	DefaultMaxAttempts   = 5
	DefaultRetryBackoff  = 5 * time.Second
	DefaultMaxBackoff    = 5 * time.Minute
	DefaultLease         = 10 * time.Minute
	DefaultReportWindow  = 72 * time.Hour
	DefaultCloseTimeout  = 30 * time.Second
	DefaultStatsWindow   = 24 * time.Hour
	DefaultSweepInterval = time.Second // what cmd should use; the zero value means off
	// A message that finds no modem to ask is tried again after 1 s, then
	// 2 s, 4 s, 5 s, 5 s...: while every modem is out, one probe every 5 s,
	// for the whole queue (waitForModem), costs two small
	// transactions, and ModemReady does not wait for it: it is only what
	// finds a modem whose return no state change announces (a cap that
	// freed up).
	DefaultNoModemBackoff    = time.Second
	DefaultNoModemMaxBackoff = 5 * time.Second
)

// Options configure a Dispatcher. Store and Sender are required.
type Options struct {
	Store  Store
	Sender Sender
	// Logger receives the queue's log lines; the caller names the component
	// (the dispatcher adds only its node).
	Logger *slog.Logger
	// Now is the clock (default time.Now). Give the store the same one.
	Now simgate.Clock
	// NodeID names this dispatcher in leases (default "local"). Nodes
	// sharing a database need distinct ids.
	NodeID string
	// Workers is how many messages may be with the Sender at once (default
	// DefaultWorkers). Set it to the number of modems; see SetWorkers.
	Workers int
	// MaxAttempts bounds the submits of one message (default
	// DefaultMaxAttempts); the Sender's own failover does not count.
	MaxAttempts int
	// RetryBackoff is the wait after the first failed attempt, doubled after
	// each further one up to MaxBackoff.
	RetryBackoff, MaxBackoff time.Duration
	// NoModemBackoff is the wait after a send that found no modem to ask
	// (simgate.ErrNoSender), doubled while no modem is found up to
	// NoModemMaxBackoff, less up to a quarter of jitter (defaults
	// DefaultNoModemBackoff, DefaultNoModemMaxBackoff).
	NoModemBackoff, NoModemMaxBackoff time.Duration
	// SweepInterval is how often the sweeper runs; 0 switches it off (tests
	// call RunOnce).
	SweepInterval time.Duration
	// Lease is how long a claim holds a message (default DefaultLease)
	// unless the dispatcher renews it: the sweep renews the leases of the
	// submits in flight once a third of it has passed. Another node takes
	// a lease that ran out as a sign that its holder stopped (Recover): it
	// must exceed the longest the sweep may stall (the database failing
	// over, say).
	Lease time.Duration
	// ResendUnknown queues messages found in sending at Open again instead of
	// marking them unknown. It risks duplicates.
	ResendUnknown bool
	// ReportWindow is how long after its submit a status report may still be
	// matched to a part (default DefaultReportWindow).
	ReportWindow time.Duration
	// DefaultExpiry, when positive, is given to messages without an expiry.
	DefaultExpiry time.Duration
	// CloseTimeout bounds how long Close waits for submits in flight
	// (default DefaultCloseTimeout); after it they are cancelled, which makes
	// them ambiguous.
	CloseTimeout time.Duration
	// Ready, when set, is asked before each claim: a worker claims only
	// while Ready says that the Sender has a modem that can take a message,
	// and otherwise waits for ModemReady (or the sweep). Nodes sharing a
	// database set it, so that a node whose modems are all out leaves the
	// queue to the others instead of claiming messages it would only give
	// back; alone, a dispatcher leaves it nil and a send that finds no modem
	// makes the queue wait (see waitForModem).
	Ready func() bool
	// Elsewhere, when set, names the modems of other nodes sharing the
	// database that can send now: a resend whose verification's earlier SMS
	// went out through one of them is left to its node (see Claim).
	Elsewhere func() []string
	// SealKey (32 bytes) seals the texts of verification SMS in the store,
	// which hold codes (see seal.go). Give the same key on every start, or
	// queued codes cannot be sent after a restart (they fail); nil: a random
	// key per process.
	SealKey []byte
}

// Dispatcher is the queue. Its methods are safe for concurrent use.
type Dispatcher struct {
	opts Options
	seal *sealer
	log  *slog.Logger
	wake chan struct{}
	// rearm makes the scheduler look for the earliest scheduled message
	// again and arm its timer for it (one token is enough).
	rearm chan struct{}

	ctx        context.Context // claiming; cancelled by Close
	cancel     context.CancelFunc
	sendCtx    context.Context // submits in flight; cancelled after CloseTimeout
	sendCancel context.CancelFunc
	wg         sync.WaitGroup

	mu      sync.Mutex
	opened  bool
	closed  bool
	workers []chan struct{} // closed to stop one worker
	// noModem counts the sends in a row that found no modem to ask; it sets
	// their backoff. A send that reached a modem, or ModemReady, resets it.
	noModem int
	// armedAt is when the scheduler's timer fires; zero while it is not
	// armed, and while the scheduler looks for the earliest message.
	armedAt time.Time
	// pausedUntil is, on a database shared with other nodes (Ready set),
	// when this node claims again after a send that found no modem here;
	// ModemReady ends the pause.
	pausedUntil time.Time
	// inflight counts the messages this dispatcher holds in sending;
	// renewedAt is when the sweep last renewed their leases.
	inflight  int
	renewedAt time.Time

	observers []Observer // guarded by mu
}

// Observe adds o to those told what the sweep resolves from now on.
// Observers subscribe after the dispatcher is made, so that what observes
// it (metrics, which also reads the queue) can be made with it.
func (d *Dispatcher) Observe(o Observer) {
	d.mu.Lock()
	d.observers = append(d.observers, o)
	d.mu.Unlock()
}

// New returns a Dispatcher; Open starts it.
func New(opts Options) (*Dispatcher, error) {
	seal, err := newSealer(opts.SealKey)
	if err != nil {
		return nil, fmt.Errorf("cannot create dispatcher: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NodeID == "" {
		opts.NodeID = "local"
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = DefaultRetryBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.NoModemBackoff <= 0 {
		opts.NoModemBackoff = DefaultNoModemBackoff
	}
	if opts.NoModemMaxBackoff <= 0 {
		opts.NoModemMaxBackoff = DefaultNoModemMaxBackoff
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.ReportWindow <= 0 {
		opts.ReportWindow = DefaultReportWindow
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = DefaultCloseTimeout
	}
	d := &Dispatcher{
		opts:  opts,
		seal:  seal,
		log:   opts.Logger.With("node", opts.NodeID),
		wake:  make(chan struct{}, 256),
		rearm: make(chan struct{}, 1),
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.sendCtx, d.sendCancel = context.WithCancel(context.Background())
	return d, nil
}

// Open recovers from a previous run, then starts the workers, the
// scheduler and the sweeper. Messages left in sending under this node's
// lease, or an expired one, become unknown (or queued with ResendUnknown);
// queued messages are claimed again; scheduled messages whose time came
// while simgate was stopped are queued at once, and the scheduler's timer is
// armed for the next.
func (d *Dispatcher) Open(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.opened || d.closed {
		return fmt.Errorf("cannot open queue: already opened")
	}
	n, err := d.recover(ctx, d.opts.NodeID)
	if err != nil {
		return fmt.Errorf("cannot open queue: %w", err)
	}
	if n > 0 {
		d.log.Warn("messages were being sent when simgate stopped", "count", n, "resend", d.opts.ResendUnknown)
	}
	d.opened = true
	d.setWorkers(d.opts.Workers)
	d.wg.Add(1)
	go d.scheduler()
	if d.opts.SweepInterval > 0 {
		d.wg.Add(1)
		go d.sweeper()
	}
	d.wakeN(d.opts.Workers)
	return nil
}

// SetWorkers changes how many messages may be with the Sender at once, e.g.
// after modems were added or removed. Workers beyond n stop after their
// current submit.
func (d *Dispatcher) SetWorkers(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.opts.Workers = max(n, 1)
	if d.opened && !d.closed {
		d.setWorkers(d.opts.Workers)
	}
}

// setWorkers starts or stops workers to have n. Called with d.mu held.
func (d *Dispatcher) setWorkers(n int) {
	for len(d.workers) < n {
		stop := make(chan struct{})
		d.workers = append(d.workers, stop)
		d.wg.Add(1)
		go d.worker(stop)
	}
	for len(d.workers) > n {
		close(d.workers[len(d.workers)-1])
		d.workers = d.workers[:len(d.workers)-1]
	}
}

// Close stops claiming messages, waits up to Options.CloseTimeout for the
// submits in flight to finish and be recorded, then cancels the rest (their
// messages end unknown) and waits for every goroutine.
func (d *Dispatcher) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d.opts.CloseTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		d.log.Warn("submits still in flight at close; cancelling them")
		d.sendCancel()
		<-done
	}
	d.sendCancel()
	return nil
}

// wakeN offers up to n wake-up tokens to idle workers.
func (d *Dispatcher) wakeN(n int) {
	for range n {
		select {
		case d.wake <- struct{}{}:
		default:
			return
		}
	}
}

// worker claims and sends one message at a time until stop is closed or the
// dispatcher closes.
func (d *Dispatcher) worker(stop chan struct{}) {
	defer d.wg.Done()
	var m *simgate.Message
	for {
		if m == nil {
			select {
			case <-stop:
				return
			case <-d.ctx.Done():
				return
			default:
			}
			if d.mayClaim() {
				var err error
				if m, err = d.finishAndClaim(d.ctx, "", simgate.SendOutcome{}, true); err != nil {
					if d.ctx.Err() == nil {
						d.log.Error("cannot claim message", "error", err)
						d.pause(stop, time.Second)
					}
					continue
				}
			}
			if m == nil {
				// Nothing due, or no modem here to send it: wait to be woken,
				// or for the end of a pause after a send that found none.
				pauseEnd, stopTimer := d.pauseEnd()
				select {
				case <-d.wake:
				case <-pauseEnd:
				case <-stop:
					stopTimer()
					return
				case <-d.ctx.Done():
					stopTimer()
					return
				}
				stopTimer()
				continue
			}
			// There may be more: let another idle worker look.
			d.wakeN(1)
			d.hold(1)
		}
		o := d.send(m)
		if m = d.finish(m, o, stop); m == nil {
			d.hold(-1)
		}
	}
}

// mayClaim reports whether this node may claim a message now: alone,
// always; on a shared database (Ready set), while a modem here can take one
// and no pause after a send that found none is running.
func (d *Dispatcher) mayClaim() bool {
	if d.opts.Ready == nil {
		return true
	}
	d.mu.Lock()
	paused := d.opts.Now().Before(d.pausedUntil)
	d.mu.Unlock()
	return !paused && d.opts.Ready()
}

// pauseEnd returns a channel that fires when this node's pause after a send
// that found no modem ends (nil, which never fires, when none runs), and
// the function that stops its timer.
func (d *Dispatcher) pauseEnd() (<-chan time.Time, func()) {
	d.mu.Lock()
	left := d.pausedUntil.Sub(d.opts.Now())
	d.mu.Unlock()
	if left <= 0 {
		return nil, func() {}
	}
	t := time.NewTimer(left)
	return t.C, func() { t.Stop() }
}

// hold counts n more (or fewer) messages held in sending by this
// dispatcher's workers, whose leases the sweep renews.
func (d *Dispatcher) hold(n int) {
	d.mu.Lock()
	d.inflight += n
	d.mu.Unlock()
}

// pause waits for d, or until stop or close.
func (d *Dispatcher) pause(stop chan struct{}, dur time.Duration) {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop:
	case <-d.ctx.Done():
	}
}

// send submits m and turns the answer into an outcome.
func (d *Dispatcher) send(m *simgate.Message) simgate.SendOutcome {
	text, err := d.seal.open(m.Text, m.To, m.VerificationID)
	if err != nil {
		return simgate.SendOutcome{Status: simgate.StatusFailed, Reason: err.Error()}
	}
	rc, err := d.opts.Sender.Send(d.sendCtx, simgate.SendRequest{To: m.To, Text: text, StickyKey: m.VerificationID,
		NotAfter: m.ExpiresAt})
	// A Sender that sent parts before it found no modem for the rest did
	// make an attempt: only a send that asked no modem at all waits.
	if errors.Is(err, simgate.ErrNoSender) && len(simgate.SentParts(err)) == 0 {
		return d.noModemOutcome(m, err)
	}
	d.mu.Lock()
	d.noModem = 0
	d.mu.Unlock()
	if err == nil {
		mrs := make([]string, len(rc.MRs))
		for i, mr := range rc.MRs {
			mrs[i] = fmt.Sprint(mr)
		}
		return simgate.SendOutcome{Status: simgate.StatusSent, ModemID: rc.ModemID, MRs: rc.MRs, SentAt: rc.SentAt,
			Reason: fmt.Sprintf("submitted by %s (MR %s)", rc.ModemID, strings.Join(mrs, ","))}
	}
	class := simgate.SendClassOf(err)
	sent := simgate.SentParts(err)
	o := simgate.SendOutcome{MRs: sent, ModemID: rc.ModemID, Reason: fmt.Sprintf("%s: %v", class, err)}
	now := d.opts.Now()
	switch {
	case class == simgate.ClassExpired:
		// It waited for a modem past its own or its verification's expiry.
		o.Status, o.Reason = simgate.StatusExpired, "expired before it could be sent (it waited for a busy modem)"
	case class == simgate.ClassAmbiguous:
		o.Status, o.Ambiguous = simgate.StatusUnknown, true
		o.Reason = fmt.Sprintf("may have been sent, not resent (%s: %v)", class, err)
	case len(sent) > 0:
		o.Status = simgate.StatusFailed
		o.Reason = fmt.Sprintf("%d parts sent, then %s: %v; not resent", len(sent), class, err)
	case class.Retryable() && m.Attempts < d.opts.MaxAttempts:
		wait := simgate.Backoff(d.opts.RetryBackoff, d.opts.MaxBackoff, m.Attempts)
		o.Status, o.RetryAt = simgate.StatusQueued, now.Add(wait)
		o.Reason = fmt.Sprintf("retry in %v after attempt %d (%s: %v)", wait, m.Attempts, class, err)
	case class.Retryable():
		o.Status = simgate.StatusFailed
		o.Reason = fmt.Sprintf("gave up after %d attempts (%s: %v)", m.Attempts, class, err)
	default:
		o.Status = simgate.StatusFailed
	}
	d.log.Info("send failed", "message", m.ID, "class", class.String(), "status", o.Status, "error", err)
	return o
}

// noModemOutcome is the outcome of a send of m that found no modem to ask
// (err matches simgate.ErrNoSender). It was no attempt: it does not count
// against MaxAttempts, and m, with every other message that is due, waits
// until the backoff passes or ModemReady, and at most until it expires (see
// waitForModem). On a database shared with other nodes (Ready set), only
// this node waits: it claims nothing until the backoff passes or
// ModemReady, and the messages stay due for the other nodes' modems.
func (d *Dispatcher) noModemOutcome(m *simgate.Message, err error) simgate.SendOutcome {
	now := d.opts.Now()
	d.mu.Lock()
	d.noModem++
	n := d.noModem
	wait := simgate.Backoff(d.opts.NoModemBackoff, d.opts.NoModemMaxBackoff, n)
	wait -= rand.N(wait/4 + 1)
	retryAt := now.Add(wait)
	if d.opts.Ready != nil {
		d.pausedUntil, retryAt = retryAt, now
	}
	d.mu.Unlock()
	if n == 1 {
		d.log.Warn("no modem can take messages; they wait for one", "message", m.ID, "error", err)
	} else {
		d.log.Debug("still no modem", "message", m.ID, "retry_in", wait, "error", err)
	}
	return simgate.SendOutcome{Status: simgate.StatusQueued, NoModem: true, RetryAt: retryAt,
		Reason: "waiting for a modem: " + err.Error()}
}

// ModemReady tells the dispatcher that a modem became ready (or usable
// again): the messages waiting for a modem are tried at once rather than
// after their backoff. The modem pool's state observer calls it. It returns
// the store's error.
func (d *Dispatcher) ModemReady(ctx context.Context) error {
	d.mu.Lock()
	d.noModem = 0
	d.pausedUntil = time.Time{}
	workers := d.opts.Workers
	d.mu.Unlock()
	n, err := d.count(ctx, func(ctx context.Context, tx simgate.MessageTx) (int, error) {
		return tx.WakeWaitingMessages(ctx)
	})
	if err != nil {
		return err
	}
	if n > 0 {
		d.log.Info("a modem is ready; messages waiting for one are due", "count", n)
	}
	d.wakeN(workers)
	return nil
}

// finish records o for m and, unless the worker should stop, claims the
// next message in the same transaction. It keeps trying to record o while
// the database fails, for up to the lease: a message left in sending would
// end unknown.
func (d *Dispatcher) finish(m *simgate.Message, o simgate.SendOutcome, stop chan struct{}) *simgate.Message {
	deadline := time.Now().Add(d.opts.Lease)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		stopping := d.ctx.Err() != nil
		select {
		case <-stop:
			stopping = true
		default:
		}
		var next *simgate.Message
		var err error
		if !stopping {
			next, err = d.finishAndClaim(context.WithoutCancel(d.ctx), m.ID, o, d.mayClaim())
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = d.finishAndClaim(ctx, m.ID, o, false)
			cancel()
		}
		if err == nil {
			if next != nil {
				d.wakeN(1)
			}
			return next
		}
		d.log.Error("cannot record send outcome", "message", m.ID, "error", err)
		if time.Now().After(deadline) || stopping {
			return nil
		}
		time.Sleep(wait)
	}
}

// finishAndClaim records the outcome o of the send of message id (Finish;
// nothing when id is "") and, when claim is true, claims the next message
// that is due for this node (Claim; nil when none is), in one transaction: a
// worker between two submits pays for one commit.
func (d *Dispatcher) finishAndClaim(ctx context.Context, id string, o simgate.SendOutcome, claim bool) (*simgate.Message, error) {
	var next *simgate.Message
	if err := d.opts.Store.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		if id != "" {
			if err := Finish(ctx, tx, id, o); err != nil {
				return err
			}
		}
		if !claim {
			return nil
		}
		var err error
		var elsewhere []string
		if d.opts.Elsewhere != nil {
			elsewhere = d.opts.Elsewhere()
		}
		next, err = Claim(ctx, tx, d.opts.NodeID, d.opts.Lease, elsewhere)
		return err
	}); err != nil {
		return nil, err
	}
	return next, nil
}

// sweeper runs RunOnce every SweepInterval until Close.
func (d *Dispatcher) sweeper() {
	defer d.wg.Done()
	t := time.NewTicker(d.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
			if err := d.RunOnce(d.ctx); err != nil && d.ctx.Err() == nil {
				d.log.Error("queue sweep failed", "error", err)
			}
		}
	}
}

// RunOnce does what the periodic sweep does. It renews the leases of this
// dispatcher's submits in flight once a third of the lease has passed.
// Then, unless another node sharing the database is doing it (the duty
// "queue sweep"), it gives up on sending messages whose lease expired
// (unknown, or queued with ResendUnknown), finishes scheduled and queued
// messages that expired, queues scheduled messages whose time came (the
// scheduler's timer does that on time; this is only the fallback), and
// closes sent messages whose status reports did not come within
// ReportWindow (they stay sent; Observer.ReportsMissing counts them).
// Last, it wakes workers for the messages that are due (retries that fell
// due, and anything an event missed): as many as there are messages, up to
// one per worker, since a worker that claims one wakes another.
func (d *Dispatcher) RunOnce(ctx context.Context) error {
	if err := d.renew(ctx); err != nil {
		return err
	}
	if _, err := d.opts.Store.RunExclusive(ctx, "queue sweep", d.sweep); err != nil {
		return err
	}
	n, err := d.opts.Store.CountDue(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	workers := d.opts.Workers
	d.mu.Unlock()
	d.wakeN(min(n, workers))
	return nil
}

// renew moves the leases of the messages this dispatcher holds in sending
// to a whole lease from now, when a third of the lease passed since it last
// did; nothing when it holds none.
func (d *Dispatcher) renew(ctx context.Context) error {
	now := d.opts.Now()
	d.mu.Lock()
	due := d.inflight > 0 && now.Sub(d.renewedAt) >= d.opts.Lease/3
	d.mu.Unlock()
	if !due {
		return nil
	}
	if _, err := d.count(ctx, func(ctx context.Context, tx simgate.MessageTx) (int, error) {
		return tx.RenewLeases(ctx, d.opts.NodeID, tx.Now().Add(d.opts.Lease))
	}); err != nil {
		return err
	}
	d.mu.Lock()
	d.renewedAt = now
	d.mu.Unlock()
	return nil
}

// sweep is the part of RunOnce that one node does at a time.
func (d *Dispatcher) sweep(ctx context.Context) error {
	if n, err := d.recover(ctx, ""); err != nil {
		return err
	} else if n > 0 {
		d.log.Warn("leases expired on messages being sent", "count", n)
	}
	if _, err := d.count(ctx, Expire); err != nil {
		return err
	}
	if n, err := d.count(ctx, ReleaseScheduled); err != nil {
		return err
	} else if n > 0 {
		d.log.Info("the sweep found scheduled messages due", "count", n)
	}
	if n, err := d.count(ctx, func(ctx context.Context, tx simgate.MessageTx) (int, error) {
		return CloseMissingReports(ctx, tx, d.opts.ReportWindow)
	}); err != nil {
		return err
	} else if n > 0 {
		d.log.Info("no status report came for sent messages", "count", n, "window", d.opts.ReportWindow)
		d.mu.Lock()
		observers := d.observers
		d.mu.Unlock()
		for _, o := range observers {
			o.ReportsMissing(n)
		}
	}
	return nil
}

// recover runs Recover for owner ("": expired leases only) in a transaction
// of its own.
func (d *Dispatcher) recover(ctx context.Context, owner string) (int, error) {
	return d.count(ctx, func(ctx context.Context, tx simgate.MessageTx) (int, error) {
		return Recover(ctx, tx, owner, d.opts.ResendUnknown)
	})
}

// count runs fn in a transaction of its own and returns the count fn
// returned, once committed.
func (d *Dispatcher) count(ctx context.Context, fn func(context.Context, simgate.MessageTx) (int, error)) (int, error) {
	var n int
	if err := d.opts.Store.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		var err error
		n, err = fn(ctx, tx)
		return err
	}); err != nil {
		return 0, err
	}
	return n, nil
}

// Enqueue validates m and stores it as queued, with its parts planned from
// the text, then wakes an idle worker. A message with a SendAt still ahead
// is stored as scheduled instead: the scheduler queues it at that time (see
// scheduler). m.Priority defaults to normal, or verification for a message
// with a VerificationID; m.ExpiresAt to Options.DefaultExpiry after SendAt,
// or after now. With an IdempotencyKey that the same API key used before,
// for the same request, *m becomes the stored message and nothing else
// happens; for a different request the error has simgate.CodeConflict.
// Other errors: simgate.CodeInvalid for a bad message (plan lists the rules),
// simgate.CodeForbidden for a recipient that opted out (verification codes
// excepted).
func (d *Dispatcher) Enqueue(ctx context.Context, m *simgate.Message) error {
	if err := d.plan(m); err != nil {
		return err
	}
	// A request hash is only needed to tell idempotent retries apart, and
	// a hash of a text with a code in it could be brute-forced.
	var hash []byte
	if m.IdempotencyKey != "" {
		hash = requestHash(m)
	}
	if m.VerificationID != "" {
		m.Text = d.seal.seal(m.Text, m.To, m.VerificationID)
	}
	var created bool
	if err := d.opts.Store.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		var err error
		created, err = Create(ctx, tx, m, hash)
		return err
	}); err != nil {
		return err
	}
	switch {
	case created && m.Status == simgate.StatusScheduled:
		d.scheduled(m.SendAt)
	case created:
		d.wakeN(1)
	}
	return nil
}

// Prepare readies a verification's SMS for a caller that stores it itself,
// in the same transaction as the verification (simgate.VerificationTx's
// CreateMessage): it validates m, fills in its defaults, plans its parts,
// seals its text and gives it the state a new message starts in (queued;
// a verification's SMS is never scheduled), as Enqueue does. Call Wake once
// it is committed. It returns simgate.CodeInvalid for a bad message or one
// without a VerificationID.
func (d *Dispatcher) Prepare(m *simgate.Message) error {
	if m.VerificationID == "" {
		return simgate.Errorf(simgate.CodeInvalid, "Prepare is for verification messages; use Enqueue")
	}
	if err := d.plan(m); err != nil {
		return err
	}
	m.Text = d.seal.seal(m.Text, m.To, m.VerificationID)
	admit(m, d.opts.Now())
	return nil
}

// Wake tells an idle worker that a message was stored.
func (d *Dispatcher) Wake() { d.wakeN(1) }

// plan validates m and fills in its priority, expiry and parts. The rules of
// SendAt are here: only for messages without a VerificationID (a code is
// sent at once); at most ScheduleTolerance in the past, which means now; at
// most MaxScheduleAhead ahead; and before the expiry.
func (d *Dispatcher) plan(m *simgate.Message) error {
	if !simgate.IsE164(m.To) {
		return simgate.Errorf(simgate.CodeInvalid, "recipient %q is not an E.164 number such as +15551234567", m.To)
	}
	if strings.TrimSpace(m.Text) == "" {
		return simgate.Errorf(simgate.CodeInvalid, "message text is empty")
	}
	parts := simgate.CountParts(m.Text)
	if parts > MaxParts {
		return simgate.Errorf(simgate.CodeInvalid, "message text takes %d SMS; at most %d are allowed", parts, MaxParts)
	}
	if m.Priority == 0 {
		m.Priority = simgate.PriorityNormal
		if m.VerificationID != "" {
			m.Priority = simgate.PriorityVerification
		}
	}
	now := d.opts.Now()
	if !m.SendAt.IsZero() {
		switch {
		case m.VerificationID != "":
			return simgate.Errorf(simgate.CodeInvalid, "send_at: verification SMS are sent at once, never scheduled")
		case m.SendAt.Before(now.Add(-ScheduleTolerance)):
			return simgate.Errorf(simgate.CodeInvalid,
				"send_at %s is in the past (more than %v ago); leave it out, or give a time up to %v ago, to send now",
				m.SendAt.Format(time.RFC3339), ScheduleTolerance, ScheduleTolerance)
		case m.SendAt.After(now.Add(MaxScheduleAhead)):
			return simgate.Errorf(simgate.CodeInvalid, "send_at %s is too far ahead: at most %d days (a year) from now",
				m.SendAt.Format(time.RFC3339), MaxScheduleAhead/(24*time.Hour))
		}
	}
	if m.ExpiresAt.IsZero() && d.opts.DefaultExpiry > 0 {
		from := now
		if m.SendAt.After(now) {
			from = m.SendAt
		}
		m.ExpiresAt = from.Add(d.opts.DefaultExpiry)
	} else if !m.ExpiresAt.IsZero() && !m.ExpiresAt.After(now) {
		return simgate.Errorf(simgate.CodeInvalid, "message expiry %s is in the past", m.ExpiresAt.Format(time.RFC3339))
	}
	if !m.SendAt.IsZero() && !m.ExpiresAt.IsZero() && !m.SendAt.Before(m.ExpiresAt) {
		return simgate.Errorf(simgate.CodeInvalid,
			"send_at %s is not before expires_at %s: the message would expire before it may be sent",
			m.SendAt.Format(time.RFC3339), m.ExpiresAt.Format(time.RFC3339))
	}
	m.Parts = make([]simgate.Part, parts)
	return nil
}

// requestHash identifies what was asked for, to tell an idempotent retry
// from the reuse of a key for something else.
func requestHash(m *simgate.Message) []byte {
	h := sha256.New()
	for _, s := range []string{m.To, m.Text, m.VerificationID} {
		binary.Write(h, binary.BigEndian, int64(len(s)))
		h.Write([]byte(s))
	}
	binary.Write(h, binary.BigEndian, int64(m.Priority))
	// Only when set, so that the hashes stored before SendAt existed still
	// match their retries.
	if !m.SendAt.IsZero() {
		binary.Write(h, binary.BigEndian, m.SendAt.UnixNano())
	}
	return h.Sum(nil)
}

// Cancel cancels a message no modem was asked to send yet: scheduled,
// accepted or queued. It returns simgate.CodeNotFound for an unknown id and
// simgate.CodeConflict for a message past queued. The scheduler's timer is
// re-armed, for the canceled message may have been the next scheduled.
func (d *Dispatcher) Cancel(ctx context.Context, id string) error {
	if err := d.opts.Store.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		return CancelMessage(ctx, tx, id, "canceled by the client")
	}); err != nil {
		return err
	}
	d.rescan()
	return nil
}

// Message returns a message with its parts and its event history, or an
// error with simgate.CodeNotFound.
func (d *Dispatcher) Message(ctx context.Context, id string) (*simgate.Message, error) {
	return d.opts.Store.FindMessage(ctx, id)
}

// ListMessages returns a page of messages, newest first, and the cursor of
// the next page ("" on the last). A bad cursor or status is
// simgate.CodeInvalid.
func (d *Dispatcher) ListMessages(ctx context.Context, f simgate.MessageFilter) ([]*simgate.Message, string, error) {
	return d.opts.Store.ListMessages(ctx, f)
}

// Stats returns the queue's depth by status and priority, the age of the
// oldest queued message, the status reports' match ratio and latency, and
// the late submit answers, over the last DefaultStatsWindow.
func (d *Dispatcher) Stats(ctx context.Context) (simgate.QueueStats, error) {
	return d.opts.Store.QueueStats(ctx, d.opts.Now().Add(-DefaultStatsWindow))
}

// HandleReport records a status report from a modem and matches it to the
// part it reports on, within ReportWindow (RecordReport). r.ReceivedAt
// defaults to now. An error means the report was not stored; the modem keeps
// a stored report to offer it again.
func (d *Dispatcher) HandleReport(ctx context.Context, r *simgate.StatusReport) error {
	if r.ReceivedAt.IsZero() {
		r.ReceivedAt = d.opts.Now()
	}
	if err := d.opts.Store.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		return RecordReport(ctx, tx, r, d.opts.ReportWindow)
	}); err != nil {
		return err
	}
	if r.MessageID == "" {
		d.log.Debug("status report matches no part (yet)", "modem", r.ModemID, "mr", r.MR)
	}
	return nil
}

// HandleLateSubmit records the late +CMGS answer of a submit that ended
// ambiguous (simgate.LateSubmit): the part it answers becomes sent with its
// message reference, so that the status report that follows matches it (see
// RecordLateSubmit). l.At defaults to now. An answer that matches
// no part yet is kept: the dispatcher may not have recorded its submit's
// timeout yet, and matches it when it does; otherwise it is only counted
// (Stats). Either way it is no error: the modem has nothing to offer again.
// An error means the store failed, or simgate.CodeInvalid for a bad answer.
func (d *Dispatcher) HandleLateSubmit(ctx context.Context, l *simgate.LateSubmit) error {
	if l == nil {
		return simgate.Errorf(simgate.CodeInvalid, "late submit event without its answer")
	}
	if l.At.IsZero() {
		l.At = d.opts.Now()
	}
	var id string
	if err := d.opts.Store.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		var err error
		id, err = RecordLateSubmit(ctx, tx, l, d.opts.ReportWindow)
		return err
	}); err != nil {
		return err
	}
	if id == "" {
		d.log.Warn("late submit answer matches no message part (yet); kept", "modem", l.ModemID, "part", l.Part, "mr", l.MR)
		return nil
	}
	d.log.Info("late submit answer recorded", "message", id, "modem", l.ModemID, "part", l.Part, "mr", l.MR)
	return nil
}

// Opt-out keywords (CTIA's list): a reply that is just one of them, in any
// case and with surrounding blanks or punctuation, changes the sender's
// opt-out.
var (
	optOutWords = []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
	optInWords  = []string{"START", "UNSTOP"}
)

// keyword returns the opt-out keyword text is, and whether it opts out or
// back in; "" when it is neither.
func keyword(text string) (string, bool) {
	w := strings.ToUpper(strings.Trim(text, " \t\r\n.!"))
	for _, k := range optOutWords {
		if w == k {
			return k, true
		}
	}
	for _, k := range optInWords {
		if w == k {
			return k, false
		}
	}
	return "", false
}

// HandleInbound stores a received SMS. A reply that is an opt-out keyword
// (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT) blocks all but
// verification traffic to its sender; START or UNSTOP lifts that. The opt-out
// is recorded first: it is idempotent, so a message offered again after a
// crash changes nothing twice.
func (d *Dispatcher) HandleInbound(ctx context.Context, m *simgate.InboundMessage) error {
	if m.ReceivedAt.IsZero() {
		m.ReceivedAt = d.opts.Now()
	}
	if k, out := keyword(m.Text); k != "" && m.From != "" {
		number := m.From
		if !strings.HasPrefix(number, "+") && isDigits(number) && len(number) > 7 {
			number = "+" + number
		}
		if err := d.opts.Store.SetOptOut(ctx, number, k, out); err != nil {
			return err
		}
		d.log.Info("opt-out changed", "keyword", k, "out", out)
	}
	return d.opts.Store.CreateInboundMessage(ctx, m)
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
