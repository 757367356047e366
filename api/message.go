package api

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/simgate/simgate"
)

// MaxTextLength bounds a message text, in characters: ten concatenated
// UCS-2 parts hold 670.
const MaxTextLength = 1600

// MessageRequest is the body of POST /v1/messages.
type MessageRequest struct {
	To        string     `json:"to"`
	Text      string     `json:"text"`
	Priority  string     `json:"priority,omitempty"` // low, normal (default), high
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// SendAt schedules the message: it is sent not before this time. The
	// dispatcher's Enqueue holds the rules (queue.MaxScheduleAhead,
	// queue.ScheduleTolerance, before ExpiresAt).
	SendAt *time.Time `json:"send_at,omitempty"`
}

// maxExpiryKey is the configuration key of Options.MaxExpiry, named in
// errors.
const maxExpiryKey = "queue.max_expiry"

// days shows d in days when it is whole days.
func days(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}

type messageJSON struct {
	ID             string      `json:"id"`
	To             string      `json:"to"`
	Text           *string     `json:"text,omitempty"` // left out for a verification's SMS
	Priority       string      `json:"priority"`
	Status         string      `json:"status"`
	Reason         string      `json:"reason,omitempty"`
	Attempts       int         `json:"attempts"`
	ModemID        string      `json:"modem_id,omitempty"`
	VerificationID string      `json:"verification_id,omitempty"`
	SendAt         *time.Time  `json:"send_at,omitempty"`
	ExpiresAt      *time.Time  `json:"expires_at,omitempty"`
	CreatedAt      time.Time   `json:"created_at"`
	UpdatedAt      time.Time   `json:"updated_at"`
	Parts          []partJSON  `json:"parts,omitempty"`
	Events         []eventJSON `json:"events,omitempty"`
}

type partJSON struct {
	Seq          int        `json:"seq"`
	Status       string     `json:"status"`
	ModemID      string     `json:"modem_id,omitempty"`
	MR           int        `json:"mr"`
	SubmittedAt  *time.Time `json:"submitted_at,omitempty"`
	ReportStatus int        `json:"report_status"`
	DoneAt       *time.Time `json:"done_at,omitempty"`
}

type eventJSON struct {
	At     time.Time `json:"at"`
	Status string    `json:"status"`
	Reason string    `json:"reason,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// toMessageJSON shows m. The text of a verification's SMS holds its code and
// is never shown.
func toMessageJSON(m *simgate.Message) messageJSON {
	j := messageJSON{
		ID: m.ID, To: m.To, Priority: m.Priority.String(), Status: string(m.Status), Reason: m.Reason,
		Attempts: m.Attempts, ModemID: m.ModemID, VerificationID: m.VerificationID, SendAt: timePtr(m.SendAt),
		ExpiresAt: timePtr(m.ExpiresAt), CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
	}
	if m.VerificationID == "" {
		text := m.Text
		j.Text = &text
	}
	for _, p := range m.Parts {
		j.Parts = append(j.Parts, partJSON{Seq: p.Seq, Status: string(p.Status), ModemID: p.ModemID, MR: p.MR,
			SubmittedAt: timePtr(p.SubmittedAt), ReportStatus: p.ReportStatus, DoneAt: timePtr(p.DoneAt)})
	}
	for _, e := range m.Events {
		j.Events = append(j.Events, eventJSON{At: e.At, Status: string(e.Status), Reason: e.Reason})
	}
	return j
}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request, body []byte) error {
	if s.opts.Messages == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "messages are not available")
	}
	var req MessageRequest
	// A text may hold newlines; no other control character (decode).
	if err := decode(body, &req, "text"); err != nil {
		return err
	}
	to, err := s.numbers.Recipient(req.To)
	if err != nil {
		return err
	}
	if req.Text == "" {
		return simgate.Errorf(simgate.CodeInvalid, "text is required")
	} else if !utf8.ValidString(req.Text) || utf8.RuneCountInString(req.Text) > MaxTextLength {
		return simgate.Errorf(simgate.CodeInvalid, "text must be valid UTF-8 of at most %d characters", MaxTextLength)
	}
	prio, err := simgate.ParsePriority(req.Priority)
	if err != nil {
		return err
	}
	m := &simgate.Message{To: to, Text: req.Text, Priority: prio, APIKeyID: apiKeyFrom(r.Context()).ID,
		IdempotencyKey: r.Header.Get("Idempotency-Key")}
	if req.ExpiresAt != nil {
		now := s.opts.Now()
		if !req.ExpiresAt.After(now) {
			return simgate.Errorf(simgate.CodeInvalid, "expires_at is in the past")
		}
		if req.ExpiresAt.After(now.Add(s.opts.MaxExpiry)) {
			return simgate.Errorf(simgate.CodeInvalid, "expires_at is more than %s ahead, the most allowed (%s)", days(s.opts.MaxExpiry), maxExpiryKey)
		}
		m.ExpiresAt = req.ExpiresAt.UTC()
	}
	if req.SendAt != nil {
		m.SendAt = req.SendAt.UTC()
	}
	if err := s.allowMessage(r.Context(), to, req.Text); err != nil {
		return err
	}
	if err := s.opts.Messages.Enqueue(r.Context(), m); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toMessageJSON(m))
	return nil
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request, _ []byte) error {
	if s.opts.Messages == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "messages are not available")
	}
	m, err := s.opts.Messages.Message(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toMessageJSON(m))
	return nil
}

func (s *Server) cancelMessage(w http.ResponseWriter, r *http.Request, _ []byte) error {
	if s.opts.Messages == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "messages are not available")
	}
	id := mux.Vars(r)["id"]
	if err := s.opts.Messages.Cancel(r.Context(), id); err != nil {
		return err
	}
	m, err := s.opts.Messages.Message(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toMessageJSON(m))
	return nil
}

// pageLimit reads ?limit=, 1 to 1000, default 100.
func pageLimit(r *http.Request) (int, error) {
	l := r.URL.Query().Get("limit")
	if l == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > 1000 {
		return 0, simgate.Errorf(simgate.CodeInvalid, "limit must be 1 to 1000")
	}
	return n, nil
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request, _ []byte) error {
	if s.opts.Messages == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "messages are not available")
	}
	q := r.URL.Query()
	status := simgate.MessageStatus(q.Get("status"))
	if status != "" && !status.Valid() {
		return simgate.Errorf(simgate.CodeInvalid, "status %q is not a message status", status)
	}
	to := q.Get("to")
	if to != "" {
		var err error
		if to, err = s.numbers.Lookup(to); err != nil {
			return err
		}
	}
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	f := simgate.MessageFilter{Status: status, To: to, VerificationID: q.Get("verification_id"), Cursor: q.Get("cursor"), Limit: limit}
	ms, next, err := s.opts.Messages.ListMessages(r.Context(), f)
	if err != nil {
		return err
	}
	out := struct {
		Messages   []messageJSON `json:"messages"`
		NextCursor string        `json:"next_cursor,omitempty"`
	}{Messages: []messageJSON{}, NextCursor: next}
	for _, m := range ms {
		out.Messages = append(out.Messages, toMessageJSON(m))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) listInbox(w http.ResponseWriter, r *http.Request, _ []byte) error {
	if s.opts.Inbox == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "the inbox is not available")
	}
	var after int64
	if c := r.URL.Query().Get("cursor"); c != "" {
		var err error
		if after, err = strconv.ParseInt(c, 10, 64); err != nil || after < 0 {
			return simgate.Errorf(simgate.CodeInvalid, "cursor is not one this API returned")
		}
	}
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	ms, err := s.opts.Inbox.ListInboundMessages(r.Context(), after, limit)
	if err != nil {
		return err
	}
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
	type inboundJSON struct {
		ID         int64                 `json:"id"`
		ModemID    string                `json:"modem_id"`
		From       string                `json:"from"`
		Text       string                `json:"text"`
		Kind       simgate.InboundKind   `json:"kind"`
		Status     simgate.InboundStatus `json:"status"`
		Parts      int                   `json:"parts"`
		PartsTotal int                   `json:"parts_total"`
		Port       int                   `json:"port,omitempty"`
		DataHex    string                `json:"data_hex,omitempty"`
		MMS        *mmsJSON              `json:"mms,omitempty"`
		Raw        *rawJSON              `json:"raw,omitempty"`
		SCTS       *time.Time            `json:"scts,omitempty"`
		ReceivedAt time.Time             `json:"received_at"`
	}
	out := struct {
		Messages   []inboundJSON `json:"messages"`
		NextCursor string        `json:"next_cursor,omitempty"`
	}{Messages: []inboundJSON{}}
	for _, m := range ms {
		j := inboundJSON{ID: m.ID, ModemID: m.ModemID, From: m.From, Text: m.Text,
			Kind: m.Kind, Status: m.Status, Parts: m.Parts, PartsTotal: m.PartsTotal, Port: m.Port,
			DataHex: hex.EncodeToString(m.Data), SCTS: timePtr(m.SCTS), ReceivedAt: m.ReceivedAt}
		if m.MMS != nil {
			j.MMS = (*mmsJSON)(m.MMS)
		}
		if m.Raw != nil {
			j.Raw = (*rawJSON)(m.Raw)
		}
		out.Messages = append(out.Messages, j)
	}
	if len(ms) == limit {
		out.NextCursor = strconv.FormatInt(ms[len(ms)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// duration is a TTL in JSON: a Go duration string ("10m") or seconds.
type duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *duration) UnmarshalJSON(b []byte) error {
	var secs float64
	if err := json.Unmarshal(b, &secs); err == nil {
		if secs < 0 || secs > 1e9 {
			return simgate.Errorf(simgate.CodeInvalid, "ttl out of range")
		}
		*d = duration(time.Duration(secs * float64(time.Second)))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return simgate.Errorf(simgate.CodeInvalid, "ttl must be seconds or a duration such as \"10m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return simgate.Errorf(simgate.CodeInvalid, "ttl must be seconds or a duration such as \"10m\"")
	}
	*d = duration(v)
	return nil
}
