package simgate

import (
	"errors"
	"fmt"
	"time"
)

// Code is a stable, machine-readable error class. The API maps each code to
// one HTTP status and puts it in the problem+json "code" field.
type Code string

// Error codes.
const (
	CodeInvalid      Code = "invalid"
	CodeNotFound     Code = "not_found"
	CodeConflict     Code = "conflict"
	CodeRateLimited  Code = "rate_limited"
	CodeUnauthorized Code = "unauthorized"
	CodeForbidden    Code = "forbidden"
	CodeUnavailable  Code = "unavailable"
	CodeInternal     Code = "internal"
)

// Error is a domain error: a code for programs and a message for people.
// Errors without a Code are internal and their text is not shown to clients.
type Error struct {
	Code    Code
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("simgate error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, CodeInternal
// for any other error, and "" for nil.
func ErrorCode(err error) Code {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic text for internal errors so that their details stay in the logs.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// RateLimitError is a CodeRateLimited error that says when the caller may
// try again (the API's Retry-After) and which limit refused.
type RateLimitError struct {
	Err   *Error
	After time.Duration
	// Rule names the limit, for metrics and for the answers that tell the
	// limits apart (the Twilio surface's codes): one of the API's rules or
	// of the verification service's (RuleVerificationSends,
	// RuleVerificationChecks).
	Rule string
}

// The verification service's own limits, as RateLimitError.Rule names them.
const (
	// RuleVerificationSends: the sends (code SMS and missed-call starts)
	// to one number within the send window.
	RuleVerificationSends = "verification_sends"
	// RuleVerificationChecks: the failed checks of one number's codes
	// within the failure window.
	RuleVerificationChecks = "verification_checks"
)

// Error implements error.
func (e *RateLimitError) Error() string { return e.Err.Error() }

// Unwrap returns the *Error, so ErrorCode finds the code.
func (e *RateLimitError) Unwrap() error { return e.Err }

// RetryAfter returns how long the caller should wait.
func (e *RateLimitError) RetryAfter() time.Duration { return e.After }

// RateLimited returns a *RateLimitError of rule with a formatted message.
func RateLimited(rule string, after time.Duration, format string, args ...any) *RateLimitError {
	return &RateLimitError{Err: Errorf(CodeRateLimited, format, args...), After: after, Rule: rule}
}
