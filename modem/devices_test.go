package modem

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/warthog618/sms/encoding/tpdu"

	"github.com/simgate/simgate/modem/internal/charsets"
)

// deviceCase is one recorded answer of a real device, from
// testdata/devices (its README describes the format and the sources).
type deviceCase struct {
	file, name                   string
	device, family, source, kind string
	command, form                string
	length                       int // -1: none
	// noFinal is set when the device printed no final result code after
	// its answer ("final: none"). Otherwise an answer recorded without one
	// (parser tests keep only the information text) gets the OK the device
	// sent.
	noFinal bool
	answer  []string
	expect  map[string]string
}

// loadDeviceCases reads every case under testdata/devices.
func loadDeviceCases(t testing.TB) []deviceCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "devices", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []deviceCase
	for _, f := range files {
		cs, err := parseDeviceFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cs...)
	}
	return out
}

// parseDeviceFile parses one corpus file; an error names the file and line.
func parseDeviceFile(path string) ([]deviceCase, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []deviceCase
	var cur *deviceCase
	section := ""
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSuffix(line, "\r")
		where := fmt.Sprintf("%s:%d", path, i+1)
		switch {
		case strings.HasPrefix(line, "=== "):
			out = append(out, deviceCase{file: filepath.Base(path), name: strings.TrimSpace(line[4:]), length: -1, expect: map[string]string{}})
			cur, section = &out[len(out)-1], "header"
		case cur == nil || section == "header" && strings.HasPrefix(line, "#"):
		case section == "header" && line == "answer:":
			section = "answer"
		case section == "header" && strings.TrimSpace(line) == "":
		case section == "header":
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("%s: want key: value in the header, got %q", where, line)
			}
			v = strings.TrimSpace(v)
			switch k {
			case "device":
				cur.device = v
			case "family":
				cur.family = v
			case "source":
				cur.source = v
			case "kind":
				cur.kind = v
			case "command":
				cur.command = v
			case "form":
				cur.form = v
			case "final":
				cur.noFinal = v == "none"
			case "length":
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("%s: length %q is not a number", where, v)
				}
				cur.length = n
			case "expect-from":
			default:
				return nil, fmt.Errorf("%s: unknown header key %q", where, k)
			}
		case section == "answer" && line == "expect:":
			section = "expect"
		case section == "answer":
			cur.answer = append(cur.answer, line)
		case section == "expect" && strings.TrimSpace(line) == "":
		case section == "expect":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("%s: want key=value in expect, got %q", where, line)
			}
			cur.expect[strings.TrimSpace(k)] = v
		}
	}
	for _, c := range out {
		if c.kind == "" || c.family == "" || c.source == "" || len(c.expect) == 0 {
			return nil, fmt.Errorf("%s: case %s lacks kind, family, source or expectations", path, c.name)
		}
	}
	return out, nil
}

// deviceFamilies are the families counted toward the corpus's breadth;
// "other" (a source that does not name the device) is not one.
func isDeviceFamily(f string) bool { return f != "" && f != "other" }

// TestDevices replays every recorded answer through the driver's own
// parsing path: PDUs through decodePDU and the inbound decoder, URCs
// through the line filter, listings through parseListing, and command
// answers over a real pseudo-terminal through the at package, the filter
// and the conn methods the driver uses. Each decoded value is compared with
// the expectation the corpus took from the source or the standard.
func TestDevices(t *testing.T) {
	charsets.Warm()
	cases := loadDeviceCases(t)
	families := map[string]int{}
	var ok, failed, unchecked int
	for _, c := range cases {
		if isDeviceFamily(c.family) {
			families[c.family]++
		}
		t.Run(strings.TrimSuffix(c.file, ".txt")+"/"+c.name, func(t *testing.T) {
			got, err := replay(t, c)
			if errors.Is(err, errNotReplayed) {
				unchecked++
				t.Skipf("%s: %v", c.kind, err)
			}
			if err != nil {
				failed++
				t.Fatalf("%s (%s, %s): %v", c.name, c.device, c.source, err)
			}
			checked := 0
			bad := false
			for k, want := range c.expect {
				g, has := got[k]
				if !has {
					continue // a field the driver does not read
				}
				checked++
				if k == "scts" || k == "dt" {
					g, want = sameInstant(g), sameInstant(want)
				}
				if g != want {
					bad = true
					t.Errorf("%s (%s, %s): %s = %q, want %q", c.name, c.device, c.source, k, g, want)
				}
			}
			switch {
			case bad:
				failed++
			case checked == 0:
				unchecked++
				t.Skipf("none of %v is read by the driver", keys(c.expect))
			default:
				ok++
			}
		})
	}
	var fams []string
	for f, n := range families {
		fams = append(fams, fmt.Sprintf("%s %d", f, n))
	}
	sort.Strings(fams)
	t.Logf("device corpus: %d answers replayed from %d device families (%s); %d ok, %d failed, %d not checked",
		len(cases), len(families), strings.Join(fams, ", "), ok, failed, unchecked)
}

// sameInstant writes an RFC 3339 time in one form ("Z" and "+00:00" are
// the same offset); anything else is returned as it is.
func sameInstant(v string) string {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return v
	}
	_, off := t.Zone()
	return t.UTC().Format("2006-01-02T15:04:05") + fmt.Sprintf("%+d", off)
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// errNotReplayed marks a kind of answer the driver does not read yet.
var errNotReplayed = errors.New("the driver does not read this kind of answer")

// replay runs c through the driver and returns what it read, by the
// corpus's expectation keys.
func replay(t *testing.T, c deviceCase) (map[string]string, error) {
	switch c.kind {
	case "pdu":
		if len(c.answer) == 0 {
			return nil, errors.New("no PDU line")
		}
		return pduFields(strings.TrimSpace(c.answer[0]), c.length), nil
	case "cmt", "cds":
		f := newFilter(nil)
		f.feed([]byte("\r\n" + strings.Join(c.answer, "\r\n") + "\r\n"))
		us := f.takeURCs()
		if len(us) == 0 || us[0].pdu == "" {
			return nil, fmt.Errorf("the filter took no URC with a PDU from %q", c.answer)
		}
		hf := fields(strings.TrimSpace(us[0].line[strings.IndexByte(us[0].line, ':')+1:]))
		tlen, ok := atoi(hf[len(hf)-1])
		if !ok {
			tlen = -1
		}
		return pduFields(us[0].pdu, tlen), nil
	case "cmti", "cdsi":
		f := newFilter(nil)
		f.feed([]byte("\r\n" + strings.Join(c.answer, "\r\n") + "\r\n"))
		us := f.takeURCs()
		if len(us) == 0 {
			return nil, fmt.Errorf("the filter took no URC from %q", c.answer)
		}
		v := fields(strings.TrimSpace(us[0].line[strings.IndexByte(us[0].line, ':')+1:]))
		return map[string]string{"mem": v[0], "index": v[len(v)-1], "indexes": v[len(v)-1]}, nil
	case "cmgl", "cmgr":
		m := newModem(Config{Name: "replay"}, Options{Logger: testLogger(t)}, nil)
		prefix := "+" + strings.ToUpper(c.kind)
		es := m.parseListing(c.answer, prefix, 1)
		got := map[string]string{"count": strconv.Itoa(len(es))}
		var idx, stats, types []string
		for _, e := range es {
			idx = append(idx, strconv.Itoa(e.idx))
			stats = append(stats, strconv.Itoa(e.stat))
			types = append(types, pduFields(e.pdu, e.tlen)["type"])
		}
		got["indexes"], got["stats"], got["types"] = strings.Join(idx, ","), strings.Join(stats, ","), strings.Join(types, ",")
		if len(es) == 1 {
			for k, v := range pduFields(es[0].pdu, es[0].tlen) {
				got[k] = v
			}
			got["stat"] = stats[0]
		}
		return got, nil
	case "urc":
		f := newFilter(nil)
		f.feed([]byte("\r\n" + strings.Join(c.answer, "\r\n") + "\r\n"))
		return map[string]string{"noise": strconv.FormatBool(f.dropped == len(c.answer))}, nil
	case "cusd":
		f := newFilter(nil)
		f.feed([]byte("\r\n" + strings.Join(c.answer, "\r\n") + "\r\n"))
		ls := f.takeCUSD()
		if len(ls) == 0 {
			return nil, fmt.Errorf("the filter took no +CUSD from %q", c.answer)
		}
		a, err := parseCUSD(ls[0])
		if err != nil {
			return nil, err
		}
		return map[string]string{"m": strconv.Itoa(a.mode), "dcs": strconv.Itoa(a.dcs), "text": strings.ReplaceAll(a.text, "\n", `\n`)}, nil
	}
	return replayAnswer(t, c)
}

// replayAnswer plays the device on a pseudo-terminal: it answers the
// case's command with the recorded lines (and any other command with
// ERROR), while the driver asks as it does on hardware.
func replayAnswer(t *testing.T, c deviceCase) (map[string]string, error) {
	// The driver's command for each kind: the recorded answer is played
	// back to it (a source may have asked AT+GSN or AT+CSQ?; the answer has
	// the same form). Only the ICCID commands differ by vendor.
	cmd := map[string]string{"cpin": "+CPIN?", "csq": "+CSQ", "creg": "+CREG?", "cgreg": "+CGREG?", "cereg": "+CEREG?",
		"cops": "+COPS?", "cgsn": "+CGSN", "cimi": "+CIMI", "cnmi": "+CNMI=?", "cgmi": "+CGMI", "cgmm": "+CGMM",
		"cgmr": "+CGMR", "cmgs": "+CMGS", "iccid": "+CCID", "cnum": "+CNUM"}[c.kind]
	if c.command != "" && (cmd == "" || c.kind == "iccid") {
		cmd = strings.TrimPrefix(strings.ToUpper(c.command), "AT")
	}
	if cmd == "" {
		return nil, fmt.Errorf("kind %q needs a command", c.kind)
	}
	answer := c.answer
	if n := len(answer); !c.noFinal && c.kind != "final" && (n == 0 || !isFinal(strings.TrimSpace(answer[n-1]))) {
		answer = append(slices.Clone(answer), "OK")
	}
	conn := replayConn(t, cmd, answer)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := map[string]string{}
	switch c.kind {
	case "cpin":
		st, err := conn.cpin(ctx)
		if err != nil {
			return nil, err
		}
		got["state"] = st
	case "csq":
		v, err := conn.query(ctx, "+CSQ", "+CSQ")
		if err != nil {
			return nil, err
		}
		rssi, ber := parseCSQ(v)
		got["rssi"], got["ber"] = strconv.Itoa(rssi), strconv.Itoa(ber)
	case "creg", "cgreg", "cereg":
		info, err := conn.cmd(ctx, cmd)
		if err != nil {
			return nil, err
		}
		stat, found := regStat(info, "+"+strings.ToUpper(c.kind))
		if c.form == "unsolicited" {
			// The URC form has no <n>: it must never be taken for the
			// answer (its stat is read from a URC, which the driver does
			// not use).
			got["taken-as-answer"] = strconv.FormatBool(found)
			if found {
				return nil, fmt.Errorf("the unsolicited line %q was taken for the answer (stat %d)", c.answer, stat)
			}
			return map[string]string{"stat": c.expect["stat"]}, nil
		}
		if !found {
			return nil, fmt.Errorf("no solicited answer found in %q", info)
		}
		got["stat"] = strconv.Itoa(stat)
	case "cops":
		v, err := conn.query(ctx, "+COPS?", "+COPS")
		if err != nil {
			return nil, err
		}
		oper, act := parseCOPS(v)
		got["operator"] = oper
		if act >= 0 {
			got["act"] = strconv.Itoa(act)
		}
	case "cgsn":
		info, err := conn.cmd(ctx, "+CGSN")
		if err != nil {
			return nil, err
		}
		got["imei"] = imeiLine(info)
	case "cimi":
		info, err := conn.cmd(ctx, "+CIMI")
		if err != nil {
			return nil, err
		}
		got["imsi"] = digitsLine(info, "+CIMI", 5, 15)
	case "iccid":
		got["iccid"] = conn.iccid(ctx)
	case "cnmi":
		v, err := conn.query(ctx, "+CNMI=?", "+CNMI")
		if err != nil {
			return nil, err
		}
		var gs []string
		for _, g := range capGroups(v) {
			var vs []int
			for n := range g {
				vs = append(vs, n)
			}
			sort.Ints(vs)
			var ss []string
			for _, n := range vs {
				ss = append(ss, strconv.Itoa(n))
			}
			gs = append(gs, strings.Join(ss, ","))
		}
		got["groups"] = strings.Join(gs, ";")
	case "cnum":
		got["number"] = conn.ownNumber(ctx)
	case "cgmi", "cgmm", "cgmr":
		got["value"] = strings.ReplaceAll(conn.text(ctx, "+"+strings.ToUpper(c.kind)), "\n", `\n`)
	case "cmgs":
		mr, err := conn.submitPart(submitPDU{hex: "0011000B916407281553F80000AA0AE8329BFD4697D9EC37", tlen: 24}, 5*time.Second)
		if err != nil {
			return nil, err
		}
		got["mr"] = strconv.Itoa(mr)
	case "final":
		_, err := conn.cmd(ctx, cmd)
		if err == nil {
			return nil, fmt.Errorf("%s ended without an error", c.command)
		}
		if errors.Is(err, ErrTimeout) {
			return nil, fmt.Errorf("%s waited for the timeout: the final result code was not seen (%v)", c.command, err)
		}
		if !strings.Contains(err.Error(), c.expect["final"]) && !strings.HasPrefix(c.expect["final"], "+CME ERROR") && !strings.HasPrefix(c.expect["final"], "+CMS ERROR") {
			return nil, fmt.Errorf("the error %q does not name the modem's %q", err, c.expect["final"])
		}
		got["final"] = c.expect["final"]
	default:
		return nil, fmt.Errorf("%w: kind %q", errNotReplayed, c.kind)
	}
	return got, nil
}

// replayConn opens the slave of a new pty through the driver's openConn and
// plays the device on the master: cmd gets answer, ATs other commands get
// ERROR, and AT+CMGS gets the prompt first.
func replayConn(t *testing.T, cmd string, answer []string) *conn {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close(); slave.Close() })
	c, err := openConn(slave.Name(), 115200, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.close() })
	body := "\r\n" + strings.Join(answer, "\r\n") + "\r\n"
	go func() {
		r := bufio.NewReader(master)
		for {
			line, err := r.ReadString('\r')
			if err != nil {
				return
			}
			line = strings.TrimSpace(strings.TrimLeft(line, "\x1a\x1b\n"))
			if !strings.HasPrefix(strings.ToUpper(line), "AT") {
				continue
			}
			got := strings.ToUpper(line[2:])
			switch {
			case strings.HasPrefix(got, "+CMGS") && strings.HasPrefix(cmd, "+CMGS"):
				master.Write([]byte("\r\n> "))
				if _, err := r.ReadString('\x1a'); err != nil {
					return
				}
				master.Write([]byte(body))
			case cmdName(got) == cmdName(cmd):
				master.Write([]byte(body))
			default:
				master.Write([]byte("\r\nERROR\r\n"))
			}
		}
	}()
	return c
}

// pduFields decodes one PDU as the driver does and returns what it read.
func pduFields(hexPDU string, tlen int) map[string]string {
	if b, err := hex.DecodeString(hexPDU); err == nil && len(b) > 0 {
		off := 1 + int(b[0]) // the SMSC part
		if tlen >= 0 && len(b) == tlen {
			off = 0
		}
		if off < len(b) && b[off]&0x03 == 0x01 {
			// An SMS-SUBMIT (TP-MTI 01, mobile originated): not addressed
			// to simgate, which leaves it on the SIM.
			return map[string]string{"type": "submit"}
		}
	}
	d, err := decodePDU(hexPDU, tlen)
	if err != nil {
		return map[string]string{"error": "undecodable"}
	}
	t := d.t
	got := map[string]string{}
	switch t.SmsType() {
	case tpdu.SmsStatusReport:
		got["type"] = "status-report"
		got["mr"] = strconv.Itoa(int(t.MR))
		got["st"] = strconv.Itoa(int(t.ST))
		got["recipient"] = t.RA.Number()
		got["scts"] = t.SCTS.Time.Format(time.RFC3339)
		got["dt"] = t.DT.Time.Format(time.RFC3339)
	case tpdu.SmsDeliver:
		got["type"] = "deliver"
		in := inboundMessage(&pipe{parts: []*tpdu.TPDU{t}, got: 1, truncated: d.truncated})
		got["from"] = in.From
		got["scts"] = t.SCTS.Time.Format(time.RFC3339)
		got["dcs"] = strconv.Itoa(int(t.DCS))
		got["kind"] = string(in.Kind)
		if in.Port != 0 {
			got["port"] = strconv.Itoa(in.Port)
		}
		if total, seq, ref, ok := t.ConcatInfo(); ok {
			got["concat"] = fmt.Sprintf("%d/%d/%d", ref, total, seq)
			if total > 1 {
				// The text of one part of a long message: decoded alone.
				if txt, err := decodePartText(t); err == nil {
					got["text"] = txt
				}
				break
			}
		}
		if in.Kind == "text" {
			got["text"] = strings.ReplaceAll(in.Text, "\n", `\n`)
		}
	default:
		// Not addressed to simgate: the driver leaves it on the SIM.
		got["type"] = "submit"
	}
	return got
}

// decodePartText decodes the text of one part of a long SMS on its own.
func decodePartText(t *tpdu.TPDU) (string, error) {
	p := &pipe{parts: []*tpdu.TPDU{t}, got: 1}
	in := inboundMessage(p)
	if in.Kind != "text" {
		return "", errors.New("not text")
	}
	return strings.ReplaceAll(in.Text, "\n", `\n`), nil
}
