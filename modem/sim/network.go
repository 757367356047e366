package sim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/tpdu"
	"golang.org/x/sys/unix"

	"github.com/simgate/simgate/modem/internal/charsets"
)

// HandsetMessage is a message as a virtual handset received it: reassembled
// from its parts and decoded.
type HandsetMessage struct {
	From  string // the sending modem's number
	To    string // the handset, as addressed in the PDU
	Text  string
	Parts int
	Modem string // name of the sending modem
	At    time.Time
}

// Submission is one SMS-SUBMIT that left a modem for the network: the ground
// truth against which a host's bookkeeping can be checked.
type Submission struct {
	Modem string // Config.Name of the sending modem
	IMEI  string
	MR    int    // message reference the modem assigned and answered in +CMGS
	To    string // destination as in the PDU
	SMSC  string
	SRR   bool // a status report was requested
	// ConcatRef, Seq and Total come from the concatenation header; all zero
	// for a single-part message.
	ConcatRef, Seq, Total int
	Text                  string // decoded text of this part
	PDU                   string // the TPDU in upper-case hex, without SMSC
	// Received is when the modem had the whole PDU, At when the network took
	// it, after the modem's submit latency (when +CMGS is answered).
	Received, At time.Time
}

// reportPlan is what the network does with one submit, fixed when it is
// submitted.
type reportPlan struct {
	outcome ReportOutcome
	delay   time.Duration
	st      byte
}

// ErrUnknownNumber is returned by Network.Inject for a destination that is
// no modem's number.
var ErrUnknownNumber = errors.New("no modem has that number")

// ErrClosed is returned by methods of a closed Network.
var ErrClosed = errors.New("network is closed")

// Network is a simulated mobile network with its virtual modems. Messages a
// modem submits reach virtual handsets (see Inbox) or, if the destination is
// another modem's number, that modem; status reports flow back. Handsets
// send to modems with Inject.
//
// A Network owns every goroutine it starts: Close stops them all.
type Network struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	watch  *watcher // nil if inotify is unavailable

	mu         sync.Mutex
	closed     bool
	modems     []*Modem
	byName     map[string]*Modem
	dirs       map[*Modem]string
	inboxes    map[string][]HandsetMessage
	subs       []Submission
	collectors map[string]*sms.Collector // reassembly per sending modem
	enc        *sms.Encoder              // one encoder: distinct concat refs
	changed    chan struct{}             // closed and replaced on news
	noTimers   bool                      // fuzzing: deliveries and reports never happen
}

// NewNetwork returns an empty network. Add modems with Start; stop it with
// Close.
func NewNetwork() *Network {
	return newNetwork(true)
}

// newNetwork is NewNetwork, optionally without the device watcher (for
// fuzzing, where its goroutine would make coverage vary between runs).
func newNetwork(watch bool) *Network {
	charsets.Warm()
	ctx, cancel := context.WithCancel(context.Background())
	n := &Network{
		ctx:        ctx,
		cancel:     cancel,
		byName:     map[string]*Modem{},
		dirs:       map[*Modem]string{},
		inboxes:    map[string][]HandsetMessage{},
		collectors: map[string]*sms.Collector{},
		enc:        sms.NewEncoder(sms.AsDeliver),
		changed:    make(chan struct{}),
	}
	if !watch {
		return n
	}
	if w, err := newWatcher(); err == nil {
		// Without inotify the sim still works; only a client closing the
		// device goes unnoticed (Faults.Hung then needs SetFaults).
		n.watch = w
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			w.run()
		}()
	}
	return n
}

// Start creates one modem per config, each on its own pseudo-terminal with a
// symlink <dir>/<Name>, and plugs them in. It may be called again to add
// modems. Names and numbers must be unique in the network; a stale symlink
// of the same name is replaced. On error none of this call's modems remain.
func (n *Network) Start(dir string, cfgs ...Config) ([]*Modem, error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("cannot start modems: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("cannot start modems: %s is not a directory", dir)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	var mods []*Modem
	base := len(n.modems)
	for i, cfg := range cfgs {
		cfg.ICCIDCommands = slices.Clone(cfg.ICCIDCommands)
		cfg.setDefaults(base + i)
		err := cfg.validate()
		if err == nil {
			if _, dup := n.byName[cfg.Name]; dup {
				err = fmt.Errorf("modem %s: duplicate name", cfg.Name)
			} else if other := n.byNumberLocked(cfg.Number); other != nil {
				err = fmt.Errorf("modem %s: number %s is taken by %s", cfg.Name, cfg.Number, other.cfg.Name)
			}
		}
		if err != nil {
			for _, m := range mods {
				n.removeLocked(m)
			}
			n.mu.Unlock()
			return nil, err
		}
		m := newModem(n, cfg, base+i)
		n.modems = append(n.modems, m)
		n.byName[cfg.Name] = m
		n.dirs[m] = dir
		mods = append(mods, m)
	}
	n.mu.Unlock()

	for _, m := range mods {
		d, err := n.plug(m, m.cfg.Name)
		if err != nil {
			for _, m := range mods {
				_ = m.Unplug()
			}
			n.mu.Lock()
			for _, m := range mods {
				n.removeLocked(m)
			}
			n.mu.Unlock()
			return nil, err
		}
		m.mu.Lock()
		m.attachLocked(d)
		m.mu.Unlock()
	}
	return mods, nil
}

func (n *Network) removeLocked(m *Modem) {
	n.modems = slices.DeleteFunc(n.modems, func(x *Modem) bool { return x == m })
	delete(n.byName, m.cfg.Name)
	delete(n.dirs, m)
}

// Modems returns all modems in the order they were started.
func (n *Network) Modems() []*Modem {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.modems)
}

// Modem returns the modem with Config.Name name (its name at Start, whatever
// device name a Replug gave it), or nil.
func (n *Network) Modem(name string) *Modem {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.byName[name]
}

func (n *Network) byNumberLocked(number string) *Modem {
	k := numberKey(number)
	for _, m := range n.modems {
		if numberKey(m.cfg.Number) == k {
			return m
		}
	}
	return nil
}

// plug creates a device for m: a pty in raw mode, the inotify watch, the
// symlink <dir>/<name>, and the read and write goroutines.
func (n *Network) plug(m *Modem, name string) (*device, error) {
	n.mu.Lock()
	dir, closed := n.dirs[m], n.closed
	n.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	link := filepath.Join(dir, name)
	if fi, err := os.Lstat(link); err == nil {
		if fi.Mode()&os.ModeSymlink == 0 {
			return nil, fmt.Errorf("cannot plug %s: %s exists and is not a symlink", m.cfg.Name, link)
		}
		if target, _ := os.Readlink(link); n.linkInUse(link, m) {
			return nil, fmt.Errorf("cannot plug %s: %s (-> %s) belongs to another modem", m.cfg.Name, link, target)
		}
		if err := os.Remove(link); err != nil {
			return nil, fmt.Errorf("cannot plug %s: %w", m.cfg.Name, err)
		}
	}
	master, slave, err := openPTY()
	if err != nil {
		return nil, err
	}
	d := &device{master: master, slave: slave, link: link, wd: -1}
	d.out.ready = make(chan struct{}, 1)
	if n.watch != nil {
		// Watch before the symlink exists, so that no client open is missed.
		if d.wd, err = n.watch.add(slave.Name(), m); err != nil {
			d.wd = -1
		}
	}
	if err := os.Symlink(slave.Name(), link); err != nil {
		if n.watch != nil && d.wd >= 0 {
			n.watch.remove(d.wd)
		}
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("cannot plug %s: %w", m.cfg.Name, err)
	}
	d.ctx, d.cancel = context.WithCancel(n.ctx)
	d.wg.Add(2)
	go m.readLoop(d)
	go m.writeLoop(d)
	return d, nil
}

// linkInUse reports whether link is the device of a plugged modem other
// than m.
func (n *Network) linkInUse(link string, m *Modem) bool {
	for _, o := range n.Modems() {
		if o != m && o.Plugged() && o.Path() == link {
			return true
		}
	}
	return false
}

// unplug tears a device down: no more goroutines, no pty, no symlink.
func (n *Network) unplug(d *device) error {
	d.cancel()
	if n.watch != nil && d.wd >= 0 {
		n.watch.remove(d.wd)
	}
	var errs []error
	if err := os.Remove(d.link); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := d.master.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := d.slave.Close(); err != nil {
		errs = append(errs, err)
	}
	d.wg.Wait()
	return errors.Join(errs...)
}

// resetReadWait bounds how long a restarting modem waits for the host to
// read its last output (the OK of AT+CFUN=1,1) before its device goes: a
// pty discards what the slave side has not read when the master closes.
// resetSettle is how long it waits at least: the kernel hands what the
// master wrote to the slave side from a work queue, so an empty input
// queue right after the write does not mean the host read it.
const (
	resetReadWait = time.Second
	resetSettle   = 50 * time.Millisecond
)

// restart tears down d, the device of m, for a restart (AT+CFUN=1,1 with
// Config.ResetUnplugs) once the host has read what the modem wrote, and
// plugs m in again under name after delay. It runs on a goroutine of the
// network, since the caller is d's read goroutine, which the teardown
// waits for. It reports false, and does nothing, when the network is
// closing: Close tears d down then.
func (n *Network) restart(m *Modem, d *device, delay time.Duration, name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		d.awaitRead(n.ctx, resetReadWait)
		_ = n.unplug(d)
		if !n.noTimers && sleep(n.ctx, delay) {
			m.comeBack(name)
		}
	}()
	return true
}

// awaitRead waits until the host has read everything written to d, at
// most max: until the write goroutine wrote it all, resetSettle, and until
// the slave's input queue is empty. There is no event for a read on the
// other side of a pty: it polls the queue (TIOCINQ).
func (d *device) awaitRead(ctx context.Context, max time.Duration) {
	deadline := time.Now().Add(max)
	for !d.out.empty() {
		if time.Now().After(deadline) || !sleep(ctx, 2*time.Millisecond) {
			return
		}
	}
	if !sleep(ctx, resetSettle) {
		return
	}
	for unread(d.slave) > 0 {
		if time.Now().After(deadline) || !sleep(ctx, 2*time.Millisecond) {
			return
		}
	}
}

// unread is how many bytes written to the pty wait for the host to read
// them; 0 when that cannot be told.
func unread(slave *os.File) int {
	if slave == nil {
		return 0
	}
	var n int
	_ = control(slave, func(fd int) error {
		var err error
		n, err = unix.IoctlGetInt(fd, unix.TIOCINQ)
		return err
	})
	return n
}

// Crash hangs the modem as a firmware crash does: as with Faults.Hung it
// swallows all input, AT+CFUN=1,1 included, and writes nothing, but closing
// the device does not end it, so reopening the port does not help. A
// restart that cuts the power does: USBReset, or Unplug and Replug.
// SetFaults without Hung and Unhang end it too.
func (m *Modem) Crash() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.faults.Hung = true
	m.crashed = true
}

// USBReset does to the modem what the kernel's USB reset (USBDEVFS_RESET)
// does, whatever the modem is doing, hung or crashed: its device goes away
// at once, as with Unplug, and comes back after Config.ResetDelay (under
// Config.ResetRename if set) in its power-on state, with Hung cleared,
// printing the profile's boot lines for the first client. It returns when
// the old device is gone; ErrUnplugged if the modem is not plugged in.
func (m *Modem) USBReset() error {
	m.mu.Lock()
	d := m.dev
	if d == nil {
		m.mu.Unlock()
		return ErrUnplugged
	}
	name := m.restartNameLocked(d)
	m.detachLocked()
	m.mu.Unlock()
	err := m.net.unplug(d)
	m.net.after(m.cfg.ResetDelay, func() { m.comeBack(name) })
	return err
}

// restartLocked restarts the modem as AT+CFUN=1,1 does with
// Config.ResetUnplugs: the device goes away once the host has read the
// OK, and comes back after Config.ResetDelay.
func (m *Modem) restartLocked() {
	d := m.dev
	if d == nil {
		return
	}
	if m.net.restart(m, d, m.cfg.ResetDelay, m.restartNameLocked(d)) {
		m.detachLocked()
	}
}

// restartNameLocked is the device name the modem comes back under after a
// restart of its device d.
func (m *Modem) restartNameLocked(d *device) string {
	if m.cfg.ResetRename != "" {
		return m.cfg.ResetRename
	}
	return filepath.Base(d.link)
}

// detachLocked takes the device away from the modem, as Unplug does: the
// modem reads and writes no more, and the network holds messages for it.
func (m *Modem) detachLocked() {
	m.dev = nil
	m.requeueAckWaitLocked()
}

// comeBack plugs the modem in again under name after a restart, in its
// power-on state with Hung cleared, unless it was plugged in meanwhile
// (Replug). A device that cannot be created is noted in the modem's log.
func (m *Modem) comeBack(name string) {
	if m.Plugged() {
		return
	}
	d, err := m.net.plug(m, name)
	if err != nil {
		m.mu.Lock()
		m.logLocked("(restart: cannot plug in again: " + err.Error() + ")")
		m.mu.Unlock()
		return
	}
	m.mu.Lock()
	if m.dev != nil {
		m.mu.Unlock()
		_ = m.net.unplug(d)
		return
	}
	m.powerOnLocked()
	m.faults.Hung, m.crashed = false, false
	m.attachLocked(d)
	if !m.prof.bootAtPlug {
		m.bootLocked() // else attachLocked wrote them
	}
	m.mu.Unlock()
	if m.net.ctx.Err() != nil {
		// Close ran meanwhile and may have missed this device.
		_ = m.Unplug()
	}
}

// Close unplugs every modem, stops all goroutines and removes the symlinks.
// Messages still in flight are dropped.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	mods := slices.Clone(n.modems)
	n.mu.Unlock()
	n.cancel()
	var errs []error
	for _, m := range mods {
		if err := m.Unplug(); err != nil && !errors.Is(err, ErrUnplugged) {
			errs = append(errs, fmt.Errorf("cannot unplug %s: %w", m.cfg.Name, err))
		}
	}
	if n.watch != nil {
		if err := n.watch.close(); err != nil {
			errs = append(errs, err)
		}
	}
	n.wg.Wait()
	n.mu.Lock()
	for _, c := range n.collectors {
		c.Close()
	}
	n.mu.Unlock()
	return errors.Join(errs...)
}

// after runs fn after d on a goroutine the network owns; nothing runs after
// Close.
func (n *Network) after(d time.Duration, fn func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || n.noTimers {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if sleep(n.ctx, d) {
			fn()
		}
	}()
}

// notifyLocked wakes the Wait* methods.
func (n *Network) notifyLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// submitted takes an SMS-SUBMIT that left modem m with reference mr, whose
// PDU the modem received at received: it logs it, and after the report delay
// delivers it and reports back as planned.
func (n *Network) submitted(m *Modem, sub *submitPDU, mr int, smsc string, plan reportPlan, received time.Time) {
	at := time.Now()
	s := Submission{
		Modem:    m.cfg.Name,
		IMEI:     m.cfg.IMEI,
		MR:       mr,
		To:       sub.tpdu.DA.Number(),
		SMSC:     smsc,
		SRR:      sub.tpdu.FirstOctet.SRR(),
		Text:     partText(&sub.tpdu),
		PDU:      strings.ToUpper(fmt.Sprintf("%x", sub.raw)),
		Received: received,
		At:       at,
	}
	if total, seq, ref, ok := sub.tpdu.ConcatInfo(); ok {
		s.Total, s.Seq, s.ConcatRef = total, seq, ref
	}
	n.mu.Lock()
	n.subs = append(n.subs, s)
	n.notifyLocked()
	n.mu.Unlock()

	report := func(st byte) {
		if !s.SRR {
			return
		}
		b, err := statusReportTPDU(byte(mr), sub.tpdu.DA, at, time.Now(), st)
		if err == nil {
			m.receiveReport(b, smsc)
		}
	}
	switch plan.outcome {
	case ReportTempThenDelivered:
		st := plan.st
		if st == 0 {
			st = 0x21 // SME busy
		}
		n.after(plan.delay, func() { report(st) })
		n.after(2*plan.delay, func() {
			n.deliver(m, sub)
			report(0x00)
		})
	case ReportPermanent:
		st := plan.st
		if st == 0 {
			st = 0x41 // incompatible destination
		}
		n.after(plan.delay, func() { report(st) })
	case ReportNone:
		n.after(plan.delay, func() { n.deliver(m, sub) })
	default:
		n.after(plan.delay, func() {
			n.deliver(m, sub)
			report(0x00)
		})
	}
}

// deliver hands a submitted part to its destination: the handset's inbox
// once all parts are there, and the destination modem if it is one.
func (n *Network) deliver(from *Modem, sub *submitPDU) {
	now := time.Now()
	dest := sub.tpdu.DA.Number()
	n.mu.Lock()
	c := n.collectors[from.cfg.Name]
	if c == nil {
		c = sms.NewCollector()
		n.collectors[from.cfg.Name] = c
	}
	segs, err := c.Collect(sub.tpdu)
	if err == nil && segs != nil {
		var text string
		if b, derr := sms.Decode(segs); derr == nil {
			text = validText(b)
		} else {
			for _, s := range segs {
				text += partText(s)
			}
		}
		k := numberKey(dest)
		n.inboxes[k] = append(n.inboxes[k], HandsetMessage{
			From: from.cfg.Number, To: dest, Text: text, Parts: len(segs), Modem: from.cfg.Name, At: now,
		})
		n.notifyLocked()
	}
	target := n.byNumberLocked(dest)
	n.mu.Unlock()
	if target != nil {
		if b, err := deliverFromSubmit(&sub.tpdu, from.cfg.Number, now); err == nil {
			target.receiveSMS(b, target.cfg.SMSC)
		}
	}
}

// Inbox returns the messages the handset with this number received, oldest
// first. "+15551234" and "15551234" are the same number.
func (n *Network) Inbox(number string) []HandsetMessage {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.inboxes[numberKey(number)])
}

// WaitInbox waits until the handset has received at least count messages and
// returns them, or returns ctx's error.
func (n *Network) WaitInbox(ctx context.Context, number string, count int) ([]HandsetMessage, error) {
	for {
		n.mu.Lock()
		got := slices.Clone(n.inboxes[numberKey(number)])
		ch := n.changed
		n.mu.Unlock()
		if len(got) >= count {
			return got, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
}

// Submissions returns every SMS-SUBMIT that left a modem, in order.
func (n *Network) Submissions() []Submission {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.subs)
}

// WaitSubmissions waits until at least count submits were made and returns
// them all, or returns ctx's error.
func (n *Network) WaitSubmissions(ctx context.Context, count int) ([]Submission, error) {
	for {
		// Only the count is read while waiting: copying every submission at
		// each change would hold the network's lock, which every submit
		// takes, for longer and longer.
		n.mu.Lock()
		done := len(n.subs) >= count
		ch := n.changed
		n.mu.Unlock()
		if done {
			return n.Submissions(), nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return n.Submissions(), ctx.Err()
		}
	}
}

// Inject sends text from a handset to the modem whose number is to. Texts
// that GSM-7 cannot carry go as UCS-2; long texts are split into
// concatenated parts. The modem gets them as its AT+CNMI says (+CMTI,
// +CMT, or silently stored); while it is unregistered or unplugged the
// network holds them.
func (n *Network) Inject(from, to, text string) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	target := n.byNumberLocked(to)
	if target == nil {
		n.mu.Unlock()
		return fmt.Errorf("cannot inject to %s: %w", to, ErrUnknownNumber)
	}
	if numberKey(from) == "" {
		n.mu.Unlock()
		return fmt.Errorf("cannot inject from %q: invalid number", from)
	}
	pdus, err := n.enc.Encode([]byte(text), sms.From(from))
	n.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cannot encode message: %w", err)
	}
	if len(pdus) == 0 {
		// An empty text still makes one (empty) SMS.
		t, _ := tpdu.NewDeliver(tpdu.WithOA(tpdu.NewAddress(tpdu.FromNumber(from))))
		pdus = []tpdu.TPDU{*t}
	}
	now := time.Now()
	var bs [][]byte
	for i := range pdus {
		p := &pdus[i]
		p.FirstOctet |= tpdu.FoMMS
		if !strings.HasPrefix(from, "+") {
			p.OA.TOA = 0x81
		}
		p.SCTS = tpdu.Timestamp{Time: now}
		b, err := p.MarshalBinary()
		if err != nil {
			return fmt.Errorf("cannot encode message: %w", err)
		}
		bs = append(bs, b)
	}
	for _, b := range bs {
		target.receiveSMS(b, target.cfg.SMSC)
	}
	return nil
}
