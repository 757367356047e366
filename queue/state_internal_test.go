package queue

import (
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// A message's status is its parts' by precedence: still with the dispatcher,
// then awaiting a report, then unknown, failed, expired, canceled; delivered
// only when every part was.
func TestFoldParts(t *testing.T) {
	const (
		queued, sending, sent = simgate.StatusQueued, simgate.StatusSending, simgate.StatusSent
		delivered, failed     = simgate.StatusDelivered, simgate.StatusFailed
		unknown, expired      = simgate.StatusUnknown, simgate.StatusExpired
	)
	for _, c := range []struct {
		parts []simgate.MessageStatus
		want  simgate.MessageStatus
	}{
		{[]simgate.MessageStatus{delivered, delivered}, delivered},
		{[]simgate.MessageStatus{delivered, sent}, sent},
		{[]simgate.MessageStatus{sent, unknown, failed}, sent},
		{[]simgate.MessageStatus{delivered, unknown, failed}, unknown},
		{[]simgate.MessageStatus{delivered, failed}, failed},
		{[]simgate.MessageStatus{failed, expired}, failed},
		{[]simgate.MessageStatus{sent, sending}, sending},
		{[]simgate.MessageStatus{queued, sent}, queued},
		{nil, delivered},
	} {
		if got := foldParts(c.parts); got != c.want {
			t.Errorf("foldParts(%v) = %s, want %s", c.parts, got, c.want)
		}
	}
}

// A queued message may no longer be sent past its expiry or its
// verification's, nor once its verification is gone or left pending; an
// expiry names the wait for a modem.
func TestStale(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	msg := func(expires time.Time, vid string, vstatus simgate.VerificationStatus, vexpires time.Time, waiting string) *simgate.UnsentMessage {
		return &simgate.UnsentMessage{Message: simgate.Message{ExpiresAt: expires, VerificationID: vid},
			VerificationStatus: vstatus, VerificationExpiresAt: vexpires, WaitingForModem: waiting}
	}
	later, earlier := now.Add(time.Minute), now.Add(-time.Minute)
	for _, c := range []struct {
		u      *simgate.UnsentMessage
		status simgate.MessageStatus
		reason string
	}{
		{msg(time.Time{}, "", "", time.Time{}, ""), "", ""},
		{msg(later, "", "", time.Time{}, ""), "", ""},
		{msg(now, "", "", time.Time{}, ""), simgate.StatusExpired, "expired before it could be sent"},
		{msg(earlier, "", "", time.Time{}, "waiting for a modem: none"), simgate.StatusExpired,
			"expired before it could be sent (waiting for a modem: none)"},
		{msg(later, "ver_1", simgate.VerificationPending, later, ""), "", ""},
		{msg(later, "ver_1", "", time.Time{}, ""), simgate.StatusCanceled, "its verification no longer exists"},
		{msg(later, "ver_1", simgate.VerificationPending, now, "w"), simgate.StatusExpired, "its verification expired before it could be sent (w)"},
		{msg(time.Time{}, "ver_1", simgate.VerificationExpired, later, ""), simgate.StatusExpired,
			"its verification expired before it could be sent"},
		{msg(later, "ver_1", simgate.VerificationMaxAttemptsReached, later, "w"), simgate.StatusCanceled, "its verification is max attempts reached"},
	} {
		if status, reason := stale(now, c.u); status != c.status || reason != c.reason {
			t.Errorf("stale(%+v) = %s %q, want %s %q", c.u, status, reason, c.status, c.reason)
		}
	}
}
