package modem

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"sync"
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
var noise = []string{
	"RING", "RDY", "Call Ready", "SMS Ready", "NORMAL POWER DOWN",
	"^RSSI:", "^BOOT:", "^MODE:", "^SRVST:", "^SIMST:", "^HCSQ:", "^DSFLOWRPT:",
	"^RFSWITCH:", "^CEND:", "^ORIG:", "^CONF:", "^CONN:", "^STIN:",
	"+CRING:", "+CLIP:", "+CUSD:", "+CIEV:", "+QIND:", "+CGEV:", "+PACSP",
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
}

func newFilter(rw io.ReadWriter) *filter {
	return &filter{
		rw:       rw,
		notify:   make(chan struct{}, 1),
		lateSeen: make(chan struct{}, 1),
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
		f.mu.Unlock()

		n, err := f.rw.Read(f.rbuf[:])
		f.mu.Lock()
		if n > 0 {
			f.feed(f.rbuf[:n])
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

// Write implements io.Writer for the at package.
func (f *filter) Write(p []byte) (int, error) {
	return f.rw.Write(p)
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
	switch {
	case s == "":
	case s[0] == '>':
		// The prompt, followed by a line end when something came right
		// after it (an unsolicited line).
		if f.submit == submitAwaiting {
			f.submit = submitPrompted
		}
	case strings.HasPrefix(s, "+CMT:"), strings.HasPrefix(s, "+CDS:"):
		f.header = s
		return
	case strings.HasPrefix(s, "+CMTI:"), strings.HasPrefix(s, "+CDSI:"):
		f.push(urc{line: s})
		return
	case isNoise(s):
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
	}
	f.out = append(f.out, raw...)
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
