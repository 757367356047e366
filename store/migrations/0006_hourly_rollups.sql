-- 0006_hourly_rollups: what the console's charts show, per UTC hour, kept
-- 30 days (store.RollupRetention; RecordSample prunes older hours).
--
-- hour columns are the unix milliseconds of the start of a UTC hour:
-- ms - ms % 3600000 (unix time has no leap seconds, so UTC hours are
-- exact multiples of 3 600 000 ms).

-- modem_hourly holds, per modem and hour, the SMS parts it sent, and of its
-- parts those that were delivered and that failed, counted by the triggers
-- below in the transaction that records each change, as status_counts is;
-- and the signal samples of the hour (their sum and number: the console
-- shows the hour's average). modem_id is not a foreign key: history
-- outlives a modem's removal from the configuration.
CREATE TABLE modem_hourly (
    hour           INTEGER NOT NULL CHECK (hour % 3600000 = 0),
    modem_id       TEXT    NOT NULL CHECK (modem_id <> ''),
    sent           INTEGER NOT NULL DEFAULT 0 CHECK (sent >= 0),
    delivered      INTEGER NOT NULL DEFAULT 0 CHECK (delivered >= 0),
    failed         INTEGER NOT NULL DEFAULT 0 CHECK (failed >= 0),
    signal_sum     INTEGER NOT NULL DEFAULT 0,                               -- dBm, summed over the samples
    signal_samples INTEGER NOT NULL DEFAULT 0 CHECK (signal_samples >= 0),
    PRIMARY KEY (hour, modem_id)
) STRICT, WITHOUT ROWID;

-- queue_hourly holds the queue as sampled during an hour: the most messages
-- waiting to be sent (accepted, queued or sending) and the greatest age of
-- the oldest queued message seen in any sample. Peaks, not averages: a
-- backlog that came and went within the hour is what an admin looks for.
CREATE TABLE queue_hourly (
    hour           INTEGER PRIMARY KEY CHECK (hour % 3600000 = 0),
    samples        INTEGER NOT NULL DEFAULT 0 CHECK (samples >= 0),
    depth_max      INTEGER NOT NULL DEFAULT 0 CHECK (depth_max >= 0),
    oldest_age_max INTEGER NOT NULL DEFAULT 0 CHECK (oldest_age_max >= 0)   -- ms
) STRICT;

-- sim_balances keeps the balance readings of each SIM: the text the network
-- answered (raw), the amount read from it (NULL when it could not be
-- parsed; ok says whether it could) and its currency ('' when unknown).
CREATE TABLE sim_balances (
    modem_id TEXT    NOT NULL CHECK (modem_id <> ''),
    at       INTEGER NOT NULL,
    amount   REAL,
    currency TEXT    NOT NULL DEFAULT '',
    raw      TEXT    NOT NULL DEFAULT '',
    ok       INTEGER NOT NULL CHECK (ok IN (0, 1)),
    CHECK (ok = (amount IS NOT NULL))
) STRICT;

CREATE INDEX sim_balances_at ON sim_balances (at);

-- The counting rules, all here:
--
--   sent       a part that becomes sent: a modem took it and answered with a
--              message reference (+CMGS), including a late answer to a
--              submit that timed out. Counted for that modem in the hour of
--              its submit (submitted_at). A part submitted again (resend of
--              unknown messages) counts again: it went out again. Parts that
--              may have gone out (unknown) are not counted, unlike the daily
--              usage for caps, which must count them.
--   delivered, a sent part whose status report is final: counted for the
--   failed     modem that sent it, in the hour the report was received
--              (received_at, the host's clock; the discharge time is the
--              network's clock), or of its done_at when no report row
--              names it.
--   failed     also a part that failed without going out (submitted_at NULL):
--              a modem refused the submit, or the retries ran out. The
--              part does not name the modem that refused it; the message
--              does, in the update that makes it failed, so these parts are
--              counted when their message becomes failed, for the modem the
--              message last tried, in that hour. Parts failed before any
--              modem was tried count for no modem.
--
-- The triggers never fail the change they count: they skip a part or
-- message without a modem ('' or NULL; NULL <> '' is not true) rather than
-- break a CHECK. A later migration that rebuilds messages or message_parts
-- must create them again.

CREATE TRIGGER modem_hourly_sent
AFTER UPDATE OF status ON message_parts
WHEN NEW.status = 'sent' AND OLD.status <> 'sent' AND NEW.modem_id <> '' AND NEW.submitted_at IS NOT NULL
BEGIN
    INSERT INTO modem_hourly (hour, modem_id, sent)
    VALUES (NEW.submitted_at - NEW.submitted_at % 3600000, NEW.modem_id, 1)
    ON CONFLICT (hour, modem_id) DO UPDATE SET sent = sent + 1;
END;

CREATE TRIGGER modem_hourly_reported
AFTER UPDATE OF status ON message_parts
WHEN OLD.status = 'sent' AND NEW.status IN ('delivered', 'failed') AND NEW.modem_id <> ''
BEGIN
    INSERT INTO modem_hourly (hour, modem_id, delivered, failed)
    SELECT t - t % 3600000, NEW.modem_id, NEW.status = 'delivered', NEW.status = 'failed'
    FROM (SELECT coalesce(
              (SELECT max(received_at) FROM status_reports WHERE message_id = NEW.message_id AND part_seq = NEW.seq),
              NEW.done_at, NEW.submitted_at) AS t)
    WHERE t IS NOT NULL
    ON CONFLICT (hour, modem_id) DO UPDATE SET
        delivered = delivered + excluded.delivered, failed = failed + excluded.failed;
END;

CREATE TRIGGER modem_hourly_refused
AFTER UPDATE OF status ON messages
WHEN NEW.status = 'failed' AND OLD.status <> 'failed' AND NEW.modem_id <> ''
BEGIN
    INSERT INTO modem_hourly (hour, modem_id, failed)
    SELECT NEW.updated_at - NEW.updated_at % 3600000, NEW.modem_id, count(*)
    FROM message_parts
    WHERE message_id = NEW.id AND status = 'failed' AND submitted_at IS NULL
    HAVING count(*) > 0
    ON CONFLICT (hour, modem_id) DO UPDATE SET failed = failed + excluded.failed;
END;
