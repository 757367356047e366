package sim

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
	"go.bug.st/serial"
)

// Every wait in these tests is bounded: a modem that does not answer fails
// the test instead of hanging it.
const (
	cmdTimeout  = 5 * time.Second
	waitTimeout = 10 * time.Second
)

// startNetwork starts a network with the given modems in a temporary
// directory and closes it when the test ends.
func startNetwork(t testing.TB, cfgs ...Config) (*Network, []*Modem) {
	t.Helper()
	n := NewNetwork()
	if len(cfgs) == 0 {
		cfgs = []Config{{}}
	}
	for i := range cfgs {
		// Fast defaults for tests.
		if cfgs[i].SubmitLatency == 0 {
			cfgs[i].SubmitLatency = 5 * time.Millisecond
		}
		if cfgs[i].ReportDelay == 0 {
			cfgs[i].ReportDelay = 20 * time.Millisecond
		}
	}
	mods, err := n.Start(t.TempDir(), cfgs...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n, mods
}

// client is a host talking to a virtual modem through go.bug.st/serial, as
// the modem driver does with hardware.
type client struct {
	t     testing.TB
	port  serial.Port
	lines chan string
	done  chan struct{}
	errMu sync.Mutex
	err   error // why the reader stopped
	seen  []string
}

// dial opens the device at path.
func dial(t testing.TB, path string) *client {
	t.Helper()
	port, err := serial.Open(path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatalf("serial.Open(%s): %v", path, err)
	}
	// DTR/RTS ioctls fail with ENOTTY on a pty: not fatal, but tried as a
	// driver would.
	_ = port.SetDTR(true)
	c := &client{t: t, port: port, lines: make(chan string, 1024), done: make(chan struct{})}
	go c.read()
	t.Cleanup(c.close)
	return c
}

func (c *client) close() {
	c.port.Close()
	<-c.done
}

// read splits the byte stream into lines; the "> " prompt of AT+CMGS, which
// has no line end, is its own token ">".
func (c *client) read() {
	defer close(c.done)
	defer close(c.lines)
	buf := make([]byte, 1024)
	var pend []byte
	for {
		n, err := c.port.Read(buf)
		for _, b := range buf[:n] {
			if b == '\n' || b == '\r' {
				if s := strings.TrimSpace(string(pend)); s != "" {
					c.lines <- s
				}
				pend = pend[:0]
				continue
			}
			pend = append(pend, b)
			if string(pend) == "> " {
				c.lines <- ">"
				pend = pend[:0]
			}
		}
		if err != nil {
			c.errMu.Lock()
			c.err = err
			c.errMu.Unlock()
			return
		}
	}
}

func (c *client) readErr() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

func (c *client) write(s string) {
	c.t.Helper()
	if _, err := c.port.Write([]byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// next returns the next line, or "" and false after timeout.
func (c *client) next(timeout time.Duration) (string, bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l, ok := <-c.lines:
		if ok && len(c.seen) < 200 {
			c.seen = append(c.seen, l)
		}
		return l, ok
	case <-t.C:
		return "", false
	}
}

func isFinal(l string) bool {
	switch l {
	case "OK", "ERROR", "COMMAND NOT SUPPORT", "TOO MANY PARAMETERS": // the last two: Huawei
		return true
	}
	return strings.HasPrefix(l, "+CME ERROR:") || strings.HasPrefix(l, "+CMS ERROR:")
}

// cmd sends an AT command line and returns the lines of its answer up to and
// including the final result code. The echo of the command is left out;
// unsolicited lines are kept.
func (c *client) cmd(line string) []string {
	c.t.Helper()
	c.write(line + "\r")
	return c.until(line, cmdTimeout)
}

func (c *client) until(echo string, timeout time.Duration) []string {
	c.t.Helper()
	out, err := c.tryUntil(echo, timeout)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// tryCmd is cmd for goroutines other than the test's: it returns errors.
func (c *client) tryCmd(line string) ([]string, error) {
	if _, err := c.port.Write([]byte(line + "\r")); err != nil {
		return nil, err
	}
	return c.tryUntil(line, cmdTimeout)
}

func (c *client) tryUntil(echo string, timeout time.Duration) ([]string, error) {
	var out []string
	deadline := time.Now().Add(timeout)
	for {
		l, ok := c.next(time.Until(deadline))
		if !ok {
			return out, fmt.Errorf("no final result after %v; got %q", timeout, out)
		}
		if l == echo {
			continue
		}
		out = append(out, l)
		if isFinal(l) {
			return out, nil
		}
	}
}

// trySend is sendPDU for goroutines other than the test's.
func (c *client) trySend(p pduLine) ([]string, error) {
	cmd := fmt.Sprintf("AT+CMGS=%d", p.length)
	if _, err := c.port.Write([]byte(cmd + "\r")); err != nil {
		return nil, err
	}
	for {
		l, ok := c.next(cmdTimeout)
		if !ok {
			return nil, errors.New("no prompt")
		}
		if l == ">" {
			break
		}
		if isFinal(l) {
			return nil, fmt.Errorf("%s: got %q instead of the prompt", cmd, l)
		}
	}
	if _, err := c.port.Write([]byte(p.hex + "\x1a")); err != nil {
		return nil, err
	}
	return c.tryUntil(p.hex, cmdTimeout)
}

// mustOK runs cmd and fails unless the answer ends in OK; it returns the
// information lines.
func (c *client) mustOK(line string) []string {
	c.t.Helper()
	got := c.cmd(line)
	if got[len(got)-1] != "OK" {
		c.t.Fatalf("%s: got %q, want OK", line, got)
	}
	return got[:len(got)-1]
}

// want runs cmd and checks its whole answer.
func (c *client) want(line string, want ...string) {
	c.t.Helper()
	got := c.cmd(line)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		c.t.Fatalf("%s: got %q, want %q", line, got, want)
	}
}

// waitFor returns the first line with prefix, skipping others.
func (c *client) waitFor(prefix string, timeout time.Duration) string {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		l, ok := c.next(time.Until(deadline))
		if !ok {
			c.t.Fatalf("no line %q within %v; seen %q", prefix, timeout, c.seen)
		}
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
}

// waitLines returns the line with prefix and the n lines after it.
func (c *client) waitLines(prefix string, n int, timeout time.Duration) []string {
	c.t.Helper()
	out := []string{c.waitFor(prefix, timeout)}
	for len(out) < n+1 {
		l, ok := c.next(timeout)
		if !ok {
			c.t.Fatalf("no line after %q", out)
		}
		out = append(out, l)
	}
	return out
}

// quiet checks that nothing arrives for d.
func (c *client) quiet(d time.Duration) {
	c.t.Helper()
	if l, ok := c.next(d); ok {
		c.t.Fatalf("unexpected line %q", l)
	}
}

// sendPDU sends one PDU with AT+CMGS in PDU mode and returns the answer
// lines after the prompt.
func (c *client) sendPDU(p pduLine) []string {
	c.t.Helper()
	cmd := fmt.Sprintf("AT+CMGS=%d", p.length)
	c.write(cmd + "\r")
	c.waitPrompt(cmd)
	c.write(p.hex + "\x1a")
	return c.until(p.hex, cmdTimeout)
}

func (c *client) waitPrompt(echo string) {
	c.t.Helper()
	for {
		l, ok := c.next(cmdTimeout)
		if !ok {
			c.t.Fatalf("no prompt; seen %q", c.seen)
		}
		if l == ">" {
			return
		}
		if l == echo {
			continue
		}
		if isFinal(l) {
			c.t.Fatalf("%s: got %q instead of the prompt", echo, l)
		}
	}
}

// mrOf returns the message reference of a +CMGS answer.
func mrOf(t testing.TB, answer []string) int {
	t.Helper()
	for _, l := range answer {
		if rest, ok := strings.CutPrefix(l, "+CMGS: "); ok {
			mr, err := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
			if err != nil {
				t.Fatalf("bad +CMGS %q", l)
			}
			return mr
		}
	}
	t.Fatalf("no +CMGS in %q", answer)
	return -1
}

// pduLine is an SMS-SUBMIT as a host sends it: hex with SMSC prefix "00"
// (use AT+CSCA), and the TPDU length for AT+CMGS.
type pduLine struct {
	hex    string
	length int
}

// srrOption sets TP-SRR: warthog618/sms has no option for it.
type srrOption struct{}

func (srrOption) ApplyTPDUOption(t *tpdu.TPDU) error {
	t.FirstOctet |= tpdu.FoSRR
	return nil
}

// encodeSubmit builds the PDUs for text to number with warthog618/sms, as
// the modem driver does. enc may be nil for a one-off message.
func encodeSubmit(t testing.TB, enc *sms.Encoder, to, text string, srr bool, opts ...sms.EncoderOption) []pduLine {
	t.Helper()
	opts = append(opts, sms.To(to))
	if srr {
		opts = append(opts, sms.WithTemplateOption(srrOption{}))
	}
	var pdus []tpdu.TPDU
	var err error
	if enc != nil {
		pdus, err = enc.Encode([]byte(text), opts...)
	} else {
		pdus, err = sms.Encode([]byte(text), opts...)
	}
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	var out []pduLine
	for _, p := range pdus {
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		out = append(out, pduLine{hex: fmt.Sprintf("00%X", b), length: len(b)})
	}
	return out
}

// decodePDULine decodes the PDU line of +CMT, +CDS or +CMGR: it checks that
// <length> matches the TPDU after the SMSC prefix (or, with withSMSC false,
// the whole PDU).
func decodePDULine(t testing.TB, length int, line string, withSMSC bool) *tpdu.TPDU {
	t.Helper()
	var tp []byte
	if withSMSC {
		p, err := pdumode.UnmarshalHexString(line)
		if err != nil {
			t.Fatalf("pdumode %q: %v", line, err)
		}
		tp = p.TPDU
	} else {
		var err error
		if _, err = fmt.Sscanf(line, "%X", &tp); err != nil {
			t.Fatalf("hex %q: %v", line, err)
		}
	}
	if len(tp) != length {
		t.Fatalf("length %d, TPDU has %d octets (%q)", length, len(tp), line)
	}
	d := tpdu.TPDU{Direction: tpdu.MT}
	if err := d.UnmarshalBinary(tp); err != nil {
		t.Fatalf("tpdu %q: %v", line, err)
	}
	return &d
}

func lengthOf(t testing.TB, line, prefix string) int {
	t.Helper()
	f := strings.Split(strings.TrimPrefix(line, prefix), ",")
	n, err := strconv.Atoi(strings.TrimSpace(f[len(f)-1]))
	if err != nil {
		t.Fatalf("no length in %q", line)
	}
	return n
}

func ctxTimeout(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func waitInbox(t testing.TB, n *Network, number string, count int) []HandsetMessage {
	t.Helper()
	got, err := n.WaitInbox(ctxTimeout(t), number, count)
	if err != nil {
		t.Fatalf("inbox of %s: got %d messages %+v, want %d: %v", number, len(got), got, count, err)
	}
	return got
}

// eventually polls cond until it holds or the wait times out.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
