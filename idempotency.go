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
