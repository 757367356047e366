package modem

import (
	"github.com/simgate/simgate"

	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warthog618/modem/at"
	"go.bug.st/serial"
	"golang.org/x/sys/unix"
)

// conn is one open serial port with the at package on top of it. It is used
// by one goroutine at a time.
//
// The port is opened and configured (raw mode, speed, TIOCEXCL) by
// go.bug.st/serial, but read and written through dev, a second descriptor of
// the same device that also holds the flock. go.bug.st/serial reads with a
// blocking select(2), so each idle read loop sits in a system call holding one
// of the scheduler's Ps until the runtime's monitor takes it back, up to 10 ms
// later: with tens of modems, answers waited for a P while the CPU was idle
// (docs/BENCHMARKS.md, "Queue"). dev is non-blocking and goes through the
// runtime's poller, as a socket does.
type conn struct {
	path    string
	dev     *os.File // flock against other probes; all reads and writes
	port    serial.Port
	f       *filter
	at      *at.AT
	timeout time.Duration // ordinary command timeout

	cnmi   cnmiSetting // chosen at initialisation
	phase2 bool        // AT+CSMS service 1: routed +CMT/+CDS need AT+CNMA
	clip   bool        // AT+CLIP=1 took: every RING is followed by +CLIP
	mem    string      // <mem1> of AT+CPMS last selected; "" unknown

	// unsupported are the commands (by their name, "+CEREG") the modem said
	// it does not know; they are not sent again. A Modem keeps one set for
	// all its sessions.
	unsupported map[string]bool
	// lastAnswer is the answer of the last command, for the fault guard's
	// log line.
	lastAnswer []string
	// claim is the pool's claim on the port, released when it closes.
	claim portClaim
	// listed is when the message stores were last listed (drainStores).
	listed time.Time
}

// openConn opens path. It sets no read timeout: the at package's scanner
// gives up after 100 empty reads.
func openConn(path string, baud int, timeout time.Duration) (*conn, error) {
	if baud <= 0 {
		baud = 115200
	}
	dev, err := lockPort(path)
	if err != nil {
		return nil, err
	}
	p, err := serial.Open(path, &serial.Mode{BaudRate: baud})
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("cannot open %s: %w", path, err)
	}
	f := newFilter(dev)
	c := &conn{
		path:    path,
		dev:     dev,
		port:    p,
		f:       f,
		at:      at.New(f, at.WithTimeout(timeout), at.WithEscTime(20*time.Millisecond)),
		timeout: timeout,

		unsupported: map[string]bool{},
	}
	return c, nil
}

// close closes the port and waits for the at package's goroutines, which end
// when their read fails.
func (c *conn) close() error {
	err := c.interrupt()
	<-c.at.Closed()
	return err
}

// interrupt closes both descriptors: a read or write in flight fails at once.
// It may be called more than once and from any goroutine.
func (c *conn) interrupt() error {
	c.dev.Close() // a second Close only says it was closed
	return c.port.Close()
}

// lockPort opens the device through a non-blocking descriptor of its own and
// takes an exclusive flock on it, so that no other simgate process or modem
// (probing for an identity, say) opens a port in use: TIOCEXCL, which
// go.bug.st/serial sets, does not stop root. The lock goes with the
// descriptor. os.OpenFile registers it with the runtime's poller.
func lockPort(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", path, err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB) }); err != nil {
		ferr = err
	}
	if ferr != nil {
		f.Close()
		if errors.Is(ferr, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("cannot open %s: %w", path, ErrPortBusy)
		}
		return nil, fmt.Errorf("cannot lock %s: %w", path, ferr)
	}
	return f, nil
}

// closed is closed when the port was closed or went away.
func (c *conn) closed() <-chan struct{} { return c.at.Closed() }

// cmdTimeout bounds d by ctx's deadline.
func cmdTimeout(ctx context.Context, d time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < d {
			if left < time.Millisecond {
				left = time.Millisecond
			}
			return left
		}
	}
	return d
}

// cmd runs AT<cmd> with the ordinary timeout. The at package cannot be
// interrupted, so ctx only shortens the timeout; Close interrupts a command by
// closing the port.
func (c *conn) cmd(ctx context.Context, cmd string) ([]string, error) {
	return c.cmdT(ctx, cmd, c.timeout)
}

func (c *conn) cmdT(ctx context.Context, cmd string, d time.Duration) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := cmdName(cmd)
	if c.unsupported[name] {
		return nil, &Error{Op: "AT" + cmd, Class: simgate.ClassModemUnhealthy, Err: ErrUnsupported}
	}
	info, err := c.at.Command(cmd, at.WithTimeout(cmdTimeout(ctx, d)))
	c.lastAnswer = info
	if err == nil {
		return info, nil
	}
	e := atError("AT"+cmd, err, false, false)
	if final := c.f.takeFinal(); final != "" && errors.Is(err, at.ErrError) {
		e.Err = fmt.Errorf("modem answered %q", final)
		if slices.Contains(vendorFinal, final) {
			e.Err = fmt.Errorf("%w (%s)", ErrUnsupported, final)
		}
	}
	if errors.Is(e, ErrUnsupported) || errors.Is(err, at.ErrError) && optional[name] {
		c.unsupported[name] = true
	}
	return info, e
}

// cmdName is the name of an AT command line without "AT": "+CEREG" for
// "+CEREG?" and "+CEREG=2".
func cmdName(cmd string) string {
	if i := strings.IndexAny(cmd, "=?"); i >= 0 {
		cmd = cmd[:i]
	}
	return strings.ToUpper(cmd)
}

// optional are commands that only some modems know, each with an
// alternative: a plain ERROR to them means "not on this modem" (27.007 §9.1:
// ERROR for a command the modem does not recognise), so they are not sent
// again.
var optional = map[string]bool{
	"+CEREG": true, "+CGREG": true, "+CNUM": true,
	"+CCID": true, "+QCCID": true, "^ICCID": true, "+ICCID": true, "!ICCID": true,
}

// query runs AT<cmd> and returns the value of the first answer line that
// starts with prefix ("+CSQ"): anything else in the answer (an unsolicited
// line that slipped in) is ignored.
func (c *conn) query(ctx context.Context, cmd, prefix string) (string, error) {
	info, err := c.cmd(ctx, cmd)
	if err != nil {
		return "", err
	}
	if v, ok := findPrefix(info, prefix); ok {
		return v, nil
	}
	return "", &Error{Op: "AT" + cmd, Class: simgate.ClassModemUnhealthy, Err: fmt.Errorf("%w: no %s line in %q", ErrMalformed, prefix, info)}
}

// findPrefix returns the value of the first line starting with prefix+":".
func findPrefix(info []string, prefix string) (string, bool) {
	for _, l := range info {
		if strings.HasPrefix(l, prefix+":") {
			return strings.TrimSpace(l[len(prefix)+1:]), true
		}
	}
	return "", false
}

// resync gets the modem back to a known state after a timeout: ESC cancels a
// pending AT+CMGS, CR ends a half-written line, then AT+CMGF? must answer
// with its own prefix (a bare OK could still be a late answer). It tries a
// few times.
func (c *conn) resync(ctx context.Context) error {
	var err error
	for i := 0; i < 3; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.at.Escape([]byte("\r\n")...)
		_, _ = c.cmdT(ctx, "", c.timeout/2+time.Millisecond)
		if _, err = c.query(ctx, "+CMGF?", "+CMGF"); err == nil {
			return nil
		}
		if errors.Is(err, ErrPortClosed) {
			return err
		}
	}
	return &Error{Op: "resync", Class: simgate.ClassModemUnhealthy, Err: err}
}

// fields splits a comma separated answer, trimming spaces and quotes.
func fields(s string) []string {
	var out []string
	var b strings.Builder
	inq := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '"':
			inq = !inq
		case ch == ',' && !inq:
			out = append(out, strings.TrimSpace(b.String()))
			b.Reset()
		default:
			b.WriteByte(ch)
		}
	}
	return append(out, strings.TrimSpace(b.String()))
}

func atoi(s string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	return n, err == nil
}
