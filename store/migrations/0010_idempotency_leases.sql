-- An Idempotency-Key's reservation is a lease from created_at: a request
-- that died (SIGKILL, power loss) between reserving a key and storing its
-- response leaves the key in progress, and once the lease has run out a
-- retry takes the reservation over. message_id is the message the request
-- created, written in the transaction that creates it, so that the retry
-- answers with that message instead of creating a second one.
ALTER TABLE idempotency_keys ADD COLUMN message_id TEXT REFERENCES messages (id) ON DELETE SET NULL;
