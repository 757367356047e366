package modem

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/warthog618/sms/encoding/tpdu"
)

// WSP (WAP-230-WSP) codes used here.
const (
	wspPDUPush            = 0x06 // PDU type of a Push (8.2.1)
	wspFieldApplicationID = 0x2F // X-Wap-Application-Id, in code page 1
)

// mmsContentType is the Content-Type of an MMS PDU pushed over WSP.
const mmsContentType = "application/vnd.wap.mms-message"

// MMS field codes (OMA-MMS-ENC 7.4), with the high bit set as on the wire.
const (
	mmsFieldContentLocation = 0x83
	mmsFieldExpiry          = 0x88
	mmsFieldFrom            = 0x89
	mmsFieldMessageClass    = 0x8A
	mmsFieldMessageType     = 0x8C
	mmsFieldMMSVersion      = 0x8D
	mmsFieldMessageSize     = 0x8E
	mmsFieldSubject         = 0x96
	mmsFieldTransactionID   = 0x98

	mmsNotificationInd = 0x82 // X-Mms-Message-Type of an m-notification-ind
)

// wspContentTypes names the well-known content types (WAP-230-WSP Table 40
// and the OMNA registry that extends it), indexed by assigned number.
var wspContentTypes = [...]string{
	"*/*", "text/*", "text/html", "text/plain",
	"text/x-hdml", "text/x-ttml", "text/x-vCalendar", "text/x-vCard",
	"text/vnd.wap.wml", "text/vnd.wap.wmlscript", "text/vnd.wap.wta-event", "multipart/*",
	"multipart/mixed", "multipart/form-data", "multipart/byterantes", "multipart/alternative",
	"application/*", "application/java-vm", "application/x-www-form-urlencoded", "application/x-hdmlc",
	"application/vnd.wap.wmlc", "application/vnd.wap.wmlscriptc", "application/vnd.wap.wta-eventc", "application/vnd.wap.uaprof",
	"application/vnd.wap.wtls-ca-certificate", "application/vnd.wap.wtls-user-certificate", "application/x-x509-ca-cert", "application/x-x509-user-cert",
	"image/*", "image/gif", "image/jpeg", "image/tiff",
	"image/png", "image/vnd.wap.wbmp", "application/vnd.wap.multipart.*", "application/vnd.wap.multipart.mixed",
	"application/vnd.wap.multipart.form-data", "application/vnd.wap.multipart.byteranges", "application/vnd.wap.multipart.alternative", "application/xml",
	"text/xml", "application/vnd.wap.wbxml", "application/x-x968-cross-cert", "application/x-x968-ca-cert",
	"application/x-x968-user-cert", "text/vnd.wap.si", "application/vnd.wap.sic", "text/vnd.wap.sl",
	"application/vnd.wap.slc", "text/vnd.wap.co", "application/vnd.wap.coc", "application/vnd.wap.multipart.related",
	"application/vnd.wap.sia", "text/vnd.wap.connectivity-xml", "application/vnd.wap.connectivity-wbxml", "application/pkcs7-mime",
	"application/vnd.wap.hashed-certificate", "application/vnd.wap.signed-certificate", "application/vnd.wap.cert-response", "application/xhtml+xml",
	"application/wml+xml", "text/css", "application/vnd.wap.mms-message", "application/vnd.wap.rollover-certificate",
	"application/vnd.wap.locc+wbxml", "application/vnd.wap.loc+xml", "application/vnd.syncml.dm+wbxml", "application/vnd.syncml.dm+xml",
	"application/vnd.syncml.notification", "application/vnd.wap.xhtml+xml", "application/vnd.wv.csp.cir", "application/vnd.oma.dd+xml",
	"application/vnd.oma.drm.message", "application/vnd.oma.drm.content", "application/vnd.oma.drm.rights+xml", "application/vnd.oma.drm.rights+wbxml",
	"application/vnd.wv.csp+xml", "application/vnd.wv.csp+wbxml", "application/vnd.syncml.ds.notification", "audio/*",
	"video/*", "application/vnd.oma.dd2+xml", "application/mikey", "application/vnd.oma.dcd",
	"application/vnd.oma.dcdc",
}

// wspApplicationIDs names the well-known push application IDs (OMNA push
// application ID registry), indexed by assigned number.
var wspApplicationIDs = [...]string{
	"x-wap-application:*",
	"x-wap-application:push.sia",
	"x-wap-application:wml.ua",
	"x-wap-application:wta.ua",
	"x-wap-application:mms.ua",
	"x-wap-application:push.syncml",
	"x-wap-application:loc.ua",
	"x-wap-application:syncml.dm",
	"x-wap-application:drm.ua",
	"x-wap-application:emn.ua",
	"x-wap-application:wv.ua",
}

// wapPush is a WAP push (WSP, WAP-230) carried in an SMS to port 2948 (or
// 2949 secure).
type wapPush struct {
	TransactionID byte
	// ContentType is the media type without its parameters, e.g.
	// "application/vnd.wap.mms-message". An assigned number that has no
	// name here is given in hex, e.g. "0x30a".
	ContentType string
	// ApplicationID is X-Wap-Application-Id, e.g.
	// "x-wap-application:mms.ua", or "" when the push has none.
	ApplicationID string
	// Headers are the headers after the Content-Type, values undecoded.
	Headers []wspHeader
	Body    []byte
	// MMS is set when ContentType is the MMS one and the body is an
	// m-notification-ind.
	MMS *mmsNotification
}

// wspHeader is one WSP header as it was on the wire: a well-known field
// (Code, in code page Page) or an application header (Name).
type wspHeader struct {
	Page  byte
	Code  byte
	Name  string
	Value []byte
}

// mmsNotification is an MMS m-notification-ind (OMA-MMS-ENC 6.2): the MMSC
// telling the phone that a message waits at ContentLocation.
type mmsNotification struct {
	TransactionID string
	Version       string // X-Mms-MMS-Version, e.g. "1.2"
	// From is the sender address without "/TYPE=PLMN", e.g. "+31612345678";
	// "" when the MMSC hides the sender (insert-address-token).
	From            string
	Subject         string
	Class           string // personal, advertisement, informational, auto, or the token given
	Size            int64  // X-Mms-Message-Size, in octets
	Expiry          mmsExpiry
	ContentLocation string // the URL to fetch
}

// mmsExpiry is X-Mms-Expiry as the MMSC gave it: an absolute time, or a
// number of seconds after the notification arrived.
type mmsExpiry struct {
	Absolute bool
	At       time.Time     // when Absolute, in UTC
	Relative time.Duration // when not Absolute
}

// appPorts returns the destination and source application ports of udh
// (IE 0x05, or 0x04), and ok.
func appPorts(udh tpdu.UserDataHeader) (dst, src int, ok bool) {
	// 3GPP TS 23.040 9.2.3.24.3 and .4: 16-bit ports in four octets, 8-bit
	// ports in two. A wrong length makes the IE unusable, not a guess.
	if ie, found := udh.IE(0x05); found {
		if len(ie.Data) != 4 {
			return 0, 0, false
		}
		return int(ie.Data[0])<<8 | int(ie.Data[1]), int(ie.Data[2])<<8 | int(ie.Data[3]), true
	}
	if ie, found := udh.IE(0x04); found {
		if len(ie.Data) != 2 {
			return 0, 0, false
		}
		return int(ie.Data[0]), int(ie.Data[1]), true
	}
	return 0, 0, false
}

// decodeWAPPush decodes a connectionless WSP Push PDU (WAP-230-WSP 8.2.4.1):
// b is the SMS user data after the UDH, all parts reassembled. When the
// content is an MMS m-notification-ind it is decoded too. Errors name the
// field and its offset in b.
func decodeWAPPush(b []byte) (*wapPush, error) {
	p, err := decodeWSPPush(b)
	if err != nil {
		return nil, fmt.Errorf("cannot decode WAP push: %w", err)
	}
	return p, nil
}

// decodeMMSNotification decodes an MMS m-notification-ind (OMA-MMS-ENC):
// b is the body of the WAP push. Errors name the field and its offset in b.
func decodeMMSNotification(b []byte) (*mmsNotification, error) {
	n, err := decodeMMSNotificationAt(b, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot decode MMS notification: %w", err)
	}
	return n, nil
}

func decodeWSPPush(b []byte) (*wapPush, error) {
	r := &wspReader{b: b}
	tid, err := r.octet("TID")
	if err != nil {
		return nil, err
	}
	typ, err := r.octet("PDU type")
	if err != nil {
		return nil, err
	}
	if typ != wspPDUPush {
		return nil, r.errorf("PDU type", 1, "0x%02x is not Push (0x06)", typ)
	}
	hl, err := r.uintvar("HeadersLen")
	if err != nil {
		return nil, err
	}
	if uint64(hl) > uint64(r.left()) {
		return nil, r.errorf("HeadersLen", 2, "%d exceeds the %d octets left", hl, r.left())
	}
	if hl == 0 {
		return nil, r.errorf("Content-Type", r.pos, "missing: HeadersLen is 0")
	}
	h := r.sub(int(hl))
	p := &wapPush{TransactionID: tid}
	if p.ContentType, err = h.contentType("Content-Type"); err != nil {
		return nil, err
	}
	if err := p.decodeHeaders(h); err != nil {
		return nil, err
	}
	body := b[r.pos:]
	p.Body = bytes.Clone(body)
	if !strings.EqualFold(p.ContentType, mmsContentType) {
		return p, nil
	}
	// OMA-MMS-ENC 7.1: every MMS PDU starts with X-Mms-Message-Type; other
	// types (delivery reports, read reports) are valid pushes but no
	// notification.
	if len(body) < 2 {
		return nil, r.errorf("X-Mms-Message-Type", len(b), "truncated: MMS body of %d octets", len(body))
	}
	if body[0] != mmsFieldMessageType || body[1] < 0x80 {
		return nil, r.errorf("X-Mms-Message-Type", r.pos, "MMS body starts with 0x%02x 0x%02x, not X-Mms-Message-Type", body[0], body[1])
	}
	if body[1] == mmsNotificationInd {
		if p.MMS, err = decodeMMSNotificationAt(body, r.pos); err != nil {
			return nil, fmt.Errorf("MMS notification: %w", err)
		}
	}
	return p, nil
}

// decodeHeaders decodes the WSP headers after the Content-Type
// (WAP-230-WSP 8.4.2.6): well-known fields in the current code page,
// application headers, and shifts of code page.
func (p *wapPush) decodeHeaders(h *wspReader) error {
	page := byte(1)
	for h.left() > 0 {
		at := h.pos
		c := h.b[h.pos]
		switch {
		case c == 0x7F: // Shift-delimiter, then Page-identity
			h.pos++
			pg, err := h.octet("header code page")
			if err != nil {
				return err
			}
			if pg == 0 {
				return h.errorf("header code page", at+1, "page 0 does not exist")
			}
			page = pg
		case c >= 0x01 && c <= 0x1F: // Short-cut-shift-delimiter
			h.pos++
			page = c
		case c == 0x00:
			return h.errorf("header", at, "octet 0x00 is neither a field code nor a field name")
		case c >= 0x80:
			h.pos++
			field := fmt.Sprintf("header 0x%02x", c&0x7F)
			v, err := h.skipValue(field)
			if err != nil {
				return err
			}
			if page == 1 && c&0x7F == wspFieldApplicationID {
				if p.ApplicationID, err = applicationID(v, h.off+at+1); err != nil {
					return err
				}
			}
			p.Headers = append(p.Headers, wspHeader{Page: page, Code: c & 0x7F, Value: bytes.Clone(v)})
		default: // Application-header: Token-text Application-specific-value
			name, err := h.text("application header name")
			if err != nil {
				return err
			}
			start := h.pos
			if _, err := h.text("application header " + name); err != nil {
				return err
			}
			p.Headers = append(p.Headers, wspHeader{Page: page, Name: name, Value: bytes.Clone(h.b[start:h.pos])})
		}
	}
	return nil
}

// applicationID decodes an X-Wap-Application-Id value v found at offset
// off: an Uri-value or an App-assigned-code (WAP-230-WSP 8.4.2.54).
func applicationID(v []byte, off int) (string, error) {
	const field = "X-Wap-Application-Id"
	r := &wspReader{b: v, off: off}
	if v[0] >= 0x20 && v[0] < 0x80 {
		return r.text(field)
	}
	code, err := r.integer(field)
	if err != nil {
		return "", err
	}
	if code < uint64(len(wspApplicationIDs)) {
		return wspApplicationIDs[code], nil
	}
	return fmt.Sprintf("%#x", code), nil
}

func decodeMMSNotificationAt(b []byte, off int) (*mmsNotification, error) {
	r := &wspReader{b: b, off: off}
	// OMA-MMS-ENC 7.1: X-Mms-Message-Type is the first field.
	c, err := r.octet("X-Mms-Message-Type")
	if err != nil {
		return nil, err
	}
	if c != mmsFieldMessageType {
		return nil, r.errorf("X-Mms-Message-Type", 0, "the first field is 0x%02x, not X-Mms-Message-Type (0x8c)", c)
	}
	t, err := r.octet("X-Mms-Message-Type")
	if err != nil {
		return nil, err
	}
	if t != mmsNotificationInd {
		return nil, r.errorf("X-Mms-Message-Type", 1, "0x%02x is not m-notification-ind (0x82)", t)
	}
	var n mmsNotification
	var seen [128]bool
	seen[mmsFieldMessageType&0x7F] = true
	for r.left() > 0 {
		at := r.pos
		c := r.b[r.pos]
		if c < 0x80 {
			// Application-header (OMA-MMS-ENC 7.3): Token-text then Text-string.
			if c < 0x20 || c == 0x7F {
				return nil, r.errorf("field", at, "octet 0x%02x is neither a field code nor a field name", c)
			}
			name, err := r.text("application field name")
			if err != nil {
				return nil, err
			}
			if _, err := r.text("application field " + name); err != nil {
				return nil, err
			}
			continue
		}
		r.pos++
		name := mmsFieldName(c)
		if seen[c&0x7F] {
			return nil, r.errorf(name, at, "the field appears twice")
		}
		seen[c&0x7F] = true
		var err error
		switch c {
		case mmsFieldTransactionID:
			n.TransactionID, err = r.text(name)
		case mmsFieldMMSVersion:
			n.Version, err = r.mmsVersion(name)
		case mmsFieldFrom:
			n.From, err = r.from(name)
		case mmsFieldSubject:
			n.Subject, err = r.encodedString(name)
		case mmsFieldMessageClass:
			n.Class, err = r.messageClass(name)
		case mmsFieldMessageSize:
			var size uint64
			size, err = r.longInteger(name)
			if err == nil && size > math.MaxInt64 {
				err = r.errorf(name, at+1, "%d is too large", size)
			}
			n.Size = int64(size)
		case mmsFieldExpiry:
			n.Expiry, err = r.expiry(name)
		case mmsFieldContentLocation:
			n.ContentLocation, err = r.text(name)
		default:
			_, err = r.skipValue(name)
		}
		if err != nil {
			return nil, err
		}
	}
	// OMA-MMS-ENC 6.2, Table 7: the mandatory fields. From and Subject are
	// optional.
	for _, c := range []byte{mmsFieldTransactionID, mmsFieldMMSVersion, mmsFieldMessageClass,
		mmsFieldMessageSize, mmsFieldExpiry, mmsFieldContentLocation} {
		if !seen[c&0x7F] {
			return nil, r.errorf(mmsFieldName(c), len(b), "missing: the field is mandatory")
		}
	}
	return &n, nil
}

// mmsFieldName names the MMS fields decoded here, for error messages.
func mmsFieldName(c byte) string {
	switch c {
	case mmsFieldContentLocation:
		return "X-Mms-Content-Location"
	case mmsFieldExpiry:
		return "X-Mms-Expiry"
	case mmsFieldFrom:
		return "From"
	case mmsFieldMessageClass:
		return "X-Mms-Message-Class"
	case mmsFieldMessageType:
		return "X-Mms-Message-Type"
	case mmsFieldMMSVersion:
		return "X-Mms-MMS-Version"
	case mmsFieldMessageSize:
		return "X-Mms-Message-Size"
	case mmsFieldSubject:
		return "Subject"
	case mmsFieldTransactionID:
		return "X-Mms-Transaction-Id"
	}
	return fmt.Sprintf("field 0x%02x", c)
}

// wspReader reads the encodings of WAP-230-WSP 8.4.2.1, which WSP headers
// and MMS fields share. off is the offset of b[0] in the PDU the caller
// was given, so that errors point into that PDU.
type wspReader struct {
	b   []byte
	pos int
	off int
}

func (r *wspReader) left() int { return len(r.b) - r.pos }

// errorf returns an error for field at position at of r.b.
func (r *wspReader) errorf(field string, at int, format string, args ...any) error {
	return fmt.Errorf("%s at offset %d: %s", field, r.off+at, fmt.Sprintf(format, args...))
}

// sub returns a reader of the next n octets, which the caller has checked
// are there, and moves past them.
func (r *wspReader) sub(n int) *wspReader {
	s := &wspReader{b: r.b[r.pos : r.pos+n], off: r.off + r.pos}
	r.pos += n
	return s
}

func (r *wspReader) peek(field string) (byte, error) {
	if r.left() < 1 {
		return 0, r.errorf(field, r.pos, "truncated: no octet left")
	}
	return r.b[r.pos], nil
}

func (r *wspReader) octet(field string) (byte, error) {
	c, err := r.peek(field)
	if err != nil {
		return 0, err
	}
	r.pos++
	return c, nil
}

// uintvar reads a Uintvar-integer (WAP-230-WSP 8.1.2): seven bits an
// octet, high bit set on all but the last, 32 bits at most.
func (r *wspReader) uintvar(field string) (uint32, error) {
	start := r.pos
	var v uint64
	for range 5 {
		if r.left() < 1 {
			return 0, r.errorf(field, start, "truncated uintvar")
		}
		c := r.b[r.pos]
		r.pos++
		v = v<<7 | uint64(c&0x7F)
		if c&0x80 == 0 {
			if v > math.MaxUint32 {
				return 0, r.errorf(field, start, "uintvar %d exceeds 32 bits", v)
			}
			return uint32(v), nil
		}
	}
	return 0, r.errorf(field, start, "uintvar longer than 5 octets")
}

// valueLength reads a Value-length (WAP-230-WSP 8.4.2.2) and checks that
// that many octets follow.
func (r *wspReader) valueLength(field string) (int, error) {
	start := r.pos
	c, err := r.octet(field)
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c <= 30:
		n = uint64(c)
	case c == 31:
		u, err := r.uintvar(field)
		if err != nil {
			return 0, err
		}
		n = uint64(u)
	default:
		return 0, r.errorf(field, start, "octet 0x%02x is not a value length", c)
	}
	if n > uint64(r.left()) {
		return 0, r.errorf(field, start, "value length %d exceeds the %d octets left", n, r.left())
	}
	return int(n), nil
}

// text reads a Text-string (WAP-230-WSP 8.4.2.1): a Quote (0x7F) when the
// first character is 128 or more, the characters, an End-of-string (0x00).
// Token-text and Uri-value have the same form.
func (r *wspReader) text(field string) (string, error) {
	start := r.pos
	i := bytes.IndexByte(r.b[r.pos:], 0)
	if i < 0 {
		return "", r.errorf(field, start, "truncated: text has no end-of-string")
	}
	s := r.b[r.pos : r.pos+i]
	switch {
	case len(s) == 0:
	case s[0] == 0x7F:
		s = s[1:]
	case s[0] < 0x20 || s[0] >= 0x80:
		return "", r.errorf(field, start, "octet 0x%02x cannot start a text string", s[0])
	}
	r.pos += i + 1
	return string(s), nil
}

// longInteger reads a Long-integer (WAP-230-WSP 8.4.2.1): a Short-length,
// then that many octets, most significant first.
func (r *wspReader) longInteger(field string) (uint64, error) {
	start := r.pos
	n, err := r.octet(field)
	if err != nil {
		return 0, err
	}
	switch {
	case n > 30:
		return 0, r.errorf(field, start, "octet 0x%02x is not a long-integer length", n)
	case n == 0:
		return 0, r.errorf(field, start, "long-integer of 0 octets")
	case n > 8:
		return 0, r.errorf(field, start, "long-integer of %d octets exceeds 64 bits", n)
	case int(n) > r.left():
		return 0, r.errorf(field, start, "truncated: long-integer of %d octets, %d left", n, r.left())
	}
	var v uint64
	for _, c := range r.b[r.pos : r.pos+int(n)] {
		v = v<<8 | uint64(c)
	}
	r.pos += int(n)
	return v, nil
}

// integer reads an Integer-value: a Short-integer or a Long-integer.
func (r *wspReader) integer(field string) (uint64, error) {
	c, err := r.peek(field)
	if err != nil {
		return 0, err
	}
	if c >= 0x80 {
		r.pos++
		return uint64(c & 0x7F), nil
	}
	return r.longInteger(field)
}

// skipValue moves past one field value and returns it. WAP-230-WSP
// 8.4.1.2 gives every WSP and MMS field value a form its first octet
// tells: 0-30 a value length, 31 a uintvar length, 32-127 a text string,
// 128-255 a single octet. So an unknown field can always be skipped.
func (r *wspReader) skipValue(field string) ([]byte, error) {
	start := r.pos
	c, err := r.peek(field)
	if err != nil {
		return nil, err
	}
	switch {
	case c <= 31:
		n, err := r.valueLength(field)
		if err != nil {
			return nil, err
		}
		r.pos += n
	case c <= 127:
		if _, err := r.text(field); err != nil {
			return nil, err
		}
	default:
		r.pos++
	}
	return r.b[start:r.pos], nil
}

// contentType reads a Content-type-value (WAP-230-WSP 8.4.2.24) and
// returns the media type without its parameters.
func (r *wspReader) contentType(field string) (string, error) {
	c, err := r.peek(field)
	if err != nil {
		return "", err
	}
	switch {
	case c >= 0x80: // Constrained-media: Short-integer
		r.pos++
		return wspContentTypeName(uint64(c & 0x7F)), nil
	case c >= 0x20: // Constrained-media: Extension-media
		return r.text(field)
	}
	// Content-general-form: Value-length Media-type, where Media-type is
	// Well-known-media or Extension-media, then parameters, not needed here.
	n, err := r.valueLength(field)
	if err != nil {
		return "", err
	}
	v := r.sub(n)
	c, err = v.peek(field)
	if err != nil {
		return "", err
	}
	if c >= 0x80 || c <= 30 {
		code, err := v.integer(field)
		if err != nil {
			return "", err
		}
		return wspContentTypeName(code), nil
	}
	return v.text(field)
}

func wspContentTypeName(code uint64) string {
	if code < uint64(len(wspContentTypes)) {
		return wspContentTypes[code]
	}
	return fmt.Sprintf("%#x", code)
}

// mmsVersion reads an MMS-version-value: a Short-integer with the major
// version in bits 6-4 and the minor in bits 3-0, 0xF for none.
func (r *wspReader) mmsVersion(field string) (string, error) {
	start := r.pos
	c, err := r.octet(field)
	if err != nil {
		return "", err
	}
	if c < 0x80 {
		return "", r.errorf(field, start, "octet 0x%02x is not a short-integer", c)
	}
	if c&0x0F == 0x0F {
		return fmt.Sprintf("%d", c>>4&0x07), nil
	}
	return fmt.Sprintf("%d.%d", c>>4&0x07, c&0x0F), nil
}

// from reads a From-value (OMA-MMS-ENC 7.3.21): Value-length, then
// Address-present-token (0x80) and an Encoded-string-value, or
// Insert-address-token (0x81) when the MMSC withholds the sender.
func (r *wspReader) from(field string) (string, error) {
	n, err := r.valueLength(field)
	if err != nil {
		return "", err
	}
	v := r.sub(n)
	tok, err := v.octet(field)
	if err != nil {
		return "", err
	}
	var addr string
	switch tok {
	case 0x80:
		if addr, err = v.encodedString(field); err != nil {
			return "", err
		}
	case 0x81:
	default:
		return "", v.errorf(field, 0, "token 0x%02x is neither address-present (0x80) nor insert-address (0x81)", tok)
	}
	if v.left() > 0 {
		return "", v.errorf(field, v.pos, "%d octets after the address", v.left())
	}
	// OMA-MMS-ENC 8: a phone number is given as "+31612345678/TYPE=PLMN".
	const plmn = "/TYPE=PLMN"
	if len(addr) >= len(plmn) && strings.EqualFold(addr[len(addr)-len(plmn):], plmn) {
		addr = addr[:len(addr)-len(plmn)]
	}
	return addr, nil
}

// encodedString reads an Encoded-string-value (OMA-MMS-ENC 7.2.9): a
// Text-string, or Value-length Char-set Text-string. US-ASCII, UTF-8 and
// ISO-8859-1 are decoded; another charset is an error, not a guess.
func (r *wspReader) encodedString(field string) (string, error) {
	c, err := r.peek(field)
	if err != nil {
		return "", err
	}
	if c == 0 {
		// An empty Text-string: a Value-length of 0 could not hold the
		// Char-set.
		r.pos++
		return "", nil
	}
	if c > 31 {
		start := r.pos
		s, err := r.text(field)
		if err != nil {
			return "", err
		}
		if !utf8.ValidString(s) {
			return "", r.errorf(field, start, "text is not UTF-8")
		}
		return s, nil
	}
	n, err := r.valueLength(field)
	if err != nil {
		return "", err
	}
	v := r.sub(n)
	charset, err := v.integer(field) // 0x80, Any-charset, reads as 0
	if err != nil {
		return "", err
	}
	start := v.pos
	s, err := v.text(field)
	if err != nil {
		return "", err
	}
	if v.left() > 0 {
		return "", v.errorf(field, v.pos, "%d octets after the text", v.left())
	}
	// Charsets by IANA MIBenum: 3 US-ASCII, 4 ISO-8859-1, 106 UTF-8.
	switch charset {
	case 0, 3, 106:
		if !utf8.ValidString(s) {
			return "", v.errorf(field, start, "text is not valid in charset %d", charset)
		}
		return s, nil
	case 4:
		rs := make([]rune, len(s))
		for i := range len(s) {
			rs[i] = rune(s[i])
		}
		return string(rs), nil
	}
	return "", v.errorf(field, 0, "charset %d is not supported", charset)
}

// messageClass reads a Message-class-value (OMA-MMS-ENC 7.3.27): a
// Class-identifier or a Token-text.
func (r *wspReader) messageClass(field string) (string, error) {
	start := r.pos
	c, err := r.peek(field)
	if err != nil {
		return "", err
	}
	if c < 0x80 {
		return r.text(field)
	}
	r.pos++
	switch c {
	case 0x80:
		return "personal", nil
	case 0x81:
		return "advertisement", nil
	case 0x82:
		return "informational", nil
	case 0x83:
		return "auto", nil
	}
	return "", r.errorf(field, start, "0x%02x is not a message class", c)
}

// expiry reads an Expiry-value (OMA-MMS-ENC 7.3.20): Value-length, then
// Absolute-token (0x80) and a Date-value in seconds since 1970, or
// Relative-token (0x81) and a Delta-seconds-value.
func (r *wspReader) expiry(field string) (mmsExpiry, error) {
	n, err := r.valueLength(field)
	if err != nil {
		return mmsExpiry{}, err
	}
	v := r.sub(n)
	tok, err := v.octet(field)
	if err != nil {
		return mmsExpiry{}, err
	}
	var e mmsExpiry
	start := v.pos
	switch tok {
	case 0x80:
		secs, err := v.longInteger(field)
		if err != nil {
			return mmsExpiry{}, err
		}
		if secs > math.MaxInt64 {
			return mmsExpiry{}, v.errorf(field, start, "date %d is too large", secs)
		}
		e = mmsExpiry{Absolute: true, At: time.Unix(int64(secs), 0).UTC()}
	case 0x81:
		// WSP makes Delta-seconds-value an Integer-value, of which the
		// Long-integer that MMSCs send is one form.
		secs, err := v.integer(field)
		if err != nil {
			return mmsExpiry{}, err
		}
		if secs > math.MaxInt64/uint64(time.Second) {
			return mmsExpiry{}, v.errorf(field, start, "%d seconds is too long", secs)
		}
		e = mmsExpiry{Relative: time.Duration(secs) * time.Second}
	default:
		return mmsExpiry{}, v.errorf(field, 0, "token 0x%02x is neither absolute (0x80) nor relative (0x81)", tok)
	}
	if v.left() > 0 {
		return mmsExpiry{}, v.errorf(field, v.pos, "%d octets after the time", v.left())
	}
	return e, nil
}
