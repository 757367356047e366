package modem

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
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
	m.lateAnswers(ctx, c)
	for _, u := range c.f.takeURCs() {
		var err error
		switch {
		case strings.HasPrefix(u.line, "+CDS:"):
			err = m.routed(ctx, c, u, true)
		case strings.HasPrefix(u.line, "+CMT:"):
			err = m.routed(ctx, c, u, false)
		case u.line == "RING", strings.HasPrefix(u.line, "+CRING:"), strings.HasPrefix(u.line, "+CLIP:"):
			err = m.incomingCall(ctx, c, u.line)
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
	} else {
		herr = m.receive(ctx, c, pduIn{hex: u.pdu, tlen: tlen, stat: -1})
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
// else is acknowledged (an undecodable PDU was handed on raw). A modem that
// does not take AT+CNMA=2 gets AT+CNMA: some switch routing off when an
// event goes unacknowledged.
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
		e, err := m.readStored(ctx, c, mm, idx)
		if err != nil {
			if sessionEnding(err) {
				return err
			}
			lastErr = err
			continue
		}
		if report && mm != mem {
			// Only a report is taken from a store the modem did not name.
			d, err := decodePDU(e.pdu, e.tlen)
			if err != nil || d.t.SmsType() != tpdu.SmsStatusReport {
				lastErr = fmt.Errorf("%s/%d holds no status report", mm, idx)
				continue
			}
		}
		return m.receive(ctx, c, pduIn{hex: e.pdu, tlen: e.tlen, stat: e.stat, loc: &storeLoc{mem: mm, idx: idx}})
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
func (m *Modem) readStored(ctx context.Context, c *conn, mem string, idx int) (listed, error) {
	if err := c.selectMem(ctx, mem); err != nil {
		return listed{}, err
	}
	info, err := c.cmd(ctx, "+CMGR="+strconv.Itoa(idx))
	if err != nil {
		return listed{}, err
	}
	es := m.parseListing(info, "+CMGR", idx)
	if len(es) == 0 {
		return listed{}, fmt.Errorf("%w: no message in AT+CMGR=%d answer %q", ErrMalformed, idx, info)
	}
	return es[0], nil
}

// listed is one entry of an AT+CMGL or AT+CMGR answer.
type listed struct {
	idx  int
	stat int // <stat> (TS 27.005 §3.1): 0, 1 received; 2, 3 stored to send; -1 unknown
	tlen int
	pdu  string
}

// parseListing finds "+CMGL: <idx>,<stat>,[<alpha>],<length>" (or
// "+CMGR: <stat>,[<alpha>],<length>", with idx given) lines and the PDU
// line after each, skipping lines that slipped in between. The PDU is the
// next line of hex digits whatever its length: a <length> that does not
// match it is logged and the PDU decoded by what it holds, not dropped.
func (m *Modem) parseListing(info []string, prefix string, idx int) []listed {
	var out []listed
	var cur *listed
	for _, l := range info {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, prefix+":") {
			f := fields(strings.TrimSpace(l[len(prefix)+1:]))
			e := listed{idx: idx, stat: -1, tlen: -1}
			if prefix == "+CMGL" {
				if n, ok := atoi(f[0]); ok {
					e.idx = n
				}
				f = f[1:]
			}
			if len(f) > 0 {
				if n, ok := atoi(f[0]); ok {
					e.stat = n
				}
			}
			if len(f) > 1 {
				if n, ok := atoi(f[len(f)-1]); ok {
					e.tlen = n
				}
			}
			out = append(out, e)
			cur = &out[len(out)-1]
			continue
		}
		if cur != nil && cur.pdu == "" && isHexDigits(l) {
			cur.pdu = l
			if cur.tlen >= 0 && !lengthFits(l, cur.tlen) {
				m.log.Warn("message header length does not match its PDU; decoding by the PDU",
					"header", prefix, "index", cur.idx, "length", cur.tlen, "pdu_octets", len(l)/2)
			}
			cur = nil
		}
	}
	// Headers whose PDU never came: nothing to read, but say so.
	n := 0
	for _, e := range out {
		if e.pdu != "" {
			out[n] = e
			n++
		} else {
			m.log.Warn("message header without a PDU line", "header", prefix, "index", e.idx)
		}
	}
	return out[:n]
}

// lengthFits reports whether the hex PDU pdu holds a TPDU of tlen octets,
// with an SMSC part (its first octet is that part's length) or without.
func lengthFits(pdu string, tlen int) bool {
	n := len(pdu) / 2
	if n == tlen {
		return true
	}
	b, err := hex.DecodeString(pdu[:2])
	return err == nil && n == 1+int(b[0])+tlen
}

// isHexDigits reports whether s is a line of hex digits (a PDU, possibly
// with an odd length when a modem cut it).
func isHexDigits(s string) bool {
	return len(s) >= 2 && (isHex(s) || isHex(s[:len(s)-1]))
}

// drainStores reads what was stored while nobody listened: inbound SMS in
// "SM" and "ME", status reports in "SR". Each is deleted once the
// subscriber accepted it; what is not simgate's stays (see receive).
func (m *Modem) drainStores(ctx context.Context, c *conn) error {
	c.listed = m.opts.Now()
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
		m.forgetForeign(mem)
		for _, e := range m.parseListing(info, "+CMGL", 0) {
			err := m.receive(ctx, c, pduIn{hex: e.pdu, tlen: e.tlen, stat: e.stat, loc: &storeLoc{mem: mem, idx: e.idx}})
			if err != nil {
				if sessionEnding(err) {
					return err
				}
				m.log.Warn("stored message not handled; left on the SIM", "mem", mem, "index", e.idx, "error", err)
			}
		}
	}
	return nil
}

// pduIn is one PDU as the modem gave it, and where it was stored (loc nil:
// routed to the host).
type pduIn struct {
	hex  string
	tlen int // <length>; -1 when none
	stat int // <stat> of a stored one; -1 routed or unknown
	loc  *storeLoc
}

// receive decodes one PDU and hands it on: a status report, an SMS (once
// all its parts are in), or, when it cannot be decoded at all, the raw PDU
// as an undecodable inbound message, so that nothing is lost and the SIM
// does not fill up. What is not addressed to simgate is left where it is.
// The stored copies are deleted once the subscriber took the event.
func (m *Modem) receive(ctx context.Context, c *conn, in pduIn) error {
	m.input = in.hex
	defer func() { m.input = "" }()
	r := m.decodeIn(in, m.opts.Now())
	switch {
	case r.foreign != "":
		return m.foreign(in, r.foreign)
	case r.ev == nil:
		return nil // a part of a long SMS, waiting for the others
	}
	if err := m.hand(ctx, c, *r.ev, in.loc == nil); err != nil {
		if r.pipe != nil && in.loc == nil && c.phase2 && errors.Is(err, errNotTaken) {
			// Refused to the network: the last part comes again, and finds
			// the other parts, which were acknowledged, waiting.
			m.asm.putBack(r.pipe.parts, r.last, r.ev.Inbound.ReceivedAt)
		}
		return err
	}
	return m.deleteStored(ctx, c, r.locs)
}

// received is what decodeIn made of a PDU.
type received struct {
	ev      *Event     // to hand on; nil for a part that waits for the rest
	locs    []storeLoc // the stored copies to delete once ev was taken
	foreign string     // what it is, when it is not simgate's to take
	pipe    *pipe      // the long SMS ev completes
	last    *tpdu.TPDU // the part that completed it
}

// decodeIn decodes in (an SMS-SUBMIT a phone stored, <stat> 2 or 3, is
// foreign without decoding) and makes the event it stands for. It does no
// I/O; its only state is the assembler of long SMS.
func (m *Modem) decodeIn(in pduIn, now time.Time) received {
	if in.stat == 2 || in.stat == 3 {
		return received{foreign: "a stored SMS-SUBMIT (a phone's sent message or draft)"}
	}
	d, err := decodePDU(in.hex, in.tlen)
	if err == nil && m.poison[in.hex] {
		err = errors.New("the driver failed on this PDU before")
	}
	if err != nil {
		return m.undecodable(in, err, now)
	}
	if d.warning != "" {
		m.log.Warn("PDU decoded leniently", "warning", d.warning, "pdu", in.hex)
	}
	var locs []storeLoc
	if in.loc != nil {
		locs = []storeLoc{*in.loc}
	}
	t := d.t
	switch t.SmsType() {
	case tpdu.SmsStatusReport:
		return received{locs: locs, ev: &Event{Kind: EventReport, ModemID: m.cfg.Name, Identity: m.Identity(), Stored: in.loc != nil, Report: &simgate.StatusReport{
			ModemID:       m.cfg.Name,
			MR:            int(t.MR),
			Recipient:     t.RA.Number(),
			SCTS:          t.SCTS.Time,
			DischargeTime: t.DT.Time,
			TPST:          int(t.ST),
			ReceivedAt:    now,
		}}}
	case tpdu.SmsDeliver:
		p, done := m.asm.add(t, in.loc, d.truncated, now)
		if !done {
			return received{}
		}
		return received{ev: m.inboundEvent(p, now), locs: p.locs, pipe: p, last: t}
	}
	return received{foreign: "a " + t.SmsType().String()}
}

// foreign leaves a stored message that is not simgate's on the SIM: it is
// logged once and counted per store in the modem's status. A routed one has
// no copy to leave; it is logged.
func (m *Modem) foreign(in pduIn, what string) error {
	if in.loc == nil {
		m.log.Warn("routed PDU is not for simgate; ignored", "what", what, "pdu", in.hex)
		return nil
	}
	if m.foreignSeen[*in.loc] != in.hex {
		m.log.Info("message on the SIM is not simgate's; left there", "what", what, "mem", in.loc.mem, "index", in.loc.idx)
		m.foreignSeen[*in.loc] = in.hex
		m.countForeign()
	}
	return nil
}

// forgetForeign forgets what was noted in mem before it is listed again.
func (m *Modem) forgetForeign(mem string) {
	for l := range m.foreignSeen {
		if l.mem == mem {
			delete(m.foreignSeen, l)
		}
	}
	m.countForeign()
}

// countForeign puts the number of foreign messages per store in the status.
func (m *Modem) countForeign() {
	counts := map[string]int{}
	for l := range m.foreignSeen {
		counts[l.mem]++
	}
	m.mu.Lock()
	m.st.Foreign = counts
	m.mu.Unlock()
}

// undecodable makes the event of a PDU that cannot be decoded: an inbound
// message with status undecodable and the raw PDU.
func (m *Modem) undecodable(in pduIn, cause error, now time.Time) received {
	raw := &simgate.RawPDU{Hex: strings.ToUpper(in.hex), Length: in.tlen, Error: cause.Error()}
	var locs []storeLoc
	if in.loc != nil {
		raw.Store, raw.Index = in.loc.mem, in.loc.idx
		locs = []storeLoc{*in.loc}
	}
	m.log.Warn("cannot decode PDU; kept raw as an undecodable inbound message", "mem", raw.Store, "index", raw.Index, "pdu", raw.Hex, "error", cause)
	return received{locs: locs, ev: &Event{Kind: EventInbound, ModemID: m.cfg.Name, Identity: m.Identity(), Stored: in.loc != nil, Inbound: &simgate.InboundMessage{
		ModemID:    m.cfg.Name,
		Kind:       simgate.InboundData,
		Status:     simgate.InboundUndecodable,
		Parts:      1,
		PartsTotal: 1,
		Raw:        raw,
		ReceivedAt: now,
	}}}
}

// inboundEvent makes the event of a whole SMS, or what came of it.
func (m *Modem) inboundEvent(p *pipe, now time.Time) *Event {
	in := inboundMessage(p)
	in.ModemID, in.ReceivedAt = m.cfg.Name, now
	return &Event{Kind: EventInbound, ModemID: m.cfg.Name, Identity: m.Identity(), Stored: len(p.locs) > 0, Inbound: in}
}

// inboundMessage decodes the parts of p that came into one inbound message
// of its kind: text, a WAP push (an MMS notification decoded), or data.
func inboundMessage(p *pipe) *simgate.InboundMessage {
	var segs []*tpdu.TPDU
	for _, t := range p.parts {
		if t != nil {
			segs = append(segs, t)
		}
	}
	first := segs[0]
	in := &simgate.InboundMessage{
		From:       first.OA.Number(),
		SCTS:       first.SCTS.Time,
		Kind:       simgate.InboundText,
		Status:     simgate.InboundComplete,
		Parts:      len(segs),
		PartsTotal: len(p.parts),
	}
	if in.Parts < in.PartsTotal || p.truncated {
		in.Status = simgate.InboundIncomplete
	}
	var ud []byte
	for _, s := range segs {
		ud = append(ud, s.UD...)
	}
	dst, _, ported := appPorts(first.UDH)
	if ported {
		in.Port = dst
	}
	alpha, err := first.DCS.Alphabet()
	switch {
	case ported && (dst == wapPushPort || dst == wapPushSecurePort):
		in.Kind, in.Data = simgate.InboundWAPPush, ud
		if in.Status != simgate.InboundComplete {
			break // a WAP push missing parts cannot be decoded
		}
		if w, err := decodeWAPPush(ud); err == nil && w.MMS != nil {
			in.Kind = simgate.InboundMMSNotification
			in.MMS = &simgate.MMSNotification{From: w.MMS.From, Subject: w.MMS.Subject,
				ContentLocation: w.MMS.ContentLocation, TransactionID: w.MMS.TransactionID, Size: w.MMS.Size}
		}
	case ported || err == nil && alpha == tpdu.Alpha8Bit:
		in.Kind, in.Data = simgate.InboundData, ud
	default:
		text, err := sms.Decode(segs)
		if err != nil {
			// The user data is kept as it came, as data: decoding it as text
			// would make something up.
			in.Kind, in.Data = simgate.InboundData, ud
			break
		}
		in.Text = string(text)
	}
	return in
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
// Options.ReassemblyTimeout, with what did come, marked incomplete; their
// stored parts are deleted once the subscriber took the message.
func (m *Modem) expireParts(ctx context.Context, c *conn) error {
	now := m.opts.Now()
	for _, p := range m.asm.expire(now, m.opts.ReassemblyTimeout) {
		m.log.Warn("long SMS incomplete; delivering the parts that came", "parts", p.got, "of", len(p.parts))
		err := m.hand(ctx, c, *m.inboundEvent(p, now), len(p.locs) == 0)
		if err == nil {
			err = m.deleteStored(ctx, c, p.locs)
		}
		if err != nil {
			if sessionEnding(err) {
				return err
			}
			m.log.Warn("cannot deliver incomplete SMS; its stored parts stay on the SIM", "error", err)
		}
	}
	return nil
}

// assembler puts long inbound SMS back together (like sms.Collector, but it
// also keeps where each stored part is, to delete them once the whole message
// was accepted).
type assembler struct {
	pipes map[string]*pipe
}

// pipe is one inbound SMS being put together.
type pipe struct {
	parts     []*tpdu.TPDU // by sequence number; nil where a part did not come
	locs      []storeLoc   // where the stored parts are
	got       int
	first     time.Time
	truncated bool // a part's user data was cut short
}

func newAssembler() *assembler { return &assembler{pipes: map[string]*pipe{}} }

// add adds one SMS-DELIVER; done is true when its message is complete.
func (a *assembler) add(t *tpdu.TPDU, loc *storeLoc, truncated bool, now time.Time) (p *pipe, done bool) {
	total, seq, ref, ok := t.ConcatInfo()
	if !ok || total < 2 || seq < 1 || seq > total {
		p := &pipe{parts: []*tpdu.TPDU{t}, got: 1, first: now, truncated: truncated}
		if loc != nil {
			p.locs = []storeLoc{*loc}
		}
		return p, true
	}
	key := pipeKey(t, ref, total)
	p = a.pipes[key]
	if p == nil {
		p = &pipe{parts: make([]*tpdu.TPDU, total), first: now}
		a.pipes[key] = p
	}
	if loc != nil {
		if slices.Contains(p.locs, *loc) {
			return nil, false // read again after a reconnect
		}
		p.locs = append(p.locs, *loc)
	}
	if p.parts[seq-1] == nil {
		p.parts[seq-1] = t
		p.got++
		p.truncated = p.truncated || truncated
	}
	if p.got < total {
		return nil, false
	}
	delete(a.pipes, key)
	return p, true
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

// The WAP push ports (WAP-259-WDP, Appendix B): connectionless push over
// SMS, plain and secure.
const (
	wapPushPort       = 2948
	wapPushSecurePort = 2949
)
