// Package rowcodec holds how the stores write values into columns and read
// them back, and page their lists, whatever the database: the sizes and the
// cursor of a page of messages, and the JSON columns of a received message
// (its MMS notification, its raw PDU).
package rowcodec

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/simgate/simgate"
)

// Page sizes of the lists of messages and of received messages.
const (
	DefaultMessageLimit = 100  // when the filter gives none
	MaxMessageLimit     = 1000 // the largest page
	DefaultInboundLimit = 100  // when the caller gives none
	MaxInboundLimit     = 1000 // the largest page
)

// MessageLimit returns the page size of a list of messages filtered by f,
// or a simgate.CodeInvalid error for a status that is none.
func MessageLimit(f simgate.MessageFilter) (int, error) {
	if f.Status != "" && !f.Status.Valid() {
		return 0, simgate.Errorf(simgate.CodeInvalid, "status %q is not a message status", f.Status)
	}
	if f.Limit <= 0 {
		return DefaultMessageLimit, nil
	}
	return min(f.Limit, MaxMessageLimit), nil
}

// InboundLimit returns the page size of a list of received messages for the
// limit a caller gave.
func InboundLimit(limit int) int {
	if limit <= 0 {
		return DefaultInboundLimit
	}
	return min(limit, MaxInboundLimit)
}

// Cursor is the cursor of the page of messages after the message id
// created at createdAt (unix ms): the last of a page, newest first.
func Cursor(createdAt int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(createdAt, 10) + ":" + id))
}

// ParseCursor returns the creation time (unix ms) and the id of the cursor
// c (Cursor), or a simgate.CodeInvalid error for one that is not a cursor.
func ParseCursor(c string) (int64, string, error) {
	bad := simgate.Errorf(simgate.CodeInvalid, "cursor %q is not valid", c)
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", bad
	}
	at, id, ok := strings.Cut(string(b), ":")
	if !ok {
		return 0, "", bad
	}
	ms, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return 0, "", bad
	}
	return ms, id, nil
}

// mmsJSON and rawJSON are how the mms and raw columns hold the MMS
// notification and the raw PDU.
type mmsJSON struct {
	From            string `json:"from"`
	Subject         string `json:"subject,omitempty"`
	ContentLocation string `json:"content_location"`
	TransactionID   string `json:"transaction_id,omitempty"`
	Size            int64  `json:"size,omitempty"`
}

type rawJSON struct {
	Hex    string `json:"hex"`
	Length int    `json:"length"`
	Store  string `json:"store,omitempty"`
	Index  int    `json:"index,omitempty"`
	Error  string `json:"error"`
}

// NullJSON returns the JSON column value of v (a *simgate.MMSNotification
// or *simgate.RawPDU), or nil for a nil one.
func NullJSON(v any) (*string, error) {
	var j any
	switch v := v.(type) {
	case *simgate.MMSNotification:
		if v == nil {
			return nil, nil
		}
		j = mmsJSON(*v)
	case *simgate.RawPDU:
		if v == nil {
			return nil, nil
		}
		j = rawJSON(*v)
	default:
		return nil, fmt.Errorf("no JSON column for %T", v)
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

// SetInboundJSON sets m.MMS and m.Raw from the values of their columns;
// nil is NULL.
func SetInboundJSON(m *simgate.InboundMessage, mms, raw *string) error {
	if mms != nil {
		var j mmsJSON
		if err := json.Unmarshal([]byte(*mms), &j); err != nil {
			return fmt.Errorf("cannot read MMS notification of inbound message %d: %w", m.ID, err)
		}
		n := simgate.MMSNotification(j)
		m.MMS = &n
	}
	if raw != nil {
		var j rawJSON
		if err := json.Unmarshal([]byte(*raw), &j); err != nil {
			return fmt.Errorf("cannot read raw PDU of inbound message %d: %w", m.ID, err)
		}
		r := simgate.RawPDU(j)
		m.Raw = &r
	}
	return nil
}

// NewServiceRow readies the service s for a store to create: it gives s an
// id when it has none (simgate.NewServiceID), checks it
// (simgate.Service.CheckCreate), and returns its templates and
// allowed_countries columns: a JSON object of locale to text ("{}" for
// none), and the countries comma-separated. A country with a comma, which
// would not read back as itself, is a simgate.CodeInvalid error.
func NewServiceRow(s *simgate.Service) (templates, countries string, err error) {
	if s.ID == "" {
		s.ID = simgate.NewServiceID()
	}
	if err := s.CheckCreate(); err != nil {
		return "", "", err
	}
	ts := s.Templates
	if ts == nil {
		ts = map[string]string{}
	}
	b, err := json.Marshal(ts)
	if err != nil {
		return "", "", fmt.Errorf("cannot write the templates of service %s: %w", s.ID, err)
	}
	for i, cc := range s.AllowedCountries {
		if cc == "" || strings.Contains(cc, ",") {
			return "", "", simgate.Errorf(simgate.CodeInvalid, "allowed_countries[%d] is %q, not a country", i, cc)
		}
	}
	return string(b), strings.Join(s.AllowedCountries, ","), nil
}

// SetServiceColumns sets s.Templates and s.AllowedCountries from their
// columns (NewServiceRow): an empty map and nil for none.
func SetServiceColumns(s *simgate.Service, templates, countries string) error {
	s.Templates = map[string]string{}
	if err := json.Unmarshal([]byte(templates), &s.Templates); err != nil {
		return fmt.Errorf("cannot read the templates of service %s: %w", s.ID, err)
	}
	s.AllowedCountries = nil
	if countries != "" {
		s.AllowedCountries = strings.Split(countries, ",")
	}
	return nil
}
