package modem

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/simgate/simgate"
	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/tpdu"
)

// errNoSubscriber keeps stored messages on the SIM when nobody listens.
var errNoSubscriber = errors.New("no subscriber")

// errNotTaken wraps the subscriber's refusal of an event: the modem still
// has it stored, or the network delivers it again after AT+CNMA=2.
var errNotTaken = errors.New("subscriber did not take the event")

// storeLoc is where a message sits in the modem's storage.
type storeLoc struct {
	mem string
	idx int
}

// handleURCs handles the indications the filter queued, oldest first. Only
// errors that end the session are returned.
func (m *Modem) handleURCs(ctx context.Context, c *conn) error {
	for _, mr := range c.f.takeLate() {
		m.log.Warn("late +CMGS answer after a submit timeout: the message went out", "mr", mr)
	}
	for _, u := range c.f.takeURCs() {
		var err error
		switch {
		case strings.HasPrefix(u.line, "+CDS:"):
			err = m.routed(ctx, c, u, true)
		case strings.HasPrefix(u.line, "+CMT:"):
			err = m.routed(ctx, c, u, false)
		case strings.HasPrefix(u.line, "+CMTI:"), strings.HasPrefix(u.line, "+CDSI:"):
			f := fields(strings.TrimSpace(u.line[strings.IndexByte(u.line, ':')+1:]))
			idx, ok := atoi(f[len(f)-1])
			if len(f) < 2 || !ok {
				m.log.Warn("cannot parse indication", "line", u.line)
				continue
			}
			err = m.stored(ctx, c, strings.ToUpper(f[0]), idx, strings.HasPrefix(u.line, "+CDSI:"))
		}
		if err != nil {
			if sessionEnding(err) {
				return err
			}
			m.log.Warn("cannot handle indication", "line", u.line, "error", err)
		}
	}
	return nil
}

// sessionEnding reports whether err means the port is gone or hung.
func sessionEnding(err error) bool {
	return errors.Is(err, ErrPortClosed) || errors.Is(err, ErrTimeout) || errors.Is(err, context.Canceled)
}

// routed handles a +CDS (report) or +CMT (SMS) with its PDU line. In phase
// 2+ (AT+CSMS=1) the modem wants AT+CNMA for each, or some stop routing.
func (m *Modem) routed(ctx context.Context, c *conn, u urc, report bool) error {
	f := fields(strings.TrimSpace(u.line[strings.IndexByte(u.line, ':')+1:]))
	tlen, ok := atoi(f[len(f)-1])
	if !ok {
		tlen = -1
	}
	var herr error
	if u.pdu == "" {
		herr = fmt.Errorf("%s came without its PDU", u.line)
	} else if t, err := decodePDU(u.pdu, tlen); err != nil {
		herr = err
	} else {
		herr = m.handleTPDU(ctx, c, t, nil)
	}
	if c.phase2 {
		if err := m.acknowledge(ctx, c, herr); err != nil {
			return err
		}
	}
	if herr != nil {
		return fmt.Errorf("routed %s: %w", map[bool]string{true: "report", false: "SMS"}[report], herr)
	}
	return nil
}

// acknowledge answers a routed event in phase 2+. One the subscriber did not
// take is refused (AT+CNMA=2, an RP-ERROR to the network), so that the
// network delivers it again later instead of the event being lost; anything
// else, a PDU that cannot be decoded included (it would only come again), is
// acknowledged. A modem that does not take AT+CNMA=2 gets AT+CNMA: some
// switch routing off when an event goes unacknowledged.
func (m *Modem) acknowledge(ctx context.Context, c *conn, herr error) error {
	if errors.Is(herr, errNotTaken) || errors.Is(herr, errNoSubscriber) {
		_, err := c.cmd(ctx, "+CNMA=2")
		if err == nil {
			m.log.Warn("routed event refused to the network, which delivers it again", "error", herr)
			return nil
		} else if sessionEnding(err) {
			return err
		}
		m.log.Error("modem does not take AT+CNMA=2; a routed event the subscriber refused is lost", "error", err)
	}
	if _, err := c.cmd(ctx, "+CNMA"); err != nil && sessionEnding(err) {
		return err
	}
	return nil
}

// stored handles a message the modem stored at mem/idx and announced with
// +CMTI or +CDSI. Some modems announce the wrong store for reports (Quectel
// EC25 says "SM" for "SR"), so a report is looked for in "SR" first.
func (m *Modem) stored(ctx context.Context, c *conn, mem string, idx int, report bool) error {
	mems := []string{mem}
	if report && mem != "SR" {
		mems = []string{"SR", mem}
	}
	var lastErr error
	for _, mm := range mems {
		t, err := m.readStored(ctx, c, mm, idx)
		if err != nil {
			if sessionEnding(err) {
				return err
			}
			lastErr = err
			continue
		}
		if report && t.SmsType() != tpdu.SmsStatusReport {
			lastErr = fmt.Errorf("%s/%d holds no status report", mm, idx)
			continue
		}
		return m.handleTPDU(ctx, c, t, &storeLoc{mem: mm, idx: idx})
	}
	return lastErr
}

// selectMem makes mem the store that AT+CMGR, AT+CMGL and AT+CMGD work on.
func (c *conn) selectMem(ctx context.Context, mem string) error {
	if c.mem == mem {
		return nil
	}
	if _, err := c.cmd(ctx, `+CPMS="`+mem+`"`); err != nil {
		c.mem = ""
		return err
	}
	c.mem = mem
	return nil
}

// readStored reads one stored PDU with AT+CMGR.
func (m *Modem) readStored(ctx context.Context, c *conn, mem string, idx int) (*tpdu.TPDU, error) {
	if err := c.selectMem(ctx, mem); err != nil {
		return nil, err
	}
	info, err := c.cmd(ctx, "+CMGR="+strconv.Itoa(idx))
	if err != nil {
		return nil, err
	}
	es := parseListing(info, "+CMGR", idx)
	if len(es) == 0 {
		return nil, fmt.Errorf("%w: no message in AT+CMGR=%d answer %q", ErrMalformed, idx, info)
	}
	return decodePDU(es[0].pdu, es[0].tlen)
}

// listed is one entry of an AT+CMGL or AT+CMGR answer.
type listed struct {
	idx  int
	tlen int
	pdu  string
}

// parseListing finds "+CMGL: <idx>,<stat>,[<alpha>],<length>" (or
// "+CMGR: <stat>,[<alpha>],<length>", with idx given) lines and the PDU
// line after each, skipping lines that slipped in between.
func parseListing(info []string, prefix string, idx int) []listed {
	var out []listed
	var cur *listed
	for _, l := range info {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, prefix+":") {
			f := fields(strings.TrimSpace(l[len(prefix)+1:]))
			e := listed{idx: idx, tlen: -1}
			if prefix == "+CMGL" {
				if n, ok := atoi(f[0]); ok {
					e.idx = n
				}
			}
			if n, ok := atoi(f[len(f)-1]); ok {
				e.tlen = n
			}
			out = append(out, e)
			cur = &out[len(out)-1]
			continue
		}
		if cur != nil && cur.pdu == "" && isHex(l) && (cur.tlen < 0 || len(l) >= 2*cur.tlen) {
			cur.pdu = l
			cur = nil
		}
	}
	// Drop headers whose PDU never came.
	n := 0
	for _, e := range out {
		if e.pdu != "" {
			out[n] = e
			n++
		}
	}
	return out[:n]
}

// drainStores reads what was stored while nobody listened: inbound SMS in
// "SM" and "ME", status reports in "SR". Each is deleted once the
// subscriber accepted it.
func (m *Modem) drainStores(ctx context.Context, c *conn) error {
	for _, mem := range []string{"SM", "ME", "SR"} {
		if err := c.selectMem(ctx, mem); err != nil {
			if sessionEnding(err) {
				return err
			}
			continue // the modem has no such store
		}
		info, err := c.cmd(ctx, "+CMGL=4")
		if err != nil {
			if sessionEnding(err) {
				return err
			}
			continue
		}
		for _, e := range parseListing(info, "+CMGL", 0) {
			t, err := decodePDU(e.pdu, e.tlen)
			if err != nil {
				m.log.Warn("cannot decode stored message; left on the SIM", "mem", mem, "index", e.idx, "error", err)
				continue
			}
			if err := m.handleTPDU(ctx, c, t, &storeLoc{mem: mem, idx: e.idx}); err != nil {
				if sessionEnding(err) {
					return err
				}
				m.log.Warn("stored message not handled; left on the SIM", "mem", mem, "index", e.idx, "error", err)
			}
		}
	}
	return nil
}

// handleTPDU hands a report or an SMS (once all its parts are in) to the
// subscriber, and deletes the stored copies it accepted.
func (m *Modem) handleTPDU(ctx context.Context, c *conn, t *tpdu.TPDU, loc *storeLoc) error {
	now := m.opts.Now()
	id := m.Identity()
	switch t.SmsType() {
	case tpdu.SmsStatusReport:
		ev := Event{Kind: EventReport, ModemID: m.cfg.Name, Identity: id, Stored: loc != nil, Report: &simgate.StatusReport{
			ModemID:       m.cfg.Name,
			MR:            int(t.MR),
			Recipient:     t.RA.Number(),
			SCTS:          t.SCTS.Time,
			DischargeTime: t.DT.Time,
			TPST:          int(t.ST),
			ReceivedAt:    now,
		}}
		if err := m.hand(ctx, c, ev, loc == nil); err != nil {
			return err
		}
		if loc != nil {
			return m.deleteStored(ctx, c, []storeLoc{*loc})
		}
		return nil
	case tpdu.SmsDeliver:
		parts, locs, done := m.asm.add(t, loc, now)
		if !done {
			return nil
		}
		err := m.deliverSMS(ctx, c, parts, locs, loc != nil)
		if err != nil && loc == nil && c.phase2 && errors.Is(err, errNotTaken) {
			// Refused to the network: t comes again, and finds the other
			// parts, which were acknowledged, waiting.
			m.asm.putBack(parts, t, now)
		}
		return err
	}
	if loc != nil {
		m.log.Warn("stored PDU is neither a report nor an SMS; deleting it", "mem", loc.mem, "index", loc.idx, "type", t.SmsType().String())
		return m.deleteStored(ctx, c, []storeLoc{*loc})
	}
	return fmt.Errorf("unexpected %s", t.SmsType())
}

// deliverSMS decodes a whole SMS and hands it on.
func (m *Modem) deliverSMS(ctx context.Context, c *conn, parts []*tpdu.TPDU, locs []storeLoc, stored bool) error {
	var segs []*tpdu.TPDU
	for _, p := range parts {
		if p != nil {
			segs = append(segs, p)
		}
	}
	text, err := sms.Decode(segs)
	if err != nil {
		m.log.Warn("cannot decode SMS text; delivering it raw", "error", err)
		text = nil
		for _, s := range segs {
			text = append(text, s.UD...)
		}
	}
	ev := Event{Kind: EventInbound, ModemID: m.cfg.Name, Identity: m.Identity(), Stored: stored, Inbound: &simgate.InboundMessage{
		ModemID:    m.cfg.Name,
		From:       segs[0].OA.Number(),
		Text:       string(text),
		SCTS:       segs[0].SCTS.Time,
		ReceivedAt: m.opts.Now(),
	}}
	if err := m.hand(ctx, c, ev, !stored); err != nil {
		return err
	}
	return m.deleteStored(ctx, c, locs)
}

// Routed events that need no acknowledgement wait for the delivery
// goroutine in a buffer of routedBuffer; when it is full, the modem's
// goroutine waits for the subscriber again.
const (
	routedBuffer = 64
	// routedDrain is how long events still buffered when the modem closes
	// have to reach the subscriber.
	routedDrain = 5 * time.Second
)

// hand gives ev to the subscriber. A routed event that needs no
// acknowledgement (phase 1: the modem neither waits for AT+CNMA nor keeps a
// copy) goes through the delivery goroutine, so that the next submit does
// not wait while the subscriber stores it (a database commit); it exists only
// in memory either way. Any other event is delivered here, before its stored
// copy is deleted or AT+CNMA acknowledges it.
func (m *Modem) hand(ctx context.Context, c *conn, ev Event, routed bool) error {
	if !routed || c.phase2 || m.opts.Subscriber == nil {
		return m.deliver(ctx, ev, routed)
	}
	select {
	case m.events <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deliverRouted is the delivery goroutine: it hands the events of m.events
// to the subscriber, in order, until run closes the channel, and closes done.
// Events still buffered when the modem closes get routedDrain to go through.
func (m *Modem) deliverRouted(done chan<- struct{}) {
	defer close(done)
	ctx, cancel := context.WithCancel(context.WithoutCancel(m.ctx))
	defer cancel()
	stop := context.AfterFunc(m.ctx, func() { time.AfterFunc(routedDrain, cancel) })
	defer stop()
	for ev := range m.events {
		// Nothing else can be done: in phase 1 the modem kept no copy and the
		// network was not asked to acknowledge it.
		if err := m.deliver(ctx, ev, true); err != nil && ctx.Err() != nil {
			m.log.Error("modem closed before the subscriber took a routed event; it is lost", "kind", ev.Kind)
		} else if err != nil {
			m.log.Error("subscriber refused a routed event; it is lost", "kind", ev.Kind, "error", err)
		}
	}
}

// deliver hands ev to the subscriber. A routed event exists nowhere else, so
// it is tried a few times.
func (m *Modem) deliver(ctx context.Context, ev Event, routed bool) error {
	if m.opts.Subscriber == nil {
		return errNoSubscriber
	}
	tries := 1
	if routed {
		tries = 3
	}
	var err error
	for i := 0; i < tries; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(i) * 100 * time.Millisecond):
			}
		}
		hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = m.opts.Subscriber.HandleEvent(hctx, ev)
		cancel()
		if err == nil {
			m.mu.Lock()
			if ev.Kind == EventReport {
				m.st.Counters.Reports++
			} else {
				m.st.Counters.Inbound++
			}
			m.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("%w: %w", errNotTaken, err)
}

// deleteStored deletes accepted messages from the modem's storage.
func (m *Modem) deleteStored(ctx context.Context, c *conn, locs []storeLoc) error {
	for _, l := range locs {
		if err := c.selectMem(ctx, l.mem); err != nil {
			return err
		}
		if _, err := c.cmd(ctx, "+CMGD="+strconv.Itoa(l.idx)); err != nil {
			return err
		}
	}
	return nil
}

// expireParts delivers long SMS whose missing parts did not come within
// Options.ReassemblyTimeout, with what did come.
func (m *Modem) expireParts(ctx context.Context) {
	for _, p := range m.asm.expire(m.opts.Now(), m.opts.ReassemblyTimeout) {
		m.log.Warn("long SMS incomplete; delivering the parts that came", "parts", p.got, "of", len(p.parts))
		// No connection at hand for deletion: the stored parts are deleted
		// at the next start, when they are read again and complete nothing.
		if err := m.deliverSMS(ctx, nil, p.parts, nil, false); err != nil {
			m.log.Warn("cannot deliver incomplete SMS", "error", err)
		}
	}
}

// assembler puts long inbound SMS back together (like sms.Collector, but it
// also keeps where each stored part is, to delete them once the whole message
// was accepted).
type assembler struct {
	pipes map[string]*pipe
}

type pipe struct {
	parts []*tpdu.TPDU
	locs  []storeLoc
	got   int
	first time.Time
}

func newAssembler() *assembler { return &assembler{pipes: map[string]*pipe{}} }

// add adds one SMS-DELIVER; done is true when its message is complete.
func (a *assembler) add(t *tpdu.TPDU, loc *storeLoc, now time.Time) (parts []*tpdu.TPDU, locs []storeLoc, done bool) {
	total, seq, ref, ok := t.ConcatInfo()
	if !ok || total < 2 || seq < 1 || seq > total {
		if loc != nil {
			locs = []storeLoc{*loc}
		}
		return []*tpdu.TPDU{t}, locs, true
	}
	key := pipeKey(t, ref, total)
	p := a.pipes[key]
	if p == nil {
		p = &pipe{parts: make([]*tpdu.TPDU, total), first: now}
		a.pipes[key] = p
	}
	if loc != nil {
		for _, l := range p.locs {
			if l == *loc {
				return nil, nil, false // read again after a reconnect
			}
		}
		p.locs = append(p.locs, *loc)
	}
	if p.parts[seq-1] == nil {
		p.parts[seq-1] = t
		p.got++
	}
	if p.got < total {
		return nil, nil, false
	}
	delete(a.pipes, key)
	return p.parts, p.locs, true
}

// putBack keeps the parts of a routed long SMS whose delivery was refused,
// all but last, for when the network delivers last again.
func (a *assembler) putBack(parts []*tpdu.TPDU, last *tpdu.TPDU, now time.Time) {
	total, _, ref, ok := last.ConcatInfo()
	if !ok || total < 2 || len(parts) != total {
		return
	}
	p := &pipe{parts: make([]*tpdu.TPDU, total), first: now}
	for i, t := range parts {
		if t != nil && t != last {
			p.parts[i] = t
			p.got++
		}
	}
	a.pipes[pipeKey(last, ref, total)] = p
}

// pipeKey names the long SMS part t belongs to.
func pipeKey(t *tpdu.TPDU, ref, total int) string {
	return fmt.Sprintf("%s|%d|%d", t.OA.Number(), ref, total)
}

// expire removes and returns the pipes older than d.
func (a *assembler) expire(now time.Time, d time.Duration) []*pipe {
	var out []*pipe
	keys := make([]string, 0, len(a.pipes))
	for k := range a.pipes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if p := a.pipes[k]; now.Sub(p.first) >= d {
			out = append(out, p)
			delete(a.pipes, k)
		}
	}
	return out
}
