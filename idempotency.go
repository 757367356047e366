package simgate

import "context"

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
