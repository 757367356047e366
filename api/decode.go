package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/simgate/simgate"
)

// checkContentType refuses a body sent as anything but want, the media
// type of the route (application/json; on the Twilio surface a form,
// application/x-www-form-urlencoded, as Twilio's clients send it), with at
// most a charset=utf-8 parameter. On the JSON API a form or text/plain body
// is a cross-site request a browser sends without asking (the Twilio
// surface takes only Basic or Bearer credentials, which a browser does not
// add to such a request: Server.Error never asks it for Basic ones), and a
// charset other than UTF-8 would be read as something else than what was
// written.
func checkContentType(ct, want string) error {
	if ct == "" {
		return simgate.Errorf(CodeUnsupportedMediaType, "a request body needs Content-Type: %s", want)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != want {
		return simgate.Errorf(CodeUnsupportedMediaType, "Content-Type %q is not accepted; send the body as %s", ct, want)
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return simgate.Errorf(CodeUnsupportedMediaType, "Content-Type %q is not accepted: the only parameter allowed is charset=utf-8", ct)
		}
	}
	return nil
}

// decode reads body as exactly one JSON object into v, a pointer to a
// struct. It takes the input only as written: unlike encoding/json alone,
// it refuses invalid UTF-8 and unpaired surrogate escapes (which json
// replaces with U+FFFD), duplicate keys (json keeps the last), keys that
// match a field only in another case (json matches case-insensitively),
// unknown keys, control characters in strings (a newline only in the keys
// named in multiline), and data after the object.
func decode(body []byte, v any, multiline ...string) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return simgate.Errorf(simgate.CodeInvalid, "the request body must be a JSON object")
	}
	if !utf8.Valid(body) {
		off := 0
		for off < len(body) {
			r, n := utf8.DecodeRune(body[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return simgate.Errorf(simgate.CodeInvalid, "the request body is not valid UTF-8 (at byte %d)", off)
	}
	if err := checkKeys(body, jsonFields(v), multiline); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return simgate.Errorf(simgate.CodeInvalid, "invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return simgate.Errorf(simgate.CodeInvalid, "invalid JSON body: data after the object")
	}
	return nil
}

// jsonFields returns the exact json names of the fields of the struct v
// points to.
func jsonFields(v any) map[string]bool {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	names := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names[name] = true
	}
	return names
}

// checkKeys walks the tokens of body, which must be one JSON object, and
// refuses a key that is not one of fields exactly or comes twice, and a
// string that holds an unpaired surrogate escape or a control character.
func checkKeys(body []byte, fields map[string]bool, multiline []string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return simgate.Errorf(simgate.CodeInvalid, "invalid JSON body: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return simgate.Errorf(simgate.CodeInvalid, "the request body must be a JSON object")
	}
	seen := map[string]bool{}
	key := ""
	// stack holds the open containers below the top object: '{' expects a
	// key next in an object, ':' a value in it, '[' values.
	var stack []byte
	top := byte('{')
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return simgate.Errorf(simgate.CodeInvalid, "invalid JSON body: %v", err)
		}
		raw := body[start:dec.InputOffset()]
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top == ':' {
					top = '{'
				}
				stack = append(stack, top)
				top = byte(d)
			case '}', ']':
				if len(stack) == 0 {
					if _, err := dec.Token(); !errors.Is(err, io.EOF) {
						return simgate.Errorf(simgate.CodeInvalid, "invalid JSON body: data after the object")
					}
					return nil
				}
				top, stack = stack[len(stack)-1], stack[:len(stack)-1]
			}
			continue
		}
		s, isString := tok.(string)
		if top == '{' {
			// tok is a key.
			if err := checkSurrogates(raw, "a key"); err != nil {
				return err
			}
			if len(stack) == 0 {
				key = s
				if err := checkKey(s, fields, seen); err != nil {
					return err
				}
			}
			top = ':'
			continue
		}
		if top == ':' {
			top = '{'
		}
		if !isString {
			continue
		}
		if err := checkSurrogates(raw, quote(key)); err != nil {
			return err
		}
		if err := checkControls(s, key, multiline); err != nil {
			return err
		}
	}
}

func checkKey(s string, fields map[string]bool, seen map[string]bool) error {
	if seen[s] {
		return simgate.Errorf(simgate.CodeInvalid, "the key %s comes twice in the request body", quote(s))
	}
	seen[s] = true
	if fields[s] {
		return nil
	}
	for f := range fields {
		if strings.EqualFold(f, s) {
			return simgate.Errorf(simgate.CodeInvalid, "unknown key %s: keys are case-sensitive, did you mean %s?", quote(s), quote(f))
		}
	}
	return simgate.Errorf(simgate.CodeInvalid, "unknown key %s in the request body", quote(s))
}

// checkSurrogates refuses a \u escape in raw, the source of one string
// token, that is half of a UTF-16 surrogate pair without its other half.
func checkSurrogates(raw []byte, where string) error {
	hex4 := func(b []byte) (rune, bool) {
		if len(b) < 4 {
			return 0, false
		}
		var r rune
		for _, c := range b[:4] {
			switch {
			case '0' <= c && c <= '9':
				r = r<<4 | rune(c-'0')
			case 'a' <= c && c <= 'f':
				r = r<<4 | rune(c-'a'+10)
			case 'A' <= c && c <= 'F':
				r = r<<4 | rune(c-'A'+10)
			default:
				return 0, false
			}
		}
		return r, true
	}
	bad := simgate.Errorf(simgate.CodeInvalid, "%s holds an unpaired UTF-16 surrogate escape, which is not text", where)
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			continue
		}
		i++
		if raw[i] != 'u' {
			continue
		}
		r, ok := hex4(raw[i+1:])
		if !ok {
			continue // the JSON decoder refused it already
		}
		i += 4
		switch {
		case 0xDC00 <= r && r <= 0xDFFF:
			return bad
		case 0xD800 <= r && r <= 0xDBFF:
			if i+6 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
				return bad
			}
			lo, ok := hex4(raw[i+3:])
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return bad
			}
			i += 6
		}
	}
	return nil
}

// checkControls refuses control characters in the value s of key: they
// have no place in a number, a name or a reference, and in an SMS text only
// a newline does (a tab or a carriage return is not in the GSM alphabet's
// meaning of a line, and other controls are invisible or reach the modem).
func checkControls(s, key string, multiline []string) error {
	nl := false
	for _, m := range multiline {
		if m == key {
			nl = true
		}
	}
	for i, r := range s {
		if r == '\n' && nl {
			continue
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			allowed := "no control characters"
			if nl {
				allowed = "no control characters but newline (\\n)"
			}
			return simgate.Errorf(simgate.CodeInvalid, "%s holds the control character %U at character %d; it may hold %s",
				key, r, utf8.RuneCountInString(s[:i])+1, allowed)
		}
	}
	return nil
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
