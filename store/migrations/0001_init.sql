-- 0001_init: the initial schema.
--
-- Conventions for every table below:
--   * Ids of domain objects are TEXT: opaque, prefixed ids made by simgate
--     ("msg_...", "key_..."). Append-only logs use an INTEGER PRIMARY KEY
--     (the rowid) instead, so that clients can page with "after id".
--   * Times are INTEGER unix milliseconds, UTC. NULL means "not set" (the zero
--     time.Time in Go), except where a column says otherwise.
--   * Tables are STRICT: a value of the wrong type is an error instead of being
--     silently stored as whatever it happened to be.
--   * Status columns carry a CHECK with the values the Go code defines, so a
--     typo in a later query fails loudly instead of creating a new state.
--   * modem_id columns in history tables (messages, parts, reports, inbound)
--     are not foreign keys: they name the configured modem at the time, and
--     history must survive a modem being renamed or removed from the config.

-- api_keys holds client credentials. Only the SHA-256 of a key is stored; the
-- key itself is shown once, when it is created.
CREATE TABLE api_keys (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL DEFAULT '',
    prefix       TEXT    NOT NULL,
    hash         BLOB    NOT NULL UNIQUE CHECK (length(hash) = 32),
    scopes       TEXT    NOT NULL CHECK (scopes <> ''), -- comma-separated, e.g. "verify,send"
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER
) STRICT;

-- messages is one outbound SMS as the client asked for it.
CREATE TABLE messages (
    id               TEXT    PRIMARY KEY,
    to_number        TEXT    NOT NULL CHECK (to_number <> ''),
    text             TEXT    NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 20,
    status           TEXT    NOT NULL CHECK (status IN ('accepted', 'queued', 'sending', 'sent', 'delivered',
                                                        'failed', 'expired', 'canceled', 'unknown')),
    reason           TEXT    NOT NULL DEFAULT '',
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  INTEGER NOT NULL DEFAULT 0, -- 0: as soon as a modem is free
    expires_at       INTEGER,                    -- NULL: never
    modem_id         TEXT,
    verification_id  TEXT    REFERENCES verifications (id) ON DELETE SET NULL,
    api_key_id       TEXT    REFERENCES api_keys (id),
    idempotency_key  TEXT,
    request_hash     BLOB,                       -- SHA-256 of the request, to tell a retry from a reuse
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    -- A dispatcher claims a message by leasing it; an expired lease means the
    -- claimer died and the message may be reclaimed.
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL))
) STRICT;

-- The queue: the dispatcher takes the highest priority first, then the
-- earliest due. Partial, so it only holds what is waiting.
CREATE INDEX messages_queue ON messages (priority DESC, next_attempt_at, created_at)
    WHERE status = 'queued';
-- Leases to reclaim after a crash.
CREATE INDEX messages_lease ON messages (lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;
-- Messages still waiting that may run out of time.
CREATE INDEX messages_expiry ON messages (expires_at)
    WHERE expires_at IS NOT NULL AND status IN ('accepted', 'queued');
CREATE UNIQUE INDEX messages_idempotency ON messages (api_key_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_created ON messages (created_at, id);
CREATE INDEX messages_verification ON messages (verification_id)
    WHERE verification_id IS NOT NULL;
-- A verification's SMS text holds its code, sealed by the queue (never in
-- plain text). Once the message has left the queue nobody needs it: erase it,
-- whichever path the status took.
CREATE TRIGGER messages_forget_verification_text
AFTER UPDATE OF status ON messages
WHEN NEW.verification_id IS NOT NULL AND NEW.text <> ''
    AND NEW.status NOT IN ('accepted', 'queued', 'sending')
BEGIN
    UPDATE messages SET text = '' WHERE id = NEW.id;
END;
-- Queue depth by status and priority for metrics; partial, so it only holds
-- messages still in the dispatcher's or the network's hands.
CREATE INDEX messages_active ON messages (status, priority, created_at)
    WHERE status IN ('accepted', 'queued', 'sending', 'sent');
-- Filtered lists page newest first.
CREATE INDEX messages_to ON messages (to_number, created_at, id);

-- message_parts is one SMS-SUBMIT of a message, with its own TP-MR and status
-- report.
CREATE TABLE message_parts (
    message_id    TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL CHECK (seq >= 1),
    status        TEXT    NOT NULL CHECK (status IN ('accepted', 'queued', 'sending', 'sent', 'delivered',
                                                     'failed', 'expired', 'canceled', 'unknown')),
    modem_id      TEXT,
    mr            INTEGER NOT NULL DEFAULT -1 CHECK (mr BETWEEN -1 AND 255),            -- -1: not submitted
    submitted_at  INTEGER,
    report_status INTEGER NOT NULL DEFAULT -1 CHECK (report_status BETWEEN -1 AND 255), -- TP-ST; -1: no report
    done_at       INTEGER,
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    PRIMARY KEY (message_id, seq)
) STRICT;

-- A status report names only the modem's TP-MR (one byte, so it wraps) and
-- the recipient; the newest submit with that MR on that modem is the match.
CREATE INDEX message_parts_report ON message_parts (modem_id, mr, submitted_at);

-- message_events records each status transition of a message and why.
CREATE TABLE message_events (
    id         INTEGER PRIMARY KEY,
    message_id TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('accepted', 'queued', 'sending', 'sent', 'delivered',
                                                  'failed', 'expired', 'canceled', 'unknown')),
    reason     TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX message_events_message ON message_events (message_id, id);

-- status_reports keeps every SMS-STATUS-REPORT received, matched to a part or
-- not (message_id and part_seq both NULL).
CREATE TABLE status_reports (
    id             INTEGER PRIMARY KEY,
    modem_id       TEXT    NOT NULL,
    mr             INTEGER NOT NULL CHECK (mr BETWEEN 0 AND 255),
    recipient      TEXT    NOT NULL,
    scts           INTEGER,
    discharge_time INTEGER,
    tp_st          INTEGER NOT NULL CHECK (tp_st BETWEEN 0 AND 255),
    received_at    INTEGER NOT NULL,
    message_id     TEXT,
    part_seq       INTEGER,
    CHECK ((message_id IS NULL) = (part_seq IS NULL)),
    FOREIGN KEY (message_id, part_seq) REFERENCES message_parts (message_id, seq) ON DELETE SET NULL
) STRICT;

CREATE INDEX status_reports_part ON status_reports (message_id, part_seq)
    WHERE message_id IS NOT NULL;
CREATE INDEX status_reports_unmatched ON status_reports (modem_id, mr, received_at)
    WHERE message_id IS NULL;
-- Match ratio and report latency over a recent window.
CREATE INDEX status_reports_received ON status_reports (received_at);

-- verifications holds one-time-code verifications. The code itself is never
-- stored: code_hash is a keyed HMAC-SHA256 of the verification id and the code
-- under a server secret, and is erased (NULL) once the verification leaves
-- pending, which the CHECK enforces.
CREATE TABLE verifications (
    id           TEXT    PRIMARY KEY,
    to_number    TEXT    NOT NULL CHECK (to_number <> ''),
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'canceled', 'expired',
                                                    'max_attempts_reached', 'failed')),
    code_hash    BLOB    CHECK (code_hash IS NULL OR length(code_hash) = 32),
    code_length  INTEGER NOT NULL CHECK (code_length BETWEEN 4 AND 10),
    locale       TEXT    NOT NULL DEFAULT '',
    app_name     TEXT    NOT NULL DEFAULT '',
    reference    TEXT    NOT NULL DEFAULT '' CHECK (length(reference) <= 128),
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    send_count   INTEGER NOT NULL DEFAULT 0 CHECK (send_count >= 0),
    message_id   TEXT    REFERENCES messages (id) ON DELETE SET NULL,
    api_key_id   TEXT    REFERENCES api_keys (id),
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    approved_at  INTEGER,
    CHECK (status = 'pending' OR code_hash IS NULL)
) STRICT;

-- At most one pending verification per number is looked up on create.
CREATE INDEX verifications_pending ON verifications (to_number, created_at)
    WHERE status = 'pending';
CREATE INDEX verifications_expiry ON verifications (expires_at)
    WHERE status = 'pending';
CREATE INDEX verifications_message ON verifications (message_id)
    WHERE message_id IS NOT NULL;
-- The console lists the newest verifications.
CREATE INDEX verifications_created ON verifications (created_at);

-- verification_sends has one row per code SMS, for the per-number send limit
-- over a sliding window.
CREATE TABLE verification_sends (
    number TEXT    NOT NULL,
    at     INTEGER NOT NULL
) STRICT;

CREATE INDEX verification_sends_number ON verification_sends (number, at);

-- check_failures has one row per wrong code, for the per-number failure
-- counter that outlives a single verification.
CREATE TABLE check_failures (
    number TEXT    NOT NULL,
    at     INTEGER NOT NULL
) STRICT;

CREATE INDEX check_failures_number ON check_failures (number, at);

-- inbound_messages holds received SMS, reassembled. AUTOINCREMENT so that an
-- id is never reused after old rows are purged: clients page with "after id".
CREATE TABLE inbound_messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    modem_id    TEXT    NOT NULL CHECK (modem_id <> ''),
    from_number TEXT    NOT NULL CHECK (from_number <> ''),
    text        TEXT    NOT NULL,
    scts        INTEGER,
    received_at INTEGER NOT NULL
) STRICT;

CREATE INDEX inbound_messages_received ON inbound_messages (received_at);

-- modems remembers each configured modem and the hardware last seen behind
-- it. The IMEI is what makes a modem the same modem after a USB reset.
CREATE TABLE modems (
    id           TEXT    PRIMARY KEY, -- configured name, e.g. "modem0"
    imei         TEXT    UNIQUE,      -- NULL until first identified
    iccid        TEXT    NOT NULL DEFAULT '',
    imsi         TEXT    NOT NULL DEFAULT '',
    manufacturer TEXT    NOT NULL DEFAULT '',
    model        TEXT    NOT NULL DEFAULT '',
    revision     TEXT    NOT NULL DEFAULT '',
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    sent         INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    reports      INTEGER NOT NULL DEFAULT 0,
    inbound      INTEGER NOT NULL DEFAULT 0
) STRICT;

-- modem_daily_usage counts SMS sent per modem per UTC day, for daily caps.
CREATE TABLE modem_daily_usage (
    modem_id TEXT    NOT NULL REFERENCES modems (id) ON DELETE CASCADE,
    day      TEXT    NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'), -- YYYY-MM-DD, UTC
    sent     INTEGER NOT NULL DEFAULT 0 CHECK (sent >= 0),
    PRIMARY KEY (modem_id, day)
) STRICT;

-- idempotency_keys remembers the response to a request made with an
-- Idempotency-Key, so that a retry gets the same answer.
CREATE TABLE idempotency_keys (
    api_key_id   TEXT    NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    key          TEXT    NOT NULL,
    request_hash BLOB    NOT NULL, -- SHA-256 of the request, to refuse a reuse with another body
    response     BLOB,
    status_code  INTEGER,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, key)
) STRICT;

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- opt_outs lists numbers that replied STOP (or another opt-out keyword). A
-- START or UNSTOP deletes the row. Numbers are E.164 with the '+'.
CREATE TABLE opt_outs (
    number  TEXT    PRIMARY KEY CHECK (number <> ''),
    keyword TEXT    NOT NULL,
    at      INTEGER NOT NULL
) STRICT;

-- alerts records security events, e.g. a number hit its failure limit. An
-- alert never contains a code or a key.
CREATE TABLE alerts (
    id      INTEGER PRIMARY KEY,
    kind    TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    detail  TEXT    NOT NULL DEFAULT '',
    at      INTEGER NOT NULL
) STRICT;

CREATE INDEX alerts_at ON alerts (at);
-- "Has this number had this alert lately?", for alerts raised at most once a
-- period (owner notices, velocity trips).
CREATE INDEX alerts_subject ON alerts (kind, subject, at);

-- webhook_events is the outbox: an event is written in the same transaction
-- as the change it reports (by the triggers below, or by the store for modem
-- state changes), and delivered afterwards. The data never holds a code or an
-- SMS text of a verification. Events are fanned out to the endpoints
-- subscribed to their type (dispatched = 1) and purged some days later.
CREATE TABLE webhook_events (
    id         TEXT    PRIMARY KEY,
    type       TEXT    NOT NULL,
    payload    TEXT    NOT NULL CHECK (json_valid(payload)),
    created_at INTEGER NOT NULL,
    dispatched INTEGER NOT NULL DEFAULT 0 CHECK (dispatched IN (0, 1))
) STRICT;

CREATE INDEX webhook_events_created ON webhook_events (created_at, id);
-- Events not yet fanned out, oldest (lowest rowid) first.
CREATE INDEX webhook_events_new ON webhook_events (dispatched) WHERE dispatched = 0;

-- webhook_deliveries tracks one event to one endpoint (the endpoint's
-- configured name). A pending delivery is due at next_attempt_at; a delivery
-- being attempted has next_attempt_at pushed out by a lease, so a crash during
-- the POST retries it later (at least once; receivers dedupe by event id).
CREATE TABLE webhook_deliveries (
    event_id        TEXT    NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint        TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    delivered_at    INTEGER,
    created_at      INTEGER NOT NULL DEFAULT 0, -- the event's created_at, for lists and the retry period
    PRIMARY KEY (event_id, endpoint)
) STRICT;

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
-- Lists page newest first.
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at, event_id, endpoint);

-- webhook_modem_states remembers the last modem.up or modem.down reported per
-- modem, so that a restart neither repeats nor loses one.
CREATE TABLE webhook_modem_states (
    modem_id TEXT    PRIMARY KEY,
    state    TEXT    NOT NULL CHECK (state IN ('up', 'down')),
    at       INTEGER NOT NULL
) STRICT;

-- The outbox triggers: each status change that webhooks report inserts its
-- event in the same transaction. Times in the data are RFC 3339, UTC.
CREATE TRIGGER webhook_message_status
AFTER UPDATE OF status ON messages
WHEN NEW.status IN ('sent', 'delivered', 'failed') AND OLD.status <> NEW.status
BEGIN
    INSERT INTO webhook_events (id, type, payload, created_at) VALUES (
        'evt_' || lower(hex(randomblob(16))), 'message.' || NEW.status,
        json_object(
            'message_id', NEW.id, 'to', NEW.to_number, 'status', NEW.status, 'reason', NEW.reason,
            'priority', NEW.priority, 'attempts', NEW.attempts, 'modem_id', NEW.modem_id,
            'verification_id', NEW.verification_id,
            'created_at', strftime('%Y-%m-%dT%H:%M:%fZ', NEW.created_at / 1000.0, 'unixepoch'),
            'updated_at', strftime('%Y-%m-%dT%H:%M:%fZ', NEW.updated_at / 1000.0, 'unixepoch')),
        NEW.updated_at);
END;

CREATE TRIGGER webhook_verification_status
AFTER UPDATE OF status ON verifications
WHEN NEW.status IN ('approved', 'expired', 'max_attempts_reached', 'failed') AND OLD.status <> NEW.status
BEGIN
    INSERT INTO webhook_events (id, type, payload, created_at) VALUES (
        'evt_' || lower(hex(randomblob(16))), 'verification.' || NEW.status,
        json_object(
            'verification_id', NEW.id, 'to', NEW.to_number, 'status', NEW.status,
            'reference', NEW.reference, 'attempts', NEW.attempts, 'send_count', NEW.send_count,
            'message_id', NEW.message_id,
            'created_at', strftime('%Y-%m-%dT%H:%M:%fZ', NEW.created_at / 1000.0, 'unixepoch'),
            'updated_at', strftime('%Y-%m-%dT%H:%M:%fZ', NEW.updated_at / 1000.0, 'unixepoch')),
        NEW.updated_at);
END;

CREATE TRIGGER webhook_alert
AFTER INSERT ON alerts
BEGIN
    INSERT INTO webhook_events (id, type, payload, created_at) VALUES (
        'evt_' || lower(hex(randomblob(16))), 'security.alert',
        json_object('alert_id', NEW.id, 'kind', NEW.kind, 'subject', NEW.subject, 'detail', NEW.detail,
            'at', strftime('%Y-%m-%dT%H:%M:%fZ', NEW.at / 1000.0, 'unixepoch')),
        NEW.at);
END;

CREATE TRIGGER webhook_inbound
AFTER INSERT ON inbound_messages
BEGIN
    INSERT INTO webhook_events (id, type, payload, created_at) VALUES (
        'evt_' || lower(hex(randomblob(16))), 'sms.received',
        json_object('inbound_id', NEW.id, 'modem_id', NEW.modem_id, 'from', NEW.from_number, 'text', NEW.text,
            'scts', CASE WHEN NEW.scts IS NULL THEN NULL
                         ELSE strftime('%Y-%m-%dT%H:%M:%fZ', NEW.scts / 1000.0, 'unixepoch') END,
            'received_at', strftime('%Y-%m-%dT%H:%M:%fZ', NEW.received_at / 1000.0, 'unixepoch')),
        NEW.received_at);
END;

-- status_counts counts messages and verifications by status, kept by
-- triggers in the transaction of each change, so that metrics read a handful
-- of rows at scrape time instead of scanning both tables.
CREATE TABLE status_counts (
    entity TEXT    NOT NULL CHECK (entity IN ('message', 'verification')),
    status TEXT    NOT NULL,
    n      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (entity, status)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER status_counts_message_insert AFTER INSERT ON messages
BEGIN
    INSERT INTO status_counts (entity, status, n) VALUES ('message', NEW.status, 1)
    ON CONFLICT (entity, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER status_counts_message_update AFTER UPDATE OF status ON messages
WHEN OLD.status <> NEW.status
BEGIN
    UPDATE status_counts SET n = n - 1 WHERE entity = 'message' AND status = OLD.status;
    INSERT INTO status_counts (entity, status, n) VALUES ('message', NEW.status, 1)
    ON CONFLICT (entity, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER status_counts_message_delete AFTER DELETE ON messages
BEGIN
    UPDATE status_counts SET n = n - 1 WHERE entity = 'message' AND status = OLD.status;
END;
CREATE TRIGGER status_counts_verification_insert AFTER INSERT ON verifications
BEGIN
    INSERT INTO status_counts (entity, status, n) VALUES ('verification', NEW.status, 1)
    ON CONFLICT (entity, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER status_counts_verification_update AFTER UPDATE OF status ON verifications
WHEN OLD.status <> NEW.status
BEGIN
    UPDATE status_counts SET n = n - 1 WHERE entity = 'verification' AND status = OLD.status;
    INSERT INTO status_counts (entity, status, n) VALUES ('verification', NEW.status, 1)
    ON CONFLICT (entity, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER status_counts_verification_delete AFTER DELETE ON verifications
BEGIN
    UPDATE status_counts SET n = n - 1 WHERE entity = 'verification' AND status = OLD.status;
END;

-- console_sessions are admin console logins. Only the SHA-256 of the random
-- session token is stored; the token itself lives in the browser's cookie.
-- csrf is the session's synchronizer token, required on every POST. Revoking
-- the API key that logged in ends its sessions.
CREATE TABLE console_sessions (
    token_hash   BLOB    PRIMARY KEY CHECK (length(token_hash) = 32),
    api_key_id   TEXT    NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    csrf         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- heartbeat has a single row that Ping rewrites, to prove the database takes
-- writes.
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
) STRICT;
