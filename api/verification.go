package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/simgate/simgate"
)

// VerificationRequest is the body of POST /v1/verifications.
type VerificationRequest struct {
	To string `json:"to"`
	// Channel is "sms" (the default: a code by SMS) or "missed_call": the
	// answer's call_to is the number the user calls from To; that call
	// approves the verification, and no SMS is sent.
	Channel    string `json:"channel,omitempty"`
	Locale     string `json:"locale,omitempty"`
	CodeLength int    `json:"code_length,omitempty"`
	// TTL is a Go duration ("10m") or a number of seconds.
	TTL duration `json:"ttl,omitempty"`
	// AppName is the key of an app name the operator configured
	// (verify.app_names), never text: the SMS text comes from the
	// configuration only.
	AppName   string `json:"app_name,omitempty"`
	Reference string `json:"reference,omitempty"`
	// Service is the id of the service the verification belongs to;
	// absent: the key's one service, or the default service
	// (simgate.APIKey.ServiceFor).
	Service string `json:"service,omitempty"`
	// CustomCode is the code to send instead of a drawn one, where the
	// service allows it. It is kept only as its HMAC and never answered.
	CustomCode string `json:"custom_code,omitempty"`
}

// CheckRequest is the body of POST /v1/verifications/check.
type CheckRequest struct {
	ID   string `json:"id,omitempty"`
	To   string `json:"to,omitempty"`
	Code string `json:"code"`
	// Service is the service whose pending verification of To is
	// checked, as VerificationRequest.Service; with ID, the service the
	// verification must be of.
	Service string `json:"service,omitempty"`
}

// verificationJSON is a verification as the API shows it: never its code
// or hash.
type verificationJSON struct {
	ID      string `json:"id"`
	To      string `json:"to"`
	Status  string `json:"status"`
	Channel string `json:"channel"`
	// CallTo is the number to call, for a missed_call verification only.
	CallTo    string `json:"call_to,omitempty"`
	Valid     *bool  `json:"valid,omitempty"` // check responses only
	Locale    string `json:"locale"`
	AppName   string `json:"app_name"`
	Reference string `json:"reference,omitempty"`
	// CodeLength and AttemptsLeft are left out for a missed_call
	// verification, which has no code to check.
	CodeLength     int        `json:"code_length,omitempty"`
	SendCount      int        `json:"send_count"`
	Attempts       int        `json:"attempts"`
	AttemptsLeft   *int       `json:"attempts_left,omitempty"`
	MessageID      string     `json:"message_id,omitempty"`
	DeliveryStatus string     `json:"delivery_status,omitempty"`
	ExpiresAt      time.Time  `json:"expires_at"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	ApprovedAt     *time.Time `json:"approved_at,omitempty"`
	Service        string     `json:"service"`
}

func toVerificationJSON(v *simgate.Verification, delivery simgate.MessageStatus) verificationJSON {
	j := verificationJSON{
		ID: v.ID, To: v.To, Status: string(v.Status), Channel: string(v.Channel), CallTo: v.CallTo, Locale: v.Locale,
		AppName: v.AppName, Reference: v.Reference, CodeLength: v.CodeLength, SendCount: v.SendCount, Attempts: v.Attempts,
		MessageID: v.MessageID, DeliveryStatus: string(delivery),
		ExpiresAt: v.ExpiresAt, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, Service: v.ServiceID,
	}
	if j.Channel == "" {
		j.Channel = string(simgate.ChannelSMS)
	}
	if v.Channel == simgate.ChannelMissedCall {
		j.CodeLength = 0
	} else {
		left := 0
		if v.Status == simgate.VerificationPending {
			left = max(v.MaxAttempts-v.Attempts, 0)
		}
		j.AttemptsLeft = &left
	}
	if !v.ApprovedAt.IsZero() {
		t := v.ApprovedAt
		j.ApprovedAt = &t
	}
	return j
}

func (s *Server) createVerification(w http.ResponseWriter, r *http.Request, body []byte) error {
	if s.opts.Verify == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "verifications are not available")
	}
	var req VerificationRequest
	if err := decode(body, &req); err != nil {
		return err
	}
	k := apiKeyFrom(r.Context())
	service, err := k.ServiceFor(req.Service)
	if err != nil {
		return err
	}
	to, err := s.numbers.Recipient(req.To)
	if err != nil {
		return err
	}
	channel := simgate.VerificationChannel(req.Channel)
	switch channel {
	case "", simgate.ChannelSMS:
		err = s.allowSMS(r.Context(), to)
	case simgate.ChannelMissedCall:
		err = s.allowCall(r.Context(), to)
	default:
		err = simgate.Errorf(simgate.CodeInvalid, "channel must be %q or %q, got %q", simgate.ChannelSMS, simgate.ChannelMissedCall, req.Channel)
	}
	if err != nil {
		return err
	}
	v := &simgate.Verification{
		To: to, Channel: channel, Locale: req.Locale, CodeLength: req.CodeLength, AppName: req.AppName,
		Reference: req.Reference, APIKeyID: k.ID, ServiceID: service,
	}
	var m *simgate.Message
	if req.CustomCode != "" {
		m, err = s.opts.Verify.StartCustom(r.Context(), v, time.Duration(req.TTL), req.CustomCode)
	} else {
		m, err = s.opts.Verify.Start(r.Context(), v, time.Duration(req.TTL))
	}
	if err != nil {
		return err
	}
	var delivery simgate.MessageStatus
	if m != nil {
		delivery = m.Status
	}
	writeJSON(w, http.StatusCreated, toVerificationJSON(v, delivery))
	return nil
}

// noIdempotentCustomCode refuses an Idempotency-Key with a custom code
// (routeOpts.noIdempotency). The key's record keeps the SHA-256 of the
// request's body for a day (Server.idempotent), and a custom code in that
// body, a few digits, would be found by hashing the request with each code
// in turn: codes are kept only as HMACs, under a secret the database does
// not hold.
func noIdempotentCustomCode(body []byte) error {
	var req struct {
		CustomCode json.RawMessage `json:"custom_code"`
	}
	if json.Unmarshal(body, &req) != nil || len(req.CustomCode) == 0 || string(req.CustomCode) == `""` || string(req.CustomCode) == "null" {
		return nil
	}
	return simgate.Errorf(simgate.CodeInvalid, "a request with custom_code cannot have an Idempotency-Key: "+
		"the key's record keeps a hash of the request, from which the code could be found; send it without the key")
}

func (s *Server) checkVerification(w http.ResponseWriter, r *http.Request, body []byte) error {
	if s.opts.Verify == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "verifications are not available")
	}
	var req CheckRequest
	if err := decode(body, &req); err != nil {
		return err
	}
	if (req.ID == "") == (req.To == "") {
		return simgate.Errorf(simgate.CodeInvalid, "give either id or to")
	}
	k := apiKeyFrom(r.Context())
	ref := simgate.VerificationRef{ID: req.ID, ServiceID: req.Service, Services: k.Services}
	if req.To != "" {
		var err error
		if ref.To, err = s.numbers.Lookup(req.To); err != nil {
			return err
		}
		if ref.ServiceID, err = k.ServiceFor(req.Service); err != nil {
			return err
		}
	} else if req.Service != "" && !simgate.IsServiceID(req.Service) {
		return simgate.Errorf(simgate.CodeInvalid, "service must be a service id: \"VA\" and 32 lowercase hex digits")
	}
	v, err := s.opts.Verify.Check(r.Context(), ref, req.Code)
	if err != nil {
		return err
	}
	j := toVerificationJSON(v, "")
	valid := v.Status == simgate.VerificationApproved
	j.Valid = &valid
	writeJSON(w, http.StatusOK, j)
	return nil
}

// verificationRef is the verification of the request's path, as its key
// may see it.
func verificationRef(r *http.Request) simgate.VerificationRef {
	return simgate.VerificationRef{ID: mux.Vars(r)["id"], Services: apiKeyFrom(r.Context()).Services}
}

func (s *Server) getVerification(w http.ResponseWriter, r *http.Request, _ []byte) error {
	if s.opts.Verify == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "verifications are not available")
	}
	v, err := s.opts.Verify.Get(r.Context(), verificationRef(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toVerificationJSON(v, s.deliveryStatus(r.Context(), v)))
	return nil
}

func (s *Server) cancelVerification(w http.ResponseWriter, r *http.Request, _ []byte) error {
	if s.opts.Verify == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "verifications are not available")
	}
	v, err := s.opts.Verify.Cancel(r.Context(), verificationRef(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toVerificationJSON(v, s.deliveryStatus(r.Context(), v)))
	return nil
}

// deliveryStatus is the status of a verification's last SMS, or "" when
// unknown.
func (s *Server) deliveryStatus(ctx context.Context, v *simgate.Verification) simgate.MessageStatus {
	if v.MessageID == "" || s.opts.Messages == nil {
		return ""
	}
	m, err := s.opts.Messages.Message(ctx, v.MessageID)
	if err != nil {
		return ""
	}
	return m.Status
}
