package modem

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/simgate/simgate"
)

// resetKind names a reset step, for logs and the resets_total{kind}
// metric. Resets come after resync and reopen, and before quarantine, for
// a modem that stopped answering: a soft reset (AT+CFUN=1,1, or the
// modem's own reset command), then, where configured, a reset of its USB
// device through the kernel, which is what admins do by hand (usbreset(1)).
type resetKind string

const (
	resetSoft resetKind = "soft" // AT+CFUN=1,1 or the configured command
	resetUSB  resetKind = "usb"  // USBDEVFS_RESET on the modem's USB device
)

// defaultResetCommand restarts the modem (27.007 §8.2: <fun>=1 full
// functionality, <rst>=1 reset the MT before setting it).
const defaultResetCommand = "+CFUN=1,1"

// softReset restarts the modem on c with command ("AT" optional;
// AT+CFUN=1,1 when empty). The modem may answer OK, answer nothing (it
// restarted before it could), or take the port away during or after the
// command (a USB modem re-enumerates): all of these are success, and the
// caller closes c and looks for the modem again by identity, possibly
// under a new path. Some modems (on a UART) restart behind the open port
// instead and print their boot lines there. An error answer (ERROR,
// +CME ERROR) is a modem that refused: the error says so. A ctx that ends
// first is its error.
func (c *conn) softReset(ctx context.Context, command string) error {
	command = strings.TrimSpace(command)
	if len(command) >= 2 && strings.EqualFold(command[:2], "AT") {
		command = command[2:]
	}
	if command == "" {
		command = defaultResetCommand
	}
	_, err := c.cmd(ctx, command)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, ErrPortClosed), errors.Is(err, ErrTimeout):
		return nil
	}
	return fmt.Errorf("cannot reset the modem with AT%s: %w", command, err)
}

// usbResetter resets a USB device node; the kernel one issues USBDEVFS_RESET.
type usbResetter interface {
	// Reset resets the USB device at devNode ("/dev/bus/usb/001/004"). The
	// error wraps the one of open(2) or ioctl(2): fs.ErrPermission without
	// write access to the node (root, or a udev rule), fs.ErrNotExist for a
	// device that is gone.
	Reset(devNode string) error
}

// kernelUSB resets USB devices through usbfs.
type kernelUSB struct{}

var _ usbResetter = kernelUSB{}

// usbdevfsReset is USBDEVFS_RESET of linux/usbdevice_fs.h, _IO('U', 20):
// an ioctl without argument, so direction and size are 0 and the number is
// just type << 8 | nr = 0x5514.
const usbdevfsReset = 'U'<<8 | 20

// Reset opens devNode for writing, as usbreset(1) does, and resets the
// device. The kernel unbinds its drivers and binds them again: the modem's
// ttys go away and come back, maybe under other names.
func (kernelUSB) Reset(devNode string) error {
	fd, err := unix.Open(devNode, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", devNode, err)
	}
	defer unix.Close(fd)
	for {
		err = unix.IoctlSetInt(fd, usbdevfsReset, 0)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("cannot reset USB device %s: %w", devNode, err)
	}
	return nil
}

// errNotUSB: the tty is not on a USB device (a built-in UART, a
// pseudo-terminal): there is nothing to reset through usbfs.
var errNotUSB = errors.New("not a USB device")

// usbDeviceNode returns the usbfs node of the USB device behind the tty at
// ttyPath: "/dev/ttyUSB2" (or a /dev/serial/by-id link to it) ->
// "/dev/bus/usb/001/004". sysfsRoot and devRoot are "/sys" and "/dev" but
// for tests.
//
// sysfs links the tty to its device: for usb-serial drivers (option,
// qcserial) <sysfs>/class/tty/ttyUSB2/device is .../1-1.2/1-1.2:1.2/ttyUSB2,
// the port under the USB interface; for cdc-acm ttyACM0's is the interface
// .../1-1.2/1-1.2:1.0 itself. The USB device is the nearest directory above
// with busnum and devnum files. A tty without that (a UART, a pty) is
// errNotUSB. Errors name the file that was missing.
func usbDeviceNode(sysfsRoot, devRoot, ttyPath string) (string, error) {
	tty, err := filepath.EvalSymlinks(ttyPath)
	if err != nil {
		return "", fmt.Errorf("cannot find the USB device of %s: %w", ttyPath, err)
	}
	name := filepath.Base(tty)
	link := filepath.Join(sysfsRoot, "class", "tty", name, "device")
	dev, err := filepath.EvalSymlinks(link)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("cannot find the USB device of %s: %s missing: %w", ttyPath, link, errNotUSB)
		}
		return "", fmt.Errorf("cannot find the USB device of %s: %w", ttyPath, err)
	}
	root, err := filepath.EvalSymlinks(sysfsRoot)
	if err != nil {
		return "", fmt.Errorf("cannot find the USB device of %s: %w", ttyPath, err)
	}
	for d := dev; d != root && strings.HasPrefix(d, root+string(filepath.Separator)); d = filepath.Dir(d) {
		bus, berr := os.ReadFile(filepath.Join(d, "busnum"))
		num, nerr := os.ReadFile(filepath.Join(d, "devnum"))
		if errors.Is(berr, os.ErrNotExist) && errors.Is(nerr, os.ErrNotExist) {
			continue // an interface or port directory: go up
		}
		b, err := sysfsNumber(d, "busnum", bus, berr)
		if err != nil {
			return "", fmt.Errorf("cannot find the USB device of %s: %w", ttyPath, err)
		}
		n, err := sysfsNumber(d, "devnum", num, nerr)
		if err != nil {
			return "", fmt.Errorf("cannot find the USB device of %s: %w", ttyPath, err)
		}
		node := filepath.Join(devRoot, "bus", "usb", fmt.Sprintf("%03d", b), fmt.Sprintf("%03d", n))
		if _, err := os.Stat(node); err != nil {
			return "", fmt.Errorf("cannot find the USB device of %s: %s missing (usbfs not mounted on %s?): %w", ttyPath, node, devRoot, err)
		}
		return node, nil
	}
	return "", fmt.Errorf("cannot find the USB device of %s: no busnum and devnum files above %s: %w", ttyPath, dev, errNotUSB)
}

// sysfsNumber parses the number in the sysfs file name of dir, read as b
// with error err.
func sysfsNumber(dir, name string, b []byte, err error) (int, error) {
	p := filepath.Join(dir, name)
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("%s missing", p)
	}
	if err != nil {
		return 0, fmt.Errorf("cannot read %s: %w", p, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 || n > 999 {
		return 0, fmt.Errorf("invalid %s %q in %s", name, strings.TrimSpace(string(b)), p)
	}
	return n, nil
}

// usbResetTTY resets the USB device behind the tty at ttyPath with r and
// returns its node. Look the node up while the tty is there: the modem is
// hung, not gone.
func usbResetTTY(r usbResetter, sysfsRoot, devRoot, ttyPath string) (string, error) {
	node, err := usbDeviceNode(sysfsRoot, devRoot, ttyPath)
	if err != nil {
		return "", err
	}
	if err := r.Reset(node); err != nil {
		return node, err
	}
	return node, nil
}

// defaultResetLimit is how many resets a modem may need in a UTC day
// before it is reported degraded.
const defaultResetLimit = 3

// resetCounter counts a modem's resets by kind in the current UTC day, to
// tell a modem that needs them too often. It is safe for concurrent use:
// the modem's goroutine adds, Status reads.
type resetCounter struct {
	now   simgate.Clock
	limit int

	mu     sync.Mutex
	day    string // UTC date the counts are of, "2006-01-02"
	counts map[resetKind]int
}

// newResetCounter returns a counter for which more than limit resets in a
// UTC day are too many (limit <= 0: defaultResetLimit); now is the clock
// (nil: time.Now).
func newResetCounter(limit int, now simgate.Clock) *resetCounter {
	if limit <= 0 {
		limit = defaultResetLimit
	}
	if now == nil {
		now = time.Now
	}
	return &resetCounter{now: now, limit: limit, counts: map[resetKind]int{}}
}

// rollLocked starts a new day's counts when the UTC day changed.
func (r *resetCounter) rollLocked() {
	if d := r.now().UTC().Format(time.DateOnly); d != r.day {
		r.day = d
		clear(r.counts)
	}
}

// add counts one reset of kind and returns today's total of all kinds.
func (r *resetCounter) add(kind resetKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rollLocked()
	r.counts[kind]++
	return r.totalLocked()
}

// today returns today's resets of all kinds.
func (r *resetCounter) today() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rollLocked()
	return r.totalLocked()
}

func (r *resetCounter) totalLocked() int {
	n := 0
	for _, c := range r.counts {
		n += c
	}
	return n
}

// tooMany reports whether the modem needed more than the limit of resets
// today, and then why, for ModemStatus.Reason: "needed 4 resets today
// (UTC), more than 3: 3 soft, 1 usb".
func (r *resetCounter) tooMany() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rollLocked()
	n := r.totalLocked()
	if n <= r.limit {
		return false, ""
	}
	kinds := make([]string, 0, len(r.counts))
	for k := range r.counts {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	for i, k := range kinds {
		kinds[i] = fmt.Sprintf("%d %s", r.counts[resetKind(k)], k)
	}
	return true, fmt.Sprintf("needed %d resets today (UTC), more than %d: %s", n, r.limit, strings.Join(kinds, ", "))
}

// notAnswering reports whether a failed connect means the modem is there but
// does not answer (the case a reset can help), not that it is gone.
func notAnswering(err error) bool {
	return errors.Is(err, ErrNotAnswering) || errors.Is(err, ErrTimeout)
}

// escalate resets a modem that is there but does not answer: soft (the
// configured ResetCommand, AT+CFUN=1,1 by default) when soft is set, else
// through USB when Config.USBReset allows it. Each reset is logged and
// counted; the modem is then looked for again as usual, under its old path
// or a new one.
func (m *Modem) escalate(ctx context.Context, soft bool) {
	m.mu.Lock()
	path := m.lastPath
	m.mu.Unlock()
	if path == "" && !strings.ContainsAny(m.cfg.Device, "*?[") {
		path = m.cfg.Device
	}
	if path == "" {
		return
	}
	if soft {
		cmd := m.cfg.ResetCommand
		if cmd == "" {
			cmd = defaultResetCommand
		}
		c, err := openConn(path, m.cfg.Baud, m.opts.CommandTimeout)
		if err != nil {
			m.log.Warn("cannot soft-reset the modem", "device", path, "error", err)
			return
		}
		err = c.softReset(ctx, cmd)
		c.close()
		n := m.resets.add(resetSoft)
		m.mu.Lock()
		m.st.Counters.SoftResets++
		m.mu.Unlock()
		m.log.Warn("modem not answering: soft reset sent", "device", path, "command", "AT"+strings.TrimPrefix(cmd, "AT"), "error", err, "resets_today", n)
		return
	}
	if !m.cfg.USBReset {
		return
	}
	node, err := usbResetTTY(m.opts.usb, m.opts.sysfsRoot, m.opts.devRoot, path)
	n := m.resets.add(resetUSB)
	m.mu.Lock()
	m.st.Counters.USBResets++
	m.mu.Unlock()
	m.log.Warn("modem not answering: USB reset", "device", path, "usb_device", node, "error", err, "resets_today", n)
}

// tooManyResets returns why the modem is degraded for its resets, or "".
// Called with m.mu held.
func (m *Modem) tooManyResets() string {
	if too, why := m.resets.tooMany(); too {
		return why
	}
	return ""
}

// errSoftReset ends a session whose modem was reset: it restarts, and is
// looked for again.
var errSoftReset = errors.New("soft reset")

// softResetInSession resets a modem whose firmware is stuck while it still
// answers (submits fail with ME failure although it was set up again), and
// ends the session: the modem restarts, possibly under a new path.
func (m *Modem) softResetInSession(ctx context.Context, c *conn, cause error) error {
	cmd := m.cfg.ResetCommand
	if cmd == "" {
		cmd = defaultResetCommand
	}
	err := c.softReset(ctx, cmd)
	n := m.resets.add(resetSoft)
	m.mu.Lock()
	m.st.Counters.SoftResets++
	m.mu.Unlock()
	m.log.Warn("modem stuck: soft reset sent", "cause", cause, "command", "AT"+strings.TrimPrefix(cmd, "AT"), "error", err, "resets_today", n)
	if err != nil && sessionEnding(err) {
		return err
	}
	return fmt.Errorf("%w after: %v", errSoftReset, cause)
}
