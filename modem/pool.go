package modem

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/internal/charsets"
)

// UsageStore tells how many SMS each SIM sent on a day, so that daily caps
// survive a restart. Day is the UTC date, "2006-01-02", of the pool's clock.
// The pool counts in memory and only reads the store, when it loads modems:
// whoever records the sends counts them there, in the same transaction (the
// queue does, in queue.Finish, from the Receipt's ModemID and parts). The
// store package satisfies it; tests use a map.
type UsageStore interface {
	// LoadUsage returns the SMS counted for modemID on day (0 when none).
	LoadUsage(ctx context.Context, modemID, day string) (int, error)
}

// PoolOptions configure a Pool. The embedded Options apply to every modem.
type PoolOptions struct {
	Options
	// Usage restores the day's usage of each modem it loads; nil starts
	// every modem at zero.
	Usage UsageStore
	// StickyTTL is how long a sticky key remembers its modem (default 24 h).
	StickyTTL time.Duration
	// MaxAttempts bounds the modems tried for one send (default 3).
	MaxAttempts int
	// WatchInterval is how often the pool looks for changes of its modems'
	// states, for ObserveStates (default 1 s).
	WatchInterval time.Duration
}

// SubmitObserver is told about every submit (see Pool.ObserveSubmits), for
// metrics. ObserveSubmit runs on the sender's goroutine and must not block.
type SubmitObserver interface {
	ObserveSubmit(modem string, d time.Duration, err error)
}

// StateObserver is told when a modem's state changes (ready, degraded, down,
// ...; see Pool.ObserveStates). The pool's watcher calls it, one change at a
// time, in order; it may write to a database but should not take long.
type StateObserver interface {
	ModemStateChanged(ctx context.Context, s simgate.ModemStatus)
}

// Pool runs a set of modems and picks one for each send. See the package
// comment for how.
type Pool struct {
	opts  PoolOptions
	log   *slog.Logger
	ports *ports

	mu      sync.Mutex
	members map[string]*member
	order   []string // configuration order
	sticky  map[string]stickyEntry
	next    int // rotates ties
	closed  bool
	changed chan struct{} // closed and replaced when a send finishes

	watchOnce   sync.Once
	watchCancel context.CancelFunc
	watchWG     sync.WaitGroup

	obsMu   sync.Mutex // guards submits and states
	submits []SubmitObserver
	states  []StateObserver
}

// ObserveSubmits adds o to those told about every submit from now on.
// Observers subscribe after the pool is made, so that what observes it
// (metrics, say) can itself be made with the pool.
func (p *Pool) ObserveSubmits(o SubmitObserver) {
	p.obsMu.Lock()
	p.submits = append(p.submits, o)
	p.obsMu.Unlock()
}

// ObserveStates adds o to those told about each change of a modem's state
// from now on. The watcher starts at Open: the first state each modem takes
// after it is a change.
func (p *Pool) ObserveStates(o StateObserver) {
	p.obsMu.Lock()
	p.states = append(p.states, o)
	p.obsMu.Unlock()
}

// observers returns the current observers.
func (p *Pool) observers() ([]SubmitObserver, []StateObserver) {
	p.obsMu.Lock()
	defer p.obsMu.Unlock()
	return p.submits, p.states
}

// watchDevices runs the device watch (find.go) until ctx is done: when a
// device appears or goes where modems are looked for, the last search is
// forgotten and every modem waiting to reconnect, or in quarantine, tries
// again at once.
func (p *Pool) watchDevices(ctx context.Context, w *deviceWatch) {
	defer p.watchWG.Done()
	w.run(ctx, func() {
		p.ports.forget()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, mb := range p.members {
			mb.m.Wake()
		}
	})
}

// watchedGlobs are where the pool's modems are looked for.
func (p *Pool) watchedGlobs(cfgs []Config) []string {
	globs := slices.Clone(p.opts.Candidates)
	for _, c := range cfgs {
		if c.Device != "" {
			globs = append(globs, c.Device)
		}
	}
	return globs
}

type member struct {
	m        *Modem
	cfg      Config
	inflight int
	window   []time.Time // one entry per SMS sent or reserved, last hour
	day      string
	dayUsed  int // persisted + this process, reservations included
	draining bool
}

type stickyEntry struct {
	name    string
	expires time.Time
}

// NewPool returns an empty pool; Open starts its modems.
func NewPool(opts PoolOptions) *Pool {
	opts.Options = opts.Options.withDefaults()
	if opts.StickyTTL <= 0 {
		opts.StickyTTL = 24 * time.Hour
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 3
	}
	if opts.WatchInterval <= 0 {
		opts.WatchInterval = time.Second
	}
	charsets.Warm()
	return &Pool{
		opts:    opts,
		log:     opts.Logger,
		ports:   newPorts(),
		members: map[string]*member{},
		sticky:  map[string]stickyEntry{},
		changed: make(chan struct{}),
	}
}

// Open starts every configured modem. Modems connect in the background: Open
// returns without waiting for them (see WaitReady). It fails only for an
// invalid configuration or when daily usage cannot be loaded.
func (p *Pool) Open(ctx context.Context, cfgs []Config) error {
	p.watchOnce.Do(func() {
		wctx, cancel := context.WithCancel(context.Background())
		p.mu.Lock()
		p.watchCancel = cancel
		p.mu.Unlock()
		p.watchWG.Add(1)
		go p.watch(wctx)
		if w, err := newDeviceWatch(p.watchedGlobs(cfgs)); err != nil {
			p.log.Warn("devices are not watched: modems that come back wait for their retry", "error", err)
		} else {
			p.watchWG.Add(1)
			go p.watchDevices(wctx, w)
		}
	})
	return p.Reload(ctx, cfgs)
}

// watch polls the modems' states and tells the ObserveStates observers of
// each change.
// Polling keeps the modems' code free of callbacks under their locks, and a
// state that flips and back within one interval is not news.
func (p *Pool) watch(ctx context.Context) {
	defer p.watchWG.Done()
	t := time.NewTicker(p.opts.WatchInterval)
	defer t.Stop()
	last := map[string]simgate.ModemState{}
	for {
		for _, s := range p.Status() {
			if last[s.ID] != s.State {
				last[s.ID] = s.State
				_, states := p.observers()
				for _, o := range states {
					o.ModemStateChanged(ctx, s)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close stops every modem and waits for their goroutines.
func (p *Pool) Close() error {
	p.mu.Lock()
	cancel := p.watchCancel
	p.mu.Unlock()
	if cancel != nil {
		// Stop watching first: modems closing is not news.
		cancel()
		p.watchWG.Wait()
	}
	p.mu.Lock()
	p.closed = true
	ms := make([]*member, 0, len(p.members))
	for _, mb := range p.members {
		ms = append(ms, mb)
	}
	p.members = map[string]*member{}
	p.order = nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, mb := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mb.m.Close()
		}()
	}
	wg.Wait()
	return nil
}

func (p *Pool) day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// Reload makes the pool run exactly cfgs: new modems are started, removed
// ones drained (bounded by ctx) and closed, changed ones restarted unless
// only their caps, prefixes or Disabled changed, which apply in place.
func (p *Pool) Reload(ctx context.Context, cfgs []Config) error {
	seen := map[string]bool{}
	for _, c := range cfgs {
		if c.Name == "" {
			return fmt.Errorf("cannot load modems: a modem has no name")
		}
		if seen[c.Name] {
			return fmt.Errorf("cannot load modems: name %q is used twice", c.Name)
		}
		if c.Device == "" && c.IMEI == "" && c.ICCID == "" {
			return fmt.Errorf("cannot load modem %s: set a device, an IMEI or an ICCID", c.Name)
		}
		seen[c.Name] = true
	}
	today := p.day(p.opts.Now())
	usage := map[string]int{}
	if p.opts.Usage != nil {
		for _, c := range cfgs {
			n, err := p.opts.Usage.LoadUsage(ctx, c.Name, today)
			if err != nil {
				return fmt.Errorf("cannot load daily usage of %s: %w", c.Name, err)
			}
			usage[c.Name] = n
		}
	}

	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	var remove []*member
	var restart []Config
	for name, mb := range p.members {
		if !seen[name] {
			mb.draining = true
			remove = append(remove, mb)
		}
	}
	for _, c := range cfgs {
		mb, ok := p.members[c.Name]
		switch {
		case !ok:
			restart = append(restart, c)
		case sameConnection(mb.cfg, c):
			mb.cfg = c
			mb.m.setLimits(c)
			mb.m.setDisabled(c.Disabled)
		default:
			mb.draining = true
			remove = append(remove, mb)
			restart = append(restart, c)
		}
	}
	p.mu.Unlock()

	for _, mb := range remove {
		if err := p.waitIdle(ctx, mb); err != nil {
			p.log.Warn("modem removed with sends in flight", "modem", mb.cfg.Name, "error", err)
		}
		mb.m.Close()
		p.mu.Lock()
		if p.members[mb.cfg.Name] == mb {
			delete(p.members, mb.cfg.Name)
		}
		p.mu.Unlock()
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	for _, c := range restart {
		m := newModem(c, p.opts.Options, p.ports)
		p.members[c.Name] = &member{m: m, cfg: m.cfg, day: today, dayUsed: usage[c.Name]}
		m.start()
	}
	p.order = p.order[:0]
	for _, c := range cfgs {
		p.order = append(p.order, c.Name)
	}
	return nil
}

// sameConnection reports whether b differs from a only in settings that
// apply without reconnecting.
func sameConnection(a, b Config) bool {
	a.Prefixes, b.Prefixes = nil, nil
	a.PerMinute, a.PerHour, a.PerDay = 0, 0, 0
	b.PerMinute, b.PerHour, b.PerDay = 0, 0, 0
	a.Disabled, b.Disabled = false, false
	return reflect.DeepEqual(a.withDefaults(), b.withDefaults())
}

// setLimits updates the caps shown in Status.
func (m *Modem) setLimits(c Config) {
	m.mu.Lock()
	m.st.DailyCap = c.PerDay
	m.mu.Unlock()
}

// WaitReady waits until at least n modems are ready or degraded.
func (p *Pool) WaitReady(ctx context.Context, n int) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if p.Ready() >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot get %d modems ready (%d are): %w", n, p.Ready(), ctx.Err())
		case <-t.C:
		}
	}
}

// Ready returns how many modems take sends now.
func (p *Pool) Ready() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, mb := range p.members {
		if ok, _ := mb.m.usable(); ok && !mb.draining {
			n++
		}
	}
	return n
}

// CanSend reports whether a modem could take a one-part message now: one
// that is usable, not draining and within its caps. Nodes sharing a
// database claim messages only while it holds (queue.Options.Ready).
func (p *Pool) CanSend() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.opts.Now()
	for _, mb := range p.members {
		if ok, _ := mb.m.usable(); !ok || mb.draining {
			continue
		}
		p.rollDay(mb, now)
		if mb.fits(now, 1) {
			return true
		}
	}
	return false
}

// Status returns a snapshot of every modem, in configuration order.
func (p *Pool) Status() []simgate.ModemStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.opts.Now()
	out := make([]simgate.ModemStatus, 0, len(p.order))
	for _, name := range p.order {
		mb := p.members[name]
		if mb == nil {
			continue
		}
		p.rollDay(mb, now)
		s := mb.m.Status()
		s.SentToday = mb.dayUsed
		s.DailyCap = mb.cfg.PerDay
		if mb.draining && s.State != simgate.ModemDisabled {
			s.Reason = "draining"
		}
		out = append(out, s)
	}
	return out
}

func (p *Pool) member(name string) (*member, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	mb := p.members[name]
	if mb == nil {
		return nil, fmt.Errorf("no modem %q: %w", name, ErrNotFound)
	}
	return mb, nil
}

// Enable puts a disabled or drained modem back into rotation.
func (p *Pool) Enable(name string) error {
	mb, err := p.member(name)
	if err != nil {
		return err
	}
	p.mu.Lock()
	mb.draining = false
	p.mu.Unlock()
	mb.m.setDisabled(false)
	return nil
}

// Disable takes a modem out of rotation at once; sends in flight finish. The
// modem stays connected and keeps receiving.
func (p *Pool) Disable(name string) error {
	mb, err := p.member(name)
	if err != nil {
		return err
	}
	mb.m.setDisabled(true)
	return nil
}

// Drain stops picking a modem for new sends, waits (bounded by ctx) for the
// sends in flight on it, then disables it.
func (p *Pool) Drain(ctx context.Context, name string) error {
	mb, err := p.member(name)
	if err != nil {
		return err
	}
	p.mu.Lock()
	mb.draining = true
	p.mu.Unlock()
	if err := p.waitIdle(ctx, mb); err != nil {
		return fmt.Errorf("cannot drain %s: %w", name, err)
	}
	mb.m.setDisabled(true)
	p.mu.Lock()
	mb.draining = false
	p.mu.Unlock()
	return nil
}

// Reset reconnects a modem from scratch; it also clears a SIM error that
// stopped it for good (after the PIN in the configuration was fixed) and
// ends a quarantine.
func (p *Pool) Reset(ctx context.Context, name string) error {
	mb, err := p.member(name)
	if err != nil {
		return err
	}
	return mb.m.Reset(ctx)
}

func (p *Pool) waitIdle(ctx context.Context, mb *member) error {
	for {
		p.mu.Lock()
		n, ch := mb.inflight, p.changed
		p.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Send sends req through the best modem for it, failing over to another
// modem when the first could not send anything for a reason that is not the
// recipient's (simgate.ClassTransient, simgate.ClassPermanentSIM,
// simgate.ClassModemUnhealthy). Any other failure is returned as is, with a
// Receipt naming the modem and the parts it sent: after some parts of a long
// message, or an ambiguous submit, resending would duplicate. With no usable
// modem the error wraps ErrNoModem, or ErrCapReached when caps are the
// reason; both have simgate.ClassTransient. Once req.NotAfter has passed, no
// modem begins the submit (Modem.SendBefore): the error wraps ErrExpired
// (simgate.ClassExpired) with an empty Receipt, and no other modem is tried.
func (p *Pool) Send(ctx context.Context, req simgate.SendRequest) (simgate.Receipt, error) {
	parts := simgate.CountParts(req.Text)
	tried := map[string]bool{}
	var lastErr error
	for attempt := 0; attempt < p.opts.MaxAttempts; attempt++ {
		mb, res, err := p.pick(req, parts, tried)
		if err != nil {
			if lastErr != nil {
				return simgate.Receipt{}, lastErr
			}
			return simgate.Receipt{}, err
		}
		start := time.Now()
		mrs, err := mb.m.SendBefore(ctx, req.To, req.Text, req.NotAfter)
		p.finish(mb, res, parts, mrs, err)
		if simgate.SendClassOf(err) == simgate.ClassExpired {
			// No submit began: nothing to observe, and no modem to name.
			return simgate.Receipt{}, err
		}
		submits, _ := p.observers()
		for _, o := range submits {
			o.ObserveSubmit(mb.cfg.Name, time.Since(start), err)
		}
		if err == nil {
			now := p.opts.Now()
			if req.StickyKey != "" {
				p.mu.Lock()
				p.sticky[req.StickyKey] = stickyEntry{name: mb.cfg.Name, expires: now.Add(p.opts.StickyTTL)}
				p.mu.Unlock()
			}
			return simgate.Receipt{ModemID: mb.cfg.Name, Identity: mb.m.Identity(), MRs: mrs, SentAt: now}, nil
		}
		lastErr = err
		if !simgate.SendClassOf(err).Retryable() || len(simgate.SentParts(err)) > 0 || ctx.Err() != nil {
			// The modem is named: it may have sent parts, or one ambiguously.
			return simgate.Receipt{ModemID: mb.cfg.Name, Identity: mb.m.Identity(), MRs: simgate.SentParts(err)}, err
		}
		p.log.Info("send failed; trying another modem", "modem", mb.cfg.Name, "error", err)
		tried[mb.cfg.Name] = true
	}
	return simgate.Receipt{}, lastErr
}

// pick chooses a modem for req and reserves parts SMS of its caps.
func (p *Pool) pick(req simgate.SendRequest, parts int, tried map[string]bool) (*member, reservation, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, reservation{}, &Error{Op: "pick modem", Class: simgate.ClassModemUnhealthy, Err: ErrClosed}
	}
	now := p.opts.Now()
	p.pruneSticky(now)
	var cands []cand
	capped := false
	n := len(p.order)
	for i := 0; i < n; i++ {
		name := p.order[(p.next+i)%n]
		mb := p.members[name]
		if mb == nil || tried[name] || mb.draining {
			continue
		}
		ok, state := mb.m.usable()
		if !ok {
			continue
		}
		p.rollDay(mb, now)
		if !mb.fits(now, parts) {
			capped = true
			continue
		}
		c := cand{mb: mb, match: prefixMatch(mb.cfg.Prefixes, req.To), health: 1}
		if state == simgate.ModemReady {
			c.health = 2
		}
		if mb.cfg.PerDay > 0 {
			c.ratio = float64(mb.dayUsed) / float64(mb.cfg.PerDay)
		}
		cands = append(cands, c)
	}
	if len(cands) == 0 {
		if capped {
			return nil, reservation{}, &Error{Op: "pick modem", Class: simgate.ClassTransient, Err: ErrCapReached}
		}
		return nil, reservation{}, &Error{Op: "pick modem", Class: simgate.ClassTransient, Err: ErrNoModem}
	}
	best := -1
	if s, ok := p.sticky[req.StickyKey]; ok && req.StickyKey != "" && now.Before(s.expires) {
		for i, c := range cands {
			if c.mb.cfg.Name == s.name {
				best = i
			}
		}
	}
	if best < 0 {
		best = 0
		for i := 1; i < len(cands); i++ {
			if better(cands[i], cands[best]) {
				best = i
			}
		}
	}
	p.next = (p.next + 1) % max(n, 1)
	mb := cands[best].mb
	mb.inflight++
	for i := 0; i < parts; i++ {
		mb.window = append(mb.window, now)
	}
	mb.dayUsed += parts
	return mb, reservation{day: mb.day, at: now}, nil
}

// PickCallee picks the SIM that a missed call from the number to should
// reach, as pick picks a sender: among the modems that are usable and not
// draining, the one preferred for to's prefix (a call within a country
// costs the caller least), then the healthier, then the one with fewer
// sends in flight, then the one with more of its daily cap left, ties
// rotated. Only modems whose SIM's number is known (Config.Number or
// AT+CNUM) and that reject calls (not Config.IgnoreCalls) are offered; caps
// do not exclude a modem, as the call costs no SMS. prefer is taken when it
// is offered: a resend keeps its SIM. It returns the modem's name and its
// SIM's number, or a simgate.CodeUnavailable error when no modem can take
// the call.
//
// The pool is this process's modems: on hosts that share a database, a
// SIM is picked on the host that starts the verification, and the call
// arrives there, where the modem's goroutine hands it to the verifications.
func (p *Pool) PickCallee(to, prefer string) (modemID, number string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return "", "", simgate.Errorf(simgate.CodeUnavailable, "no modem can take a missed call: the modems are closing")
	}
	now := p.opts.Now()
	var cands []cand
	numbers := map[*member]string{}
	known := 0
	n := len(p.order)
	for i := 0; i < n; i++ {
		mb := p.members[p.order[(p.next+i)%n]]
		if mb == nil || mb.cfg.IgnoreCalls {
			continue
		}
		num := mb.m.Number()
		if num == "" {
			continue
		}
		known++
		ok, state := mb.m.usable()
		if !ok || mb.draining {
			continue
		}
		if mb.cfg.Name == prefer {
			return mb.cfg.Name, num, nil
		}
		p.rollDay(mb, now)
		c := cand{mb: mb, match: prefixMatch(mb.cfg.Prefixes, to), health: 1}
		if state == simgate.ModemReady {
			c.health = 2
		}
		if mb.cfg.PerDay > 0 {
			c.ratio = float64(mb.dayUsed) / float64(mb.cfg.PerDay)
		}
		cands = append(cands, c)
		numbers[mb] = num
	}
	if len(cands) == 0 {
		if known == 0 {
			return "", "", simgate.Errorf(simgate.CodeUnavailable, "no modem can take a missed call: "+
				"none has a known number that rejects calls (set the SIM's number in the modem's configuration; calls must not be ignored)")
		}
		return "", "", simgate.Errorf(simgate.CodeUnavailable, "no modem can take a missed call now: "+
			"%d with a known number, none ready", known)
	}
	best := 0
	for i := 1; i < len(cands); i++ {
		if better(cands[i], cands[best]) {
			best = i
		}
	}
	p.next = (p.next + 1) % max(n, 1)
	mb := cands[best].mb
	return mb.cfg.Name, numbers[mb], nil
}

// reservation is what pick took from a member's caps.
type reservation struct {
	day string
	at  time.Time
}

type cand struct {
	mb     *member
	match  int     // length of the recipient prefix it is preferred for
	health int     // 2 ready, 1 degraded
	ratio  float64 // share of the daily cap used
}

// better orders candidates: preferred prefix, then health, then fewer sends
// in flight, then the least used daily cap. Ties keep the earlier one, and
// the scan starts one further each time, which rotates them.
func better(a, b cand) bool {
	switch {
	case a.match != b.match:
		return a.match > b.match
	case a.health != b.health:
		return a.health > b.health
	case a.mb.inflight != b.mb.inflight:
		return a.mb.inflight < b.mb.inflight
	}
	return a.ratio < b.ratio
}

// fits reports whether parts more SMS stay within mb's caps. Called with
// p.mu held.
func (mb *member) fits(now time.Time, parts int) bool {
	cut := 0
	for cut < len(mb.window) && now.Sub(mb.window[cut]) >= time.Hour {
		cut++
	}
	mb.window = mb.window[cut:]
	if c := mb.cfg.PerHour; c > 0 && len(mb.window)+parts > c {
		return false
	}
	if c := mb.cfg.PerMinute; c > 0 {
		n := 0
		for _, t := range mb.window {
			if now.Sub(t) < time.Minute {
				n++
			}
		}
		if n+parts > c {
			return false
		}
	}
	if c := mb.cfg.PerDay; c > 0 && mb.dayUsed+parts > c {
		return false
	}
	return true
}

// rollDay starts a new day's count. Called with p.mu held.
func (p *Pool) rollDay(mb *member, now time.Time) {
	if d := p.day(now); d != mb.day {
		mb.day, mb.dayUsed = d, 0
	}
}

// finish returns the unused part of a reservation. A part whose submit is
// ambiguous counts as sent.
func (p *Pool) finish(mb *member, res reservation, parts int, mrs []int, err error) {
	used := len(mrs)
	if err != nil {
		used = len(simgate.SentParts(err))
		if simgate.SendClassOf(err) == simgate.ClassAmbiguous {
			used = min(used+1, parts)
		}
	}
	p.mu.Lock()
	mb.inflight--
	if unused := parts - used; unused > 0 {
		// Remove this reservation's own entries, so that the sliding windows
		// stay exact.
		for i := len(mb.window) - 1; i >= 0 && unused > 0; i-- {
			if mb.window[i].Equal(res.at) {
				mb.window = slices.Delete(mb.window, i, i+1)
				unused--
			}
		}
		if mb.day == res.day {
			mb.dayUsed -= parts - used
		}
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

func (p *Pool) pruneSticky(now time.Time) {
	if len(p.sticky) < 1024 {
		return
	}
	for k, s := range p.sticky {
		if now.After(s.expires) {
			delete(p.sticky, k)
		}
	}
}

// prefixMatch returns the length of the longest prefix that to starts with,
// 0 for none.
func prefixMatch(prefixes []string, to string) int {
	best := 0
	for _, pr := range prefixes {
		if strings.HasPrefix(to, pr) && len(pr) > best {
			best = len(pr)
		}
	}
	return best
}

// Names returns the configured modem names, in order.
func (p *Pool) Names() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.order)
}
