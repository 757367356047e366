package api

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/simgate/simgate"
)

// Codes that only the HTTP layer produces, in the problem "code" member next
// to the simgate codes.
const (
	// CodeTooLarge: the request body is over MaxBodyBytes.
	CodeTooLarge simgate.Code = "too_large"
	// CodeIdempotencyMismatch: an Idempotency-Key reused for another request.
	CodeIdempotencyMismatch simgate.Code = "idempotency_key_mismatch"
	// CodeUnsupportedMediaType: a request body that is not application/json.
	CodeUnsupportedMediaType simgate.Code = "unsupported_media_type"
)

// statusOf maps an error code to its HTTP status.
func statusOf(code simgate.Code) int {
	switch code {
	case simgate.CodeInvalid:
		return http.StatusBadRequest
	case simgate.CodeUnauthorized:
		return http.StatusUnauthorized
	case simgate.CodeForbidden:
		return http.StatusForbidden
	case simgate.CodeNotFound:
		return http.StatusNotFound
	case simgate.CodeConflict:
		return http.StatusConflict
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case CodeIdempotencyMismatch:
		return http.StatusUnprocessableEntity
	case simgate.CodeRateLimited:
		return http.StatusTooManyRequests
	case simgate.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// problem is an RFC 9457 problem document with simgate's "code" extension.
type problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail"`
	Code     simgate.Code `json:"code"`
	Instance string       `json:"instance,omitempty"`
}

// retryAfterer is an error that says when to retry: a
// simgate.RateLimitError, or the store's answer to a full disk.
type retryAfterer interface{ RetryAfter() time.Duration }

// Error writes err as a problem document with the status of its code, or
// on the Twilio surface as Twilio's error JSON (twilioCodeOf). A rate
// limit adds Retry-After (whole seconds, rounded up). Only internal errors
// are logged, with the request's method and path; their text is not sent.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	code := simgate.ErrorCode(err)
	status := statusOf(code)
	var re *simgate.RateLimitError
	if errors.As(err, &re) && s.opts.RateLimits != nil {
		s.opts.RateLimits.RateLimited(re.Rule)
	}
	if code == simgate.CodeInternal {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	var ra retryAfterer
	if errors.As(err, &ra) {
		secs := int64(math.Ceil(ra.RetryAfter().Seconds()))
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	}
	if code == simgate.CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="simgate"`)
	}
	if isTwilio(r) {
		writeTwilioError(w, r, status, twilioCodeOf(err), simgate.ErrorMessage(err))
		return
	}
	writeProblem(w, r, status, code, simgate.ErrorMessage(err))
}

func writeProblem(w http.ResponseWriter, r *http.Request, status int, code simgate.Code, detail string) {
	writeProblemDoc(w, status, newProblem(r, status, code, detail))
}

// newProblem returns the problem document for a request's failure.
func newProblem(r *http.Request, status int, code simgate.Code, detail string) problem {
	return problem{
		Type:     "urn:simgate:problem:" + string(code),
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   detail,
		Code:     code,
		Instance: r.URL.Path,
	}
}

// writeProblemDoc writes doc, a problem or a struct that embeds one with
// extension members, with status.
func writeProblemDoc(w http.ResponseWriter, status int, doc any) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(doc)
}

// rateLimited is a limiter's refusal; rule names the limit for metrics.
func rateLimited(rule string, after time.Duration, msg string) error {
	return simgate.RateLimited(rule, after, "%s", msg)
}

// Rate-limit rules of the API, as RateLimitObserver is told them, beside
// the verification service's (simgate.RuleVerificationSends and
// simgate.RuleVerificationChecks).
const (
	RulePerIP        = "per_ip"
	RulePerAPIKey    = "per_api_key"
	RulePerNumber    = "per_number"
	RulePerPrefix    = "per_prefix"
	RuleGlobalHourly = "global_hourly"
	RuleGlobalDaily  = "global_daily"
)

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
