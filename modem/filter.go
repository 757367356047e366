package modem

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// urc is one unsolicited result code taken out of the byte stream: its line
// and, for +CMT and +CDS, the PDU line that follows it.
type urc struct {
	line string
	pdu  string
}

// submitState tracks the AT+CMGS in flight, as seen by the filter.
type submitState int

const (
	submitIdle     submitState = iota
	submitAwaiting             // AT+CMGS written, no prompt yet
	submitPrompted             // "> " passed to the at package: the PDU may be written
	submitAnswered             // +CMGS: passed through
)

// noise are unsolicited lines that carry nothing we use. They are dropped so
// that they cannot be mistaken for a bare answer such as AT+CGMI's.
// A line that answers the command in flight is never noise (see expects):
// "+CPIN: READY" is noise after a SIM800's reset but the answer to AT+CPIN?,
// and "NO CARRIER" the end of a call but the answer to ATH.
var noise = []string{
	"RDY", "Call Ready", "SMS Ready", "NORMAL POWER DOWN", "NO CARRIER",
	"^RSSI:", "^BOOT:", "^MODE:", "^SRVST:", "^SIMST:", "^HCSQ:", "^DSFLOWRPT:",
	"^RFSWITCH:", "^CEND:", "^ORIG:", "^CONF:", "^CONN:", "^STIN:", "^CARDMODE:",
	"+CIEV:", "+QIND:", "+CGEV:", "+PACSP", "+CPIN:", "+CFUN:",
	"+WIND:", "+ZDONR:", "+ZPASR:", "+ZUSIMR:", "+ZEND",
}

// filter sits between the serial port and the at package (see the package
// comment). Read is called by the at package's line reader goroutine only;
// Write by its command loop; the other methods by the modem's goroutine.
type filter struct {
	rw io.ReadWriter

	rbuf [1024]byte // read from rw; used by Read only

	mu       sync.Mutex
	buf      []byte // bytes read but not yet a whole line
	out      []byte // bytes for the at package
	rerr     error  // read error to return once out is empty
	header   string // a +CMT/+CDS line waiting for its PDU line
	urcs     []urc
	submit   submitState
	eatOK    bool  // drop the next OK: it ends a late +CMGS answer
	late     []int // message references of late +CMGS answers
	dropped  int   // noise lines dropped
	notify   chan struct{}
	lateSeen chan struct{}
	// USSD answers (+CUSD), which may span lines; cusdSeen is signalled
	// for each.
	cusd     []string
	cusdPart string // a +CUSD whose quoted text has not ended yet
	cusdSeen chan struct{}

	// The command in flight, as written by the at package (see Write).
	cmdID   string    // e.g. "+CPIN"; "" when no command is in flight
	cmdBare bool      // its answer is a bare line (AT+CGSN, AT+CIMI)
	final   string    // a vendor final result code passed on as ERROR
	graceAt time.Time // when to end a one-line answer that has no OK; zero: none
	eatLate bool      // drop an OK or ERROR that ends a command after its grace
	dlSet   time.Time // read deadline last set on rw
}

func newFilter(rw io.ReadWriter) *filter {
	return &filter{
		rw:       rw,
		notify:   make(chan struct{}, 1),
		lateSeen: make(chan struct{}, 1),
		cusdSeen: make(chan struct{}, 1),
	}
}

// Read implements io.Reader for the at package. It never returns 0, nil: the
// at package's scanner gives up after 100 empty reads.
func (f *filter) Read(p []byte) (int, error) {
	for {
		f.mu.Lock()
		if len(f.out) > 0 {
			n := copy(p, f.out)
			f.out = f.out[n:]
			f.mu.Unlock()
			return n, nil
		}
		if f.rerr != nil {
			err := f.rerr
			f.mu.Unlock()
			return 0, err
		}
		f.setDeadline(f.graceAt)
		f.mu.Unlock()

		n, err := f.rw.Read(f.rbuf[:])
		f.mu.Lock()
		if n > 0 {
			f.safeFeed(f.rbuf[:n])
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = nil
			f.endGrace(time.Now())
			if n == 0 {
				f.mu.Unlock()
				continue
			}
		}
		if err == nil && n == 0 {
			err = io.ErrNoProgress
		}
		if err != nil {
			f.rerr = err
		}
		f.mu.Unlock()
	}
}

// safeFeed is feed with the driver's last line of defence: modem input that
// makes it panic ends the session with an error that names the input, and
// the port is reopened, instead of the process dying. Called with f.mu held.
func (f *filter) safeFeed(b []byte) {
	defer func() {
		if r := recover(); r != nil {
			f.rerr = fmt.Errorf("%w: the line filter failed on modem input %q: %v", ErrMalformed, b, r)
		}
	}()
	f.feed(b)
}

// setDeadline sets rw's read deadline to t (zero: none) when rw has one and
// it changed. It wakes Read when a one-line answer's grace runs out. Called
// with f.mu held.
func (f *filter) setDeadline(t time.Time) {
	if t.Equal(f.dlSet) {
		return
	}
	if d, ok := f.rw.(interface{ SetReadDeadline(time.Time) error }); ok {
		if d.SetReadDeadline(t) == nil {
			f.dlSet = t
		}
	}
}

// Write implements io.Writer for the at package. It notes the command that
// an "AT..." write starts, so that the filter knows which answer it reads.
func (f *filter) Write(p []byte) (int, error) {
	if cmd, ok := bytes.CutPrefix(p, []byte("AT")); ok {
		f.mu.Lock()
		f.startCommand(string(bytes.TrimRight(cmd, "\r\n")))
		f.mu.Unlock()
	}
	return f.rw.Write(p)
}

// startCommand records the command in flight. Called with f.mu held.
func (f *filter) startCommand(cmd string) {
	id := cmd
	if i := strings.IndexAny(cmd, "=?"); i >= 0 {
		id = cmd[:i]
	}
	f.cmdID = strings.ToUpper(id)
	f.cmdBare = (f.cmdID == "+CGSN" || f.cmdID == "+CIMI") && !strings.Contains(cmd, "=")
	f.final = ""
	f.graceAt = time.Time{}
	f.eatLate = false
}

// oneLine are the commands whose answer is complete in one information line
// (TS 27.007 §7.1, §8.1, §8.5, §7.2, §5.4, §7.3; 27.005 §3.2, §3.3).
// Wavecom MULTIBAND 900E firmware ends some of them without a final OK
// (docs/HARDWARE.md): such an answer is taken as complete after
// OneLineGrace.
var oneLine = map[string]bool{
	"+CPIN": true, "+CSQ": true, "+CREG": true, "+CGREG": true, "+CEREG": true,
	"+CGSN": true, "+CIMI": true, "+COPS": true, "+CMGF": true, "+CMEE": true, "+CSMS": true,
	"+CNMI": true, "+CPMS": true, "+CSCA": true,
}

// OneLineGrace is how long the filter waits for the final result code after
// the whole answer of a one-line command before it supplies the OK itself.
// A modem sends its OK in the same burst as the answer, milliseconds later.
const OneLineGrace = 500 * time.Millisecond

// vendorFinal are final result codes that end a command with an error but
// that the at package does not know, so it would wait for the timeout. They
// are passed on as ERROR and kept for the error message (takeFinal).
var vendorFinal = []string{
	"COMMAND NOT SUPPORT", // Huawei E1552, E1752, E173, ... for unknown commands
	"TOO MANY PARAMETERS", // Huawei
}

// callFinal are V.250 result codes that are final for call control
// commands only: elsewhere the modem prints them unsolicited when a call
// ends, and taking one for the answer would put the stream out of step.
var callFinal = []string{"NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE"}

// isCallControl reports whether id is a call control command that ends with
// a call result code (ATD, ATA, ATH, AT+CHUP, AT+CHLD).
func isCallControl(id string) bool {
	return strings.HasPrefix(id, "D") || id == "A" || id == "H" || id == "H0" || id == "+CHUP" || id == "+CHLD"
}

// endGrace supplies the OK of a one-line answer whose grace ran out, and
// makes a late final result code of that command be dropped. Called with
// f.mu held.
func (f *filter) endGrace(now time.Time) {
	if f.graceAt.IsZero() || now.Before(f.graceAt) {
		return
	}
	f.graceAt = time.Time{}
	f.cmdID = ""
	f.eatLate = true
	f.out = append(f.out, "\r\nOK\r\n"...)
}

// takeFinal returns the vendor final result code that ended the last
// command, or "".
func (f *filter) takeFinal() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.final
	f.final = ""
	return s
}

// feed splits b into lines and sorts them. Called with f.mu held.
func (f *filter) feed(b []byte) {
	f.buf = append(f.buf, b...)
	for {
		i := bytes.IndexByte(f.buf, '\n')
		if i < 0 {
			break
		}
		line := f.buf[:i+1]
		f.buf = f.buf[i+1:]
		f.line(line)
	}
	// The SMS prompt has no line end: pass it through at once.
	if t := bytes.TrimLeft(f.buf, "\r\n"); len(t) > 0 && t[0] == '>' {
		f.out = append(f.out, f.buf...)
		f.buf = f.buf[:0]
		if f.submit == submitAwaiting {
			f.submit = submitPrompted
		}
	}
	if len(f.buf) == 0 {
		f.buf = nil // do not keep a large array alive
	}
}

// line sorts one raw line (with its line end). Called with f.mu held.
func (f *filter) line(raw []byte) {
	s := strings.TrimSpace(string(raw))
	if f.header != "" {
		if s == "" {
			return
		}
		if isHex(s) {
			f.push(urc{line: f.header, pdu: s})
			f.header = ""
			return
		}
		// The PDU line never came: keep the header without it and treat
		// this line normally.
		f.push(urc{line: f.header})
		f.header = ""
	}
	if f.cusdPart != "" {
		if isFinal(s) {
			f.pushCUSD(f.cusdPart) // the closing quote never came
		} else {
			f.cusdPart += "\n" + strings.TrimRight(string(raw), "\r\n")
			if strings.Count(f.cusdPart, `"`)%2 == 0 {
				f.pushCUSD(f.cusdPart)
			}
			return
		}
	}
	switch {
	case s == "":
	case strings.HasPrefix(s, "+CUSD:"):
		// The network's USSD answer, solicited or not: the modem's goroutine
		// waits for it (runUSSD). A quoted text may go on over lines.
		if strings.Count(s, `"`)%2 == 1 {
			f.cusdPart = s
		} else {
			f.pushCUSD(s)
		}
		return
	case s[0] == '>':
		// The prompt, followed by a line end when something came right
		// after it (an unsolicited line).
		if f.submit == submitAwaiting {
			f.submit = submitPrompted
		}
	case strings.HasPrefix(s, "+CMT:"), strings.HasPrefix(s, "+CDS:"):
		f.header = s
		return
	case strings.HasPrefix(s, "+CMTI:"), strings.HasPrefix(s, "+CDSI:"),
		s == "RING", strings.HasPrefix(s, "+CRING:"), strings.HasPrefix(s, "+CLIP:") && !f.expects(s):
		// Messages, and incoming calls (calls.go).
		f.push(urc{line: s})
		return
	case isNoise(s) && !f.expects(s):
		f.dropped++
		return
	case strings.HasPrefix(s, "+CMGS:"):
		if f.submit != submitPrompted {
			// No prompt outstanding: the late answer to a submit the host
			// gave up on. It must not answer the next command.
			if mr, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(strings.TrimPrefix(s, "+CMGS:"), ",", 2)[0])); err == nil {
				f.late = append(f.late, mr)
			}
			f.eatOK = true
			select {
			case f.lateSeen <- struct{}{}:
			default:
			}
			return
		}
		f.submit = submitAnswered
	case s == "OK" && f.eatOK:
		f.eatOK = false
		return
	case f.eatLate && isFinal(s):
		// The final result code of a one-line answer whose OK the filter
		// already supplied: it came after the grace.
		f.eatLate = false
		return
	case f.cmdID != "" && f.submit == submitIdle && (slices.Contains(vendorFinal, s) || isCallControl(f.cmdID) && slices.Contains(callFinal, s)):
		f.final = s
		f.cmdID, f.graceAt = "", time.Time{}
		f.out = append(f.out, "\r\nERROR\r\n"...)
		return
	}
	switch {
	case f.cmdID == "" || f.submit != submitIdle:
	case isFinal(s):
		f.cmdID, f.graceAt = "", time.Time{}
	case oneLine[f.cmdID] && f.answers(s):
		f.graceAt = time.Now().Add(OneLineGrace)
	}
	f.out = append(f.out, raw...)
}

// expects reports whether s may be part of the answer to the command in
// flight. Called with f.mu held.
func (f *filter) expects(s string) bool {
	return f.cmdID != "" && (strings.HasPrefix(s, f.cmdID+":") || isCallControl(f.cmdID) && slices.Contains(callFinal, s))
}

// answers reports whether s is the information line of the one-line command
// in flight. Called with f.mu held.
func (f *filter) answers(s string) bool {
	if f.cmdBare {
		v, _, _ := strings.Cut(strings.TrimPrefix(s, f.cmdID+":"), ",")
		return allDigits(strings.Trim(strings.TrimSpace(v), `"`))
	}
	return strings.HasPrefix(s, f.cmdID+":")
}

// isFinal reports whether s is a final result code the at package knows.
func isFinal(s string) bool {
	return s == "OK" || strings.HasPrefix(s, "ERROR") || strings.HasPrefix(s, "+CME ERROR:") || strings.HasPrefix(s, "+CMS ERROR:")
}

// pushCUSD queues a whole +CUSD answer. Called with f.mu held.
func (f *filter) pushCUSD(s string) {
	f.cusdPart = ""
	f.cusd = append(f.cusd, s)
	select {
	case f.cusdSeen <- struct{}{}:
	default:
	}
}

// takeCUSD returns the +CUSD answers queued, oldest first.
func (f *filter) takeCUSD() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.cusd
	f.cusd = nil
	return l
}

func (f *filter) push(u urc) {
	f.urcs = append(f.urcs, u)
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

// takeURCs returns the queued unsolicited result codes, oldest first.
func (f *filter) takeURCs() []urc {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.urcs
	f.urcs = nil
	return u
}

// takeLate returns the message references of late +CMGS answers seen.
func (f *filter) takeLate() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.late
	f.late = nil
	return l
}

// beginSubmit is called just before AT+CMGS is written.
func (f *filter) beginSubmit() {
	f.mu.Lock()
	f.submit = submitAwaiting
	f.mu.Unlock()
}

// endSubmit is called when AT+CMGS returned; it reports whether the prompt
// was seen, that is whether the PDU may have been written.
func (f *filter) endSubmit() (prompted bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	prompted = f.submit == submitPrompted || f.submit == submitAnswered
	f.submit = submitIdle
	return prompted
}

func isNoise(s string) bool {
	for _, n := range noise {
		if s == n || (strings.HasSuffix(n, ":") && strings.HasPrefix(s, n)) || (n == "+PACSP" && strings.HasPrefix(s, n)) {
			return true
		}
	}
	return false
}

func isHex(s string) bool {
	if len(s) == 0 || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
