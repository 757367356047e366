package verify

import (
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// callStatus holds to its rule whatever verification the store found: only
// a pending missed-call verification of the caller on the modem that took
// the call, before its expiry, is approved.
func TestCallStatus(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pending := func() *simgate.Verification {
		return &simgate.Verification{To: "+4915123456789", Status: simgate.VerificationPending, Channel: simgate.ChannelMissedCall,
			CallTo: "+4917011111111", CallModem: "sim0", CreatedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Minute)}
	}
	call := &simgate.InboundCall{ModemID: "sim0", From: "+4915123456789", FromE164: "+4915123456789"}
	for _, c := range []struct {
		name string
		edit func(v *simgate.Verification, c *simgate.InboundCall)
		at   time.Time
		want simgate.VerificationStatus
	}{
		{"the caller on its SIM", func(*simgate.Verification, *simgate.InboundCall) {}, now, simgate.VerificationApproved},
		{"just before the expiry", func(*simgate.Verification, *simgate.InboundCall) {}, now.Add(time.Minute - time.Millisecond), simgate.VerificationApproved},
		{"at the expiry", func(*simgate.Verification, *simgate.InboundCall) {}, now.Add(time.Minute), simgate.VerificationExpired},
		{"at its creation", func(*simgate.Verification, *simgate.InboundCall) {}, now.Add(-time.Minute), simgate.VerificationApproved},
		{"before its creation", func(*simgate.Verification, *simgate.InboundCall) {}, now.Add(-time.Minute - time.Millisecond), simgate.VerificationPending},
		{"another caller", func(_ *simgate.Verification, c *simgate.InboundCall) { c.FromE164 = "+4915123456780" }, now, simgate.VerificationPending},
		{"a caller not read", func(_ *simgate.Verification, c *simgate.InboundCall) { c.FromE164 = "" }, now, simgate.VerificationPending},
		{"another SIM", func(_ *simgate.Verification, c *simgate.InboundCall) { c.ModemID = "sim1" }, now, simgate.VerificationPending},
		{"an SMS verification", func(v *simgate.Verification, _ *simgate.InboundCall) {
			v.Channel, v.CallTo, v.CallModem = simgate.ChannelSMS, "", ""
		}, now, simgate.VerificationPending},
		{"an SMS verification on no modem", func(v *simgate.Verification, c *simgate.InboundCall) {
			v.Channel, v.CallTo, v.CallModem, c.ModemID = simgate.ChannelSMS, "", "", ""
		}, now, simgate.VerificationPending},
		{"one approved already", func(v *simgate.Verification, _ *simgate.InboundCall) { v.Status = simgate.VerificationApproved }, now, simgate.VerificationPending},
		{"one canceled", func(v *simgate.Verification, _ *simgate.InboundCall) { v.Status = simgate.VerificationCanceled }, now, simgate.VerificationPending},
	} {
		v, cl := pending(), *call
		c.edit(v, &cl)
		if got := callStatus(v, &cl, c.at); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
