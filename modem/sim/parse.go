package sim

import (
	"errors"
	"fmt"
	"strings"
)

// Op is the form in which a command was given (ITU-T V.250 §5.4).
type Op int

// Command forms.
const (
	OpExec Op = iota // AT+CGSN, ATZ, ATE0
	OpRead           // AT+CSCA?
	OpTest           // AT+CNMI=?
	OpSet            // AT+CMGF=0
)

// String returns the suffix that selects the form, e.g. "=?" for OpTest.
func (o Op) String() string {
	switch o {
	case OpRead:
		return "?"
	case OpTest:
		return "=?"
	case OpSet:
		return "="
	}
	return ""
}

// Command is one command of an AT command line.
type Command struct {
	// Name is the command name in upper case with its prefix: "+CMGS",
	// "$TSSPCSW", "^ICCID", "&F", "S3", and for basic commands the letter
	// alone ("E" for ATE0).
	Name string
	// Op is the form: execute, read (?), test (=?) or set (=...).
	Op Op
	// Args holds the parameters of a set command split on commas outside
	// quotes, with surrounding quotes removed; an empty parameter is "". For a
	// basic command it holds the numeric argument if one was given ("0" of
	// ATE0), and for ATD the dial string.
	Args []string
}

// String formats the command as it could appear after "AT".
func (c Command) String() string {
	if c.Op != OpSet {
		if len(c.Args) > 0 && !strings.HasPrefix(c.Name, "+") {
			return c.Name + strings.Join(c.Args, "") + c.Op.String()
		}
		return c.Name + c.Op.String()
	}
	return c.Name + "=" + strings.Join(c.Args, ",")
}

// Arg returns the i-th parameter, or "" if there is none.
func (c Command) Arg(i int) string {
	if i < 0 || i >= len(c.Args) {
		return ""
	}
	return c.Args[i]
}

// ErrNoPrefix is returned by ParseCommandLine for a line that does not start
// with "AT".
var ErrNoPrefix = errors.New("no AT prefix")

// MaxLineLength is the longest command line the virtual modem accepts, as
// real modems have a fixed command buffer (556 characters on SIM800).
const MaxLineLength = 1024

// ParseCommandLine splits an AT command line (without its terminating CR)
// into commands. Case does not matter outside quoted strings; spaces outside
// quotes are ignored (V.250 §5.2.1); extended commands are separated by ';'
// and basic commands may follow each other directly ("ATE0V1"). A line of
// just "AT" gives no commands and no error. It never panics, whatever the
// input; malformed lines return an error.
func ParseCommandLine(line string) ([]Command, error) {
	if len(line) > MaxLineLength {
		return nil, errors.New("line too long")
	}
	if len(line) < 2 || upper(line[0]) != 'A' || upper(line[1]) != 'T' {
		return nil, ErrNoPrefix
	}
	p := parser{s: line, i: 2}
	var cmds []Command
	for {
		p.skipSpace()
		if p.eof() {
			return cmds, nil
		}
		c := p.s[p.i]
		switch {
		case c == ';':
			p.i++
		case isExtPrefix(c):
			cmd, err := p.extended()
			if err != nil {
				return nil, err
			}
			cmds = append(cmds, cmd)
			p.skipSpace()
			if !p.eof() && p.s[p.i] != ';' {
				return nil, fmt.Errorf("unexpected %q after %s at %d", p.s[p.i], cmd.Name, p.i)
			}
		case isLetter(c) || c == '&':
			cmd, err := p.basic()
			if err != nil {
				return nil, err
			}
			cmds = append(cmds, cmd)
		default:
			return nil, fmt.Errorf("unexpected %q at %d", c, p.i)
		}
	}
}

type parser struct {
	s string
	i int
}

func (p *parser) eof() bool { return p.i >= len(p.s) }

func (p *parser) skipSpace() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

// extended parses +NAME[?|=?|=params].
func (p *parser) extended() (Command, error) {
	prefix := p.s[p.i]
	p.i++
	p.skipSpace()
	start := p.i
	for p.i < len(p.s) && isNameChar(p.s[p.i]) {
		p.i++
	}
	if p.i == start {
		return Command{}, fmt.Errorf("empty command name at %d", start)
	}
	cmd := Command{Name: string(prefix) + strings.ToUpper(p.s[start:p.i])}
	p.skipSpace()
	switch {
	case p.eof():
		cmd.Op = OpExec
	case p.s[p.i] == '?':
		p.i++
		cmd.Op = OpRead
	case p.s[p.i] == '=':
		p.i++
		p.skipSpace()
		if !p.eof() && p.s[p.i] == '?' {
			p.i++
			cmd.Op = OpTest
			return cmd, nil
		}
		cmd.Op = OpSet
		args, err := p.params()
		if err != nil {
			return Command{}, fmt.Errorf("%s: %w", cmd.Name, err)
		}
		cmd.Args = args
	default:
		cmd.Op = OpExec
	}
	return cmd, nil
}

// params reads comma-separated parameters up to ';' or the end of the line.
func (p *parser) params() ([]string, error) {
	var args []string
	var cur strings.Builder
	for {
		p.skipSpace()
		cur.Reset()
		if !p.eof() && p.s[p.i] == '"' {
			p.i++
			closed := false
			for !p.eof() {
				c := p.s[p.i]
				p.i++
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' && p.i+1 < len(p.s) && isHex(p.s[p.i]) && isHex(p.s[p.i+1]) {
					// V.250 §5.4.2.2: \HH inside a string is a character code.
					cur.WriteByte(unhex(p.s[p.i])<<4 | unhex(p.s[p.i+1]))
					p.i += 2
					continue
				}
				cur.WriteByte(c)
			}
			if !closed {
				return nil, errors.New("unterminated string")
			}
			p.skipSpace()
		} else {
			for !p.eof() && p.s[p.i] != ',' && p.s[p.i] != ';' {
				c := p.s[p.i]
				if c == '"' {
					return nil, fmt.Errorf("unexpected quote at %d", p.i)
				}
				if c != ' ' {
					cur.WriteByte(upper(c))
				}
				p.i++
			}
		}
		args = append(args, cur.String())
		if p.eof() || p.s[p.i] == ';' {
			return args, nil
		}
		if p.s[p.i] != ',' {
			return nil, fmt.Errorf("unexpected %q at %d", p.s[p.i], p.i)
		}
		p.i++
	}
}

// basic parses a V.250 basic command: a letter (or & and a letter) with an
// optional number, S-register access (S3=13, S3?), or D with its dial string.
func (p *parser) basic() (Command, error) {
	c := upper(p.s[p.i])
	p.i++
	name := string(c)
	if c == '&' {
		if p.eof() || !isLetter(p.s[p.i]) {
			return Command{}, fmt.Errorf("bad & command at %d", p.i)
		}
		name = "&" + string(upper(p.s[p.i]))
		p.i++
	}
	switch name {
	case "D":
		// The dial string runs to the end of the line (a ';' ends a voice call).
		rest := strings.TrimSpace(p.s[p.i:])
		p.i = len(p.s)
		return Command{Name: "D", Op: OpExec, Args: []string{rest}}, nil
	case "S":
		start := p.i
		for !p.eof() && isDigit(p.s[p.i]) {
			p.i++
		}
		if p.i == start || p.i-start > 3 {
			return Command{}, fmt.Errorf("bad S-register at %d", start)
		}
		cmd := Command{Name: "S" + p.s[start:p.i]}
		p.skipSpace()
		switch {
		case !p.eof() && p.s[p.i] == '?':
			p.i++
			cmd.Op = OpRead
		case !p.eof() && p.s[p.i] == '=':
			p.i++
			p.skipSpace()
			if !p.eof() && p.s[p.i] == '?' {
				p.i++
				cmd.Op = OpTest
				return cmd, nil
			}
			v := p.number()
			cmd.Op = OpSet
			cmd.Args = []string{v}
		default:
			cmd.Op = OpExec
		}
		return cmd, nil
	}
	cmd := Command{Name: name, Op: OpExec}
	p.skipSpace()
	if v := p.number(); v != "" {
		cmd.Args = []string{v}
	}
	if !p.eof() && p.s[p.i] == '?' {
		p.i++
		cmd.Op = OpRead
	}
	return cmd, nil
}

func (p *parser) number() string {
	start := p.i
	for !p.eof() && isDigit(p.s[p.i]) && p.i-start < 5 {
		p.i++
	}
	return p.s[start:p.i]
}

func isExtPrefix(c byte) bool {
	switch c {
	case '+', '$', '^', '!', '%', '*', '#', '@':
		return true
	}
	return false
}

// isNameChar reports whether c may appear in an extended command name
// (V.250 §5.4.1: letters, digits and ! % - . / : _).
func isNameChar(c byte) bool {
	switch {
	case isLetter(c), isDigit(c):
		return true
	}
	switch c {
	case '!', '%', '-', '.', '/', ':', '_':
		return true
	}
	return false
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isHex(c byte) bool    { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

func unhex(c byte) byte {
	switch {
	case isDigit(c):
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}
