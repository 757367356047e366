-- 0005_scheduled_sends: messages sent not before a time (send_at), which
-- wait in the status 'scheduled' until then.
--
-- The status CHECKs of messages and message_events admit 'scheduled'.
-- SQLite cannot change a CHECK in place, and messages cannot be rebuilt
-- here: a migration runs in a transaction, where foreign_keys cannot be
-- turned off, so dropping the old table would cascade to the parts and
-- events that refer to it and clear the references of verifications,
-- status reports and late submits. A CHECK that admits one more value holds
-- for every row already stored, so the two table definitions are edited in
-- sqlite_schema instead, the way SQLite documents for changes that leave
-- the stored rows valid (https://sqlite.org/lang_altertable.html#otheralter).
-- writable_schema=RESET makes this connection read the edited definitions;
-- the ALTER TABLE below changes the schema cookie, which makes every other
-- connection read them too. message_parts is left alone: a scheduled
-- message's parts are queued.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, '''canceled'', ''unknown''))', '''canceled'', ''unknown'', ''scheduled''))')
WHERE type = 'table' AND name IN ('messages', 'message_events');
PRAGMA writable_schema = RESET;

-- Fail here, rather than at the first scheduled message, if a definition
-- did not read as 0001 wrote it (a schema edited by hand).
CREATE TEMP TABLE migration_0005 (status_checks_edited INTEGER CHECK (status_checks_edited = 2)) STRICT;
INSERT INTO migration_0005
SELECT count(*) FROM sqlite_schema
WHERE type = 'table' AND name IN ('messages', 'message_events')
    AND sql LIKE '%''canceled'', ''unknown'', ''scheduled''))%';
DROP TABLE migration_0005;

-- send_at is the time the client asked the message to go out, not before;
-- NULL: at once. A message whose send_at was still ahead when it was
-- accepted is scheduled until then, with next_attempt_at = send_at. The
-- dispatcher arms a timer for the earliest scheduled message and queues it
-- when the timer fires.
ALTER TABLE messages ADD COLUMN send_at INTEGER;

CREATE INDEX messages_scheduled ON messages (send_at) WHERE status = 'scheduled';

-- A scheduled message may expire, and the queue depth counts scheduled
-- messages: the partial indexes that serve those queries take them in. The
-- lists match the queries' exactly, which is what lets SQLite use them.
DROP INDEX messages_expiry;
CREATE INDEX messages_expiry ON messages (expires_at)
    WHERE expires_at IS NOT NULL AND status IN ('scheduled', 'accepted', 'queued');
DROP INDEX messages_active;
CREATE INDEX messages_active ON messages (status, priority, created_at, reports_missing_at)
    WHERE status IN ('scheduled', 'accepted', 'queued', 'sending', 'sent') AND reports_missing_at IS NULL;
