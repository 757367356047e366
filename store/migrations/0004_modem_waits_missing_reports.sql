-- 0004_modem_waits_missing_reports: messages that wait for a modem, sent
-- messages whose status reports never came, and late submit answers.
--
-- waiting_for_modem says why a queued message waits: no modem could even be
-- asked to send it (all down, disabled, or at their caps). Such a send is no
-- attempt; the message is retried until it expires, and its expiry names the
-- wait. NULL once a modem took it, or when it never waited.
ALTER TABLE messages ADD COLUMN waiting_for_modem TEXT;

-- reports_missing_at is when the sweep stopped waiting for the status reports
-- of a sent message: none came within the report window, and none can match
-- any more. The message stays sent (it did go out); the column keeps the
-- sweep from closing it twice. NULL while its reports may still come.
ALTER TABLE messages ADD COLUMN reports_missing_at INTEGER;

-- The sweep looks for sent messages not changed since the window began.
CREATE INDEX messages_awaiting_report ON messages (updated_at)
    WHERE status = 'sent' AND reports_missing_at IS NULL;

-- Queue depth leaves out sent messages whose reports are missing: nothing
-- is expected of them any more, and they would pile up forever. The column,
-- NULL in every entry, is in the index so that the depth query, which names
-- it, is answered from the index alone.
DROP INDEX messages_active;
CREATE INDEX messages_active ON messages (status, priority, created_at, reports_missing_at)
    WHERE status IN ('accepted', 'queued', 'sending', 'sent') AND reports_missing_at IS NULL;

-- late_submits keeps every late "+CMGS: <mr>" answer: the modem's answer to
-- a submit that timed out, which shows that the part went out after all.
-- message_id is the message whose part (part_seq) it answered; NULL while it
-- matches none. An answer can come before the dispatcher recorded that its
-- submit timed out: it is kept, and matched when that is recorded, as early
-- status reports are.
CREATE TABLE late_submits (
    id         INTEGER PRIMARY KEY,
    modem_id   TEXT    NOT NULL,
    to_number  TEXT    NOT NULL,
    part_seq   INTEGER NOT NULL CHECK (part_seq >= 1),
    mr         INTEGER NOT NULL CHECK (mr BETWEEN 0 AND 255),
    at         INTEGER NOT NULL,
    message_id TEXT    REFERENCES messages (id) ON DELETE SET NULL
) STRICT;

CREATE INDEX late_submits_unmatched ON late_submits (modem_id, part_seq, at)
    WHERE message_id IS NULL;
-- Counts over a recent window, for metrics.
CREATE INDEX late_submits_at ON late_submits (at);
