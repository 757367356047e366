package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// SessionStore is the contract of the admin console's sessions
// (console.Sessions), with the keys they belong to.
type SessionStore interface {
	CreateConsoleSession(ctx context.Context, tokenHash []byte, apiKeyID, csrf string, ttl time.Duration) error
	FindConsoleSession(ctx context.Context, tokenHash []byte) (apiKeyID, csrf string, err error)
	DeleteConsoleSession(ctx context.Context, tokenHash []byte) error
	CreateAPIKey(ctx context.Context, k *simgate.APIKey) error
	RevokeAPIKey(ctx context.Context, id string) error
}

// ConsoleSessions checks that a session is found by its token's hash until
// it expires, not after its key was revoked, and not after a logout.
func ConsoleSessions(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	db := as[SessionStore](t, open(t, "sessions", clk.Now))
	k := &simgate.APIKey{Name: "admin", Prefix: "sg_x", Hash: make([]byte, 32), Scopes: []simgate.Scope{simgate.ScopeAdmin}}
	if err := db.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	h := make([]byte, 32)
	h[0] = 1
	if err := db.CreateConsoleSession(ctx, h, k.ID, "csrf1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if id, csrf, err := db.FindConsoleSession(ctx, h); err != nil || id != k.ID || csrf != "csrf1" {
		t.Fatalf("find: %q %q %v", id, csrf, err)
	}
	clk.Advance(time.Hour)
	if _, _, err := db.FindConsoleSession(ctx, h); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("expired session: %v", err)
	}
	h2 := make([]byte, 32)
	h2[0] = 3
	if err := db.CreateConsoleSession(ctx, h2, k.ID, "csrf3", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteConsoleSession(ctx, h2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.FindConsoleSession(ctx, h2); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("session after logout: %v", err)
	}
	if err := db.DeleteConsoleSession(ctx, h2); err != nil {
		t.Fatalf("a second logout: %v", err)
	}
	h[0] = 2
	if err := db.CreateConsoleSession(ctx, h, k.ID, "csrf2", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.FindConsoleSession(ctx, h); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("session of a revoked key: %v", err)
	}
}

// PINStore is the contract of the PINs SIMs rejected (modem.PINMemory).
type PINStore interface {
	PINRejected(ctx context.Context, iccid string, fp []byte) (bool, error)
	RecordRejectedPIN(ctx context.Context, iccid string, fp []byte) error
}

// RejectedPINs checks that a rejected PIN is remembered by the SIM's ICCID
// and the PIN's fingerprint, across a restart, and that recording it twice
// is no error.
func RejectedPINs(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	store := open(t, "pins", clk.Now)
	db := as[PINStore](t, store)
	fp, other := make([]byte, 32), make([]byte, 32)
	other[0] = 1
	const iccid = "8949000000000000001"
	if rejected, err := db.PINRejected(ctx, iccid, fp); err != nil || rejected {
		t.Fatalf("before: %v, %v", rejected, err)
	}
	for range 2 {
		if err := db.RecordRejectedPIN(ctx, iccid, fp); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	db = as[PINStore](t, open(t, "pins", clk.Now))
	for _, c := range []struct {
		iccid string
		fp    []byte
		want  bool
	}{{iccid, fp, true}, {iccid, other, false}, {"8949000000000000002", fp, false}} {
		if got, err := db.PINRejected(ctx, c.iccid, c.fp); err != nil || got != c.want {
			t.Fatalf("PINRejected(%s, %x…) = %v, %v; want %v", c.iccid, c.fp[:1], got, err, c.want)
		}
	}
}

// HealthStore is what readiness and the console's list of verifications
// read.
type HealthStore interface {
	Ping(ctx context.Context) error
	RecentVerifications(ctx context.Context, limit int) ([]*simgate.Verification, error)
	UpdateVerifications(ctx context.Context, fn func(simgate.VerificationTx) error) error
}

// PingAndRecent checks that an open database answers Ping and a closed one
// does not, and that the console lists verifications newest first, without
// their code hashes, within its limit, each with its channel (and a
// missed-call one with its number to call).
func PingAndRecent(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	store := open(t, "health", clk.Now)
	db := as[HealthStore](t, store)
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if vs, err := db.RecentVerifications(ctx, 0); err != nil || vs == nil || len(vs) != 0 {
		t.Fatalf("no verifications: %v, %v; want an empty list", vs, err)
	}
	var ids []string
	for _, to := range []string{"+4915123456781", "+4915123456782", "+4915123456783"} {
		v := &simgate.Verification{To: to, CodeLength: 6, MaxAttempts: 3, Reference: "r-" + to[len(to)-1:], ExpiresAt: clk.Now().Add(time.Hour)}
		StartVerification(t, db, v, make([]byte, 32))
		ids = append(ids, v.ID)
		clk.Advance(time.Second)
	}
	vs, err := db.RecentVerifications(ctx, 2)
	if err != nil || len(vs) != 2 || vs[0].ID != ids[2] || vs[1].ID != ids[1] {
		t.Fatalf("recent = %+v, %v; want the two newest, newest first", vs, err)
	}
	if v := vs[0]; v.CodeHash != nil || v.Reference != "r-3" || v.Status != simgate.VerificationPending || v.SendCount != 1 ||
		v.Channel != simgate.ChannelSMS || v.CallTo != "" {
		t.Fatalf("listed %+v", v)
	}
	call := &simgate.Verification{To: "+4915123456784", Channel: simgate.ChannelMissedCall, CallTo: "+4917011111111",
		CallModem: "sim0", CodeLength: 6, MaxAttempts: 3, ExpiresAt: clk.Now().Add(time.Hour)}
	StartVerification(t, db, call, nil)
	if vs, err := db.RecentVerifications(ctx, 1); err != nil || len(vs) != 1 || vs[0].ID != call.ID ||
		vs[0].Channel != simgate.ChannelMissedCall || vs[0].CallTo != call.CallTo {
		t.Fatalf("recent = %+v, %v; want the missed-call verification %s with its number to call", vs, err, call.ID)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); err == nil {
		t.Fatal("Ping of a closed database succeeded")
	}
}

// InboundStore is what the console lists of received SMS.
type InboundStore interface {
	CreateInboundMessage(ctx context.Context, m *simgate.InboundMessage) error
	RecentInboundMessages(ctx context.Context, limit int) ([]*simgate.InboundMessage, error)
}

// RecentInbound checks that the console lists received SMS newest first,
// within its limit, as they were stored.
func RecentInbound(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	db := as[InboundStore](t, open(t, "recent-inbound", clk.Now))
	if ms, err := db.RecentInboundMessages(ctx, 0); err != nil || ms == nil || len(ms) != 0 {
		t.Fatalf("none: %v, %v; want an empty list", ms, err)
	}
	for _, text := range []string{"one", "two", "three"} {
		if err := db.CreateInboundMessage(ctx, &simgate.InboundMessage{ModemID: "m0", From: "+4915123456789", Text: text}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	ms, err := db.RecentInboundMessages(ctx, 2)
	if err != nil || len(ms) != 2 || ms[0].Text != "three" || ms[1].Text != "two" || ms[0].ModemID != "m0" || ms[0].Kind != simgate.InboundText {
		t.Fatalf("recent = %+v, %v; want three, then two", ms, err)
	}
}
