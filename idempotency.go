package simgate

import (
	"bytes"
	"context"
	"time"
)

type idempotencyCtxKey struct{}

type idempotencyRef struct{ apiKeyID, key string }

// WithIdempotencyKey returns a copy of ctx saying that the request it
// belongs to holds the reservation of the Idempotency-Key key of the API key
// apiKeyID. A store that creates a message under such a context records the
// message with the reservation in the same transaction, so that a retry
// after a crash finds it (see store.DB.ReserveIdempotencyKey).
func WithIdempotencyKey(ctx context.Context, apiKeyID, key string) context.Context {
	return context.WithValue(ctx, idempotencyCtxKey{}, idempotencyRef{apiKeyID, key})
}

// IdempotencyKeyFrom returns the reservation WithIdempotencyKey put in ctx.
func IdempotencyKeyFrom(ctx context.Context) (apiKeyID, key string, ok bool) {
	ref, ok := ctx.Value(idempotencyCtxKey{}).(idempotencyRef)
	return ref.apiKeyID, ref.key, ok
}

// IdempotencyOutcome is what reserving an Idempotency-Key found.
type IdempotencyOutcome string

// Idempotency outcomes.
const (
	IdempotencyReserved IdempotencyOutcome = "reserved"  // new key: run the request, then complete or release it
	IdempotencyReplay   IdempotencyOutcome = "replay"    // same request done before: answer with the stored response
	IdempotencyInFlight IdempotencyOutcome = "in_flight" // the first request with the key has not finished
	IdempotencyMismatch IdempotencyOutcome = "mismatch"  // same key, another request
	// IdempotencyRecover: the request that reserved the key created a
	// message and died before its response was stored. The reservation is
	// taken over: answer from the message, then complete the key.
	IdempotencyRecover IdempotencyOutcome = "recover"
)

// IdempotencyRecord is what a store keeps under an Idempotency-Key.
type IdempotencyRecord struct {
	RequestHash []byte    // SHA-256 of the request that reserved it
	StatusCode  int       // of the stored response; 0 while in progress
	Response    []byte    // the stored response body
	CreatedAt   time.Time // when it was reserved, or last taken over
	MessageID   string    // the message its request created, if any
}

// IdempotencyWrite is what a store writes after Decide.
type IdempotencyWrite int

// Idempotency writes.
const (
	IdempotencyKeep     IdempotencyWrite = iota // nothing
	IdempotencyReserve                          // a new reservation for this request, replacing an expired record
	IdempotencyTakeOver                         // the reservation of a dead request: its CreatedAt becomes now
)

// DecideIdempotency is the rule of an Idempotency-Key: what a request whose
// SHA-256 is requestHash finds at now when rec (nil when none) is stored
// under its key, and what the store must write. A record older than ttl is
// forgotten. Within ttl: another request's key is a mismatch; a completed
// one is replayed; one in progress is in flight until its lease has run
// out. Past the lease its request is dead and the reservation is taken
// over: IdempotencyRecover when the dead request created a message (the
// store recorded it with the reservation, see WithIdempotencyKey), so that
// the retry answers from it instead of creating a second one; otherwise
// IdempotencyReserved, and the retry runs once.
func DecideIdempotency(rec *IdempotencyRecord, requestHash []byte, now time.Time, ttl, lease time.Duration) (IdempotencyOutcome, IdempotencyWrite) {
	switch {
	case rec == nil || !rec.CreatedAt.Add(ttl).After(now):
		return IdempotencyReserved, IdempotencyReserve
	case !bytes.Equal(rec.RequestHash, requestHash):
		return IdempotencyMismatch, IdempotencyKeep
	case rec.StatusCode != 0:
		return IdempotencyReplay, IdempotencyKeep
	case rec.CreatedAt.Add(lease).After(now):
		return IdempotencyInFlight, IdempotencyKeep
	case rec.MessageID != "":
		return IdempotencyRecover, IdempotencyTakeOver
	}
	return IdempotencyReserved, IdempotencyTakeOver
}
