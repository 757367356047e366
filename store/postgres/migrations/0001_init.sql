-- 0001_init: the PostgreSQL (14 or newer) form of the SQLite store's
-- migrations 0001 to 0010 (store/migrations/0001_init.sql ...
-- 0010_idempotency_leases.sql): the schema those produce, in one file.
-- The comments of the SQLite migrations say why each table, column, index
-- and trigger is there; this file says only where PostgreSQL differs.
--
-- Names: every table, column, index and trigger has its SQLite name, so that
-- the stores share their queries' names.
--
-- Types:
--   * SQLite INTEGER (64 bits) is BIGINT; times stay unix milliseconds, UTC.
--     The three 0/1 flags (webhook_events.dispatched, sim_balances.ok,
--     inbound_calls.rejected) stay INTEGER with CHECK (x IN (0, 1)): the Go
--     code writes and compares them as the numbers 0 and 1.
--   * TEXT is TEXT (PostgreSQL refuses NUL characters and invalid UTF-8 in
--     text, which SQLite stores); BLOB is BYTEA; REAL is DOUBLE PRECISION.
--   * JSON columns stay TEXT, checked by simgate_json_valid (SQLite's
--     json_valid): the stored text is kept byte for byte, and read as text.
--
-- Keys:
--   * Append-only logs whose SQLite id is an INTEGER PRIMARY KEY (the rowid)
--     have id BIGINT GENERATED ALWAYS AS IDENTITY: never reused, like
--     AUTOINCREMENT. An insert takes the new id with RETURNING id instead
--     of LastInsertId.
--   * Tables whose implicit SQLite rowid the Go code orders by (messages,
--     webhook_events, sim_balances) have a column named rowid, an identity
--     too, so those queries run unchanged.
--
-- Triggers: each SQLite trigger is a FOR EACH ROW trigger of the same name,
-- on the same event (UPDATE OF a column fires when the statement SETs it,
-- as in SQLite) and with the same WHEN, running a PL/pgSQL function of the
-- same name; the six status_counts_* triggers share status_counts_count.
-- PostgreSQL allows no subquery in WHEN: the "is this event type
-- subscribed" test moved into the webhook functions.
-- PostgreSQL runs AFTER ROW triggers at the end of their statement, SQLite
-- after each row; no trigger here reads the rows its statement changes, so
-- both write the same rows.
--
-- The webhook payloads are the text SQLite's json_object writes: keys in the
-- same order, no whitespace, strings escaped alike, numbers as numbers,
-- NULL as null, times as RFC 3339 with milliseconds ("...T...Z").

-- Helpers of the CHECKs and triggers.

-- simgate_json_valid is SQLite's json_valid(doc): whether doc is JSON (RFC
-- 8259). PostgreSQL 16 has "doc IS JSON"; 14 and 15 only have the cast.
CREATE FUNCTION simgate_json_valid(doc text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    PERFORM doc::json;
    RETURN true;
EXCEPTION WHEN data_exception THEN
    RETURN false;
END;
$$;

-- simgate_json_minify is SQLite's json(doc) for valid JSON: doc without the
-- whitespace between its tokens, everything else (key order, escapes, number
-- spellings) as it is. The regular expression skips string literals whole
-- and drops runs of JSON whitespace outside them:
--     ("(?:[^"\\]|\\.)*")|[ \t\n\r]+   ->   \1
CREATE FUNCTION simgate_json_minify(doc text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT regexp_replace(doc, E'("(?:[^"\\\\]|\\\\.)*")|[ \t\n\r]+', E'\\1', 'g')
$$;

-- simgate_rfc3339_ms is SQLite's
--     strftime('%Y-%m-%dT%H:%M:%fZ', ms / 1000.0, 'unixepoch')
-- e.g. 1700000000123 -> '2023-11-14T22:13:20.123Z', whatever the session's
-- TimeZone (timestamp without time zone, from the epoch).
CREATE FUNCTION simgate_rfc3339_ms(ms bigint) RETURNS text
LANGUAGE sql STABLE STRICT AS $$
    SELECT to_char(timestamp '1970-01-01 00:00:00' + ms * interval '1 millisecond',
                   'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- simgate_event_id is the id SQLite writes for an event,
--     'evt_' || lower(hex(randomblob(16)))
-- 'evt_' and 32 lowercase hex digits, here those of a random UUID
-- (gen_random_uuid, built in since PostgreSQL 13: 122 random bits).
CREATE FUNCTION simgate_event_id() RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT 'evt_' || replace(gen_random_uuid()::text, '-', '')
$$;

-- api_keys holds client credentials (the SHA-256 of each key).
CREATE TABLE api_keys (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL DEFAULT '',
    prefix       TEXT    NOT NULL,
    hash         BYTEA   NOT NULL UNIQUE CHECK (octet_length(hash) = 32),
    scopes       TEXT    NOT NULL CHECK (scopes <> ''), -- comma-separated, e.g. "verify,send"
    created_at   BIGINT  NOT NULL,
    revoked_at   BIGINT,
    last_used_at BIGINT
);

-- messages is one outbound SMS as the client asked for it. The foreign key
-- verification_id -> verifications (id) is added after verifications (the
-- two tables refer to each other).
CREATE TABLE messages (
    id                 TEXT    PRIMARY KEY,
    to_number          TEXT    NOT NULL CHECK (to_number <> ''),
    text               TEXT    NOT NULL,
    priority           BIGINT  NOT NULL DEFAULT 20,
    status             TEXT    NOT NULL CHECK (status IN ('accepted', 'queued', 'sending', 'sent', 'delivered',
                                                          'failed', 'expired', 'canceled', 'unknown', 'scheduled')),
    reason             TEXT    NOT NULL DEFAULT '',
    attempts           BIGINT  NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at    BIGINT  NOT NULL DEFAULT 0, -- 0: as soon as a modem is free
    expires_at         BIGINT,                     -- NULL: never
    modem_id           TEXT,
    verification_id    TEXT,                       -- REFERENCES verifications (id) ON DELETE SET NULL, below
    api_key_id         TEXT    REFERENCES api_keys (id),
    idempotency_key    TEXT,
    request_hash       BYTEA,                      -- SHA-256 of the request, to tell a retry from a reuse
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    lease_owner        TEXT,
    lease_expires_at   BIGINT,
    waiting_for_modem  TEXT,                       -- 0004
    reports_missing_at BIGINT,                     -- 0004
    send_at            BIGINT,                     -- 0005
    -- SQLite's implicit rowid: the order of insertion, the tie-break of
    -- "the newest message of a verification" (store/verification.go).
    rowid              BIGINT  GENERATED ALWAYS AS IDENTITY,
    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL))
);

CREATE INDEX messages_queue ON messages (priority DESC, next_attempt_at, created_at)
    WHERE status = 'queued';
CREATE INDEX messages_lease ON messages (lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;
CREATE INDEX messages_expiry ON messages (expires_at)
    WHERE expires_at IS NOT NULL AND status IN ('scheduled', 'accepted', 'queued');
CREATE UNIQUE INDEX messages_idempotency ON messages (api_key_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_created ON messages (created_at, id);
CREATE INDEX messages_verification ON messages (verification_id)
    WHERE verification_id IS NOT NULL;
CREATE INDEX messages_active ON messages (status, priority, created_at, reports_missing_at)
    WHERE status IN ('scheduled', 'accepted', 'queued', 'sending', 'sent') AND reports_missing_at IS NULL;
CREATE INDEX messages_to ON messages (to_number, created_at, id);
CREATE INDEX messages_awaiting_report ON messages (updated_at)
    WHERE status = 'sent' AND reports_missing_at IS NULL;
CREATE INDEX messages_scheduled ON messages (send_at) WHERE status = 'scheduled';

-- message_parts is one SMS-SUBMIT of a message. Its status admits no
-- 'scheduled' (0005 left it alone: a scheduled message's parts are queued).
CREATE TABLE message_parts (
    message_id    TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq           BIGINT  NOT NULL CHECK (seq >= 1),
    status        TEXT    NOT NULL CHECK (status IN ('accepted', 'queued', 'sending', 'sent', 'delivered',
                                                     'failed', 'expired', 'canceled', 'unknown')),
    modem_id      TEXT,
    mr            BIGINT  NOT NULL DEFAULT -1 CHECK (mr BETWEEN -1 AND 255),            -- -1: not submitted
    submitted_at  BIGINT,
    report_status BIGINT  NOT NULL DEFAULT -1 CHECK (report_status BETWEEN -1 AND 255), -- TP-ST; -1: no report
    done_at       BIGINT,
    attempts      BIGINT  NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    PRIMARY KEY (message_id, seq)
);

CREATE INDEX message_parts_report ON message_parts (modem_id, mr, submitted_at);

-- message_events records each status transition of a message and why.
CREATE TABLE message_events (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    at         BIGINT  NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('accepted', 'queued', 'sending', 'sent', 'delivered',
                                                  'failed', 'expired', 'canceled', 'unknown', 'scheduled')),
    reason     TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX message_events_message ON message_events (message_id, id);

-- status_reports keeps every SMS-STATUS-REPORT received, matched to a part
-- or not. ON DELETE SET NULL clears both columns of the key, as in SQLite.
CREATE TABLE status_reports (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    modem_id       TEXT    NOT NULL,
    mr             BIGINT  NOT NULL CHECK (mr BETWEEN 0 AND 255),
    recipient      TEXT    NOT NULL,
    scts           BIGINT,
    discharge_time BIGINT,
    tp_st          BIGINT  NOT NULL CHECK (tp_st BETWEEN 0 AND 255),
    received_at    BIGINT  NOT NULL,
    message_id     TEXT,
    part_seq       BIGINT,
    CHECK ((message_id IS NULL) = (part_seq IS NULL)),
    FOREIGN KEY (message_id, part_seq) REFERENCES message_parts (message_id, seq) ON DELETE SET NULL
);

CREATE INDEX status_reports_part ON status_reports (message_id, part_seq)
    WHERE message_id IS NOT NULL;
CREATE INDEX status_reports_unmatched ON status_reports (modem_id, mr, received_at)
    WHERE message_id IS NULL;
CREATE INDEX status_reports_received ON status_reports (received_at);

-- verifications holds one-time-code verifications; code_hash is erased
-- (NULL) once a verification leaves pending.
CREATE TABLE verifications (
    id           TEXT    PRIMARY KEY,
    to_number    TEXT    NOT NULL CHECK (to_number <> ''),
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'canceled', 'expired',
                                                    'max_attempts_reached', 'failed')),
    code_hash    BYTEA   CHECK (code_hash IS NULL OR octet_length(code_hash) = 32),
    code_length  BIGINT  NOT NULL CHECK (code_length BETWEEN 4 AND 10),
    locale       TEXT    NOT NULL DEFAULT '',
    app_name     TEXT    NOT NULL DEFAULT '',
    reference    TEXT    NOT NULL DEFAULT '' CHECK (length(reference) <= 128),
    attempts     BIGINT  NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts BIGINT  NOT NULL CHECK (max_attempts >= 1),
    send_count   BIGINT  NOT NULL DEFAULT 0 CHECK (send_count >= 0),
    message_id   TEXT    REFERENCES messages (id) ON DELETE SET NULL,
    api_key_id   TEXT    REFERENCES api_keys (id),
    expires_at   BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    approved_at  BIGINT,
    CHECK (status = 'pending' OR code_hash IS NULL)
);

ALTER TABLE messages ADD FOREIGN KEY (verification_id) REFERENCES verifications (id) ON DELETE SET NULL;

CREATE INDEX verifications_pending ON verifications (to_number, created_at)
    WHERE status = 'pending';
CREATE INDEX verifications_expiry ON verifications (expires_at)
    WHERE status = 'pending';
CREATE INDEX verifications_message ON verifications (message_id)
    WHERE message_id IS NOT NULL;
CREATE INDEX verifications_created ON verifications (created_at);

-- verification_sends has one row per code SMS, for the per-number send
-- limit over a sliding window.
CREATE TABLE verification_sends (
    number TEXT    NOT NULL,
    at     BIGINT  NOT NULL
);

CREATE INDEX verification_sends_number ON verification_sends (number, at);

-- check_failures has one row per wrong code.
CREATE TABLE check_failures (
    number TEXT    NOT NULL,
    at     BIGINT  NOT NULL
);

CREATE INDEX check_failures_number ON check_failures (number, at);

-- inbound_messages holds received SMS, reassembled, as 0003 rebuilt it.
-- Clients page with "after id": the identity never reuses an id.
CREATE TABLE inbound_messages (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    modem_id    TEXT    NOT NULL CHECK (modem_id <> ''),
    from_number TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    scts        BIGINT,
    received_at BIGINT  NOT NULL,
    kind        TEXT    NOT NULL DEFAULT 'text'
                CHECK (kind IN ('text', 'wap_push', 'mms_notification', 'data')),
    status      TEXT    NOT NULL DEFAULT 'complete'
                CHECK (status IN ('complete', 'incomplete', 'undecodable')),
    parts       BIGINT  NOT NULL DEFAULT 1 CHECK (parts >= 1),
    parts_total BIGINT  NOT NULL DEFAULT 1 CHECK (parts_total >= parts),
    port        BIGINT  CHECK (port BETWEEN 0 AND 65535),
    data        BYTEA,  -- the user data of a message that is not text
    mms         TEXT    CHECK (mms IS NULL OR simgate_json_valid(mms)), -- the decoded MMS notification
    raw         TEXT    CHECK (raw IS NULL OR simgate_json_valid(raw)), -- the PDU of an undecodable one
    CHECK (status <> 'undecodable' OR raw IS NOT NULL)
);

CREATE INDEX inbound_messages_received ON inbound_messages (received_at);

-- modems remembers each configured modem and the hardware last seen behind
-- it.
CREATE TABLE modems (
    id           TEXT    PRIMARY KEY, -- configured name, e.g. "modem0"
    imei         TEXT    UNIQUE,      -- NULL until first identified
    iccid        TEXT    NOT NULL DEFAULT '',
    imsi         TEXT    NOT NULL DEFAULT '',
    manufacturer TEXT    NOT NULL DEFAULT '',
    model        TEXT    NOT NULL DEFAULT '',
    revision     TEXT    NOT NULL DEFAULT '',
    first_seen   BIGINT  NOT NULL,
    last_seen    BIGINT  NOT NULL,
    sent         BIGINT  NOT NULL DEFAULT 0,
    failed       BIGINT  NOT NULL DEFAULT 0,
    reports      BIGINT  NOT NULL DEFAULT 0,
    inbound      BIGINT  NOT NULL DEFAULT 0
);

-- modem_daily_usage counts SMS sent per modem per UTC day, for daily caps.
-- The regular expression is SQLite's GLOB
-- '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' (a GLOB matches the whole
-- value).
CREATE TABLE modem_daily_usage (
    modem_id TEXT    NOT NULL REFERENCES modems (id) ON DELETE CASCADE,
    day      TEXT    NOT NULL CHECK (day ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'), -- YYYY-MM-DD, UTC
    sent     BIGINT  NOT NULL DEFAULT 0 CHECK (sent >= 0),
    PRIMARY KEY (modem_id, day)
);

-- idempotency_keys remembers the response to a request made with an
-- Idempotency-Key; message_id (0010) is the message its request created.
CREATE TABLE idempotency_keys (
    api_key_id   TEXT    NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    key          TEXT    NOT NULL,
    request_hash BYTEA   NOT NULL, -- SHA-256 of the request, to refuse a reuse with another body
    response     BYTEA,
    status_code  BIGINT,
    created_at   BIGINT  NOT NULL,
    message_id   TEXT    REFERENCES messages (id) ON DELETE SET NULL,
    PRIMARY KEY (api_key_id, key)
);

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- opt_outs lists numbers that replied STOP (or another opt-out keyword).
CREATE TABLE opt_outs (
    number  TEXT    PRIMARY KEY CHECK (number <> ''),
    keyword TEXT    NOT NULL,
    at      BIGINT  NOT NULL
);

-- alerts records security events. An alert never contains a code or a key.
CREATE TABLE alerts (
    id      BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind    TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    detail  TEXT    NOT NULL DEFAULT '',
    at      BIGINT  NOT NULL
);

CREATE INDEX alerts_at ON alerts (at);
CREATE INDEX alerts_subject ON alerts (kind, subject, at);

-- webhook_events is the outbox, written by the triggers below (and by the
-- store for modem state changes and low balances).
CREATE TABLE webhook_events (
    id         TEXT    PRIMARY KEY,
    type       TEXT    NOT NULL,
    payload    TEXT    NOT NULL CHECK (simgate_json_valid(payload)),
    created_at BIGINT  NOT NULL,
    dispatched INTEGER NOT NULL DEFAULT 0 CHECK (dispatched IN (0, 1)),
    -- SQLite's implicit rowid: the fan-out takes new events in this order
    -- (store/webhook.go).
    rowid      BIGINT  GENERATED ALWAYS AS IDENTITY
);

CREATE INDEX webhook_events_created ON webhook_events (created_at, id);
-- Events not yet fanned out, oldest (lowest rowid) first. SQLite's index on
-- (dispatched) holds the rowid implicitly, in order; here it is the key.
CREATE INDEX webhook_events_new ON webhook_events (rowid) WHERE dispatched = 0;

-- webhook_deliveries tracks one event to one endpoint.
CREATE TABLE webhook_deliveries (
    event_id        TEXT    NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint        TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT  NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    delivered_at    BIGINT,
    created_at      BIGINT  NOT NULL DEFAULT 0, -- the event's created_at, for lists and the retry period
    PRIMARY KEY (event_id, endpoint)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at, event_id, endpoint);

-- webhook_modem_states remembers the last modem.up or modem.down reported
-- per modem.
CREATE TABLE webhook_modem_states (
    modem_id TEXT    PRIMARY KEY,
    state    TEXT    NOT NULL CHECK (state IN ('up', 'down')),
    at       BIGINT  NOT NULL
);

-- webhook_subscriptions (0002) lists the event types some configured
-- endpoint subscribes to; the outbox records only these.
CREATE TABLE webhook_subscriptions (
    type TEXT PRIMARY KEY
);

-- status_counts counts messages and verifications by status, kept by
-- triggers.
CREATE TABLE status_counts (
    entity TEXT    NOT NULL CHECK (entity IN ('message', 'verification')),
    status TEXT    NOT NULL,
    n      BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (entity, status)
);

-- console_sessions are admin console logins (the SHA-256 of each token).
CREATE TABLE console_sessions (
    token_hash   BYTEA   PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    api_key_id   TEXT    NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    csrf         TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);

CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- heartbeat has a single row that Ping rewrites. id is a plain key (the
-- store writes 1), not an identity.
CREATE TABLE heartbeat (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    at BIGINT NOT NULL
);

-- late_submits (0004) keeps every late "+CMGS: <mr>" answer.
CREATE TABLE late_submits (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    modem_id   TEXT    NOT NULL,
    to_number  TEXT    NOT NULL,
    part_seq   BIGINT  NOT NULL CHECK (part_seq >= 1),
    mr         BIGINT  NOT NULL CHECK (mr BETWEEN 0 AND 255),
    at         BIGINT  NOT NULL,
    message_id TEXT    REFERENCES messages (id) ON DELETE SET NULL
);

CREATE INDEX late_submits_unmatched ON late_submits (modem_id, part_seq, at)
    WHERE message_id IS NULL;
CREATE INDEX late_submits_at ON late_submits (at);

-- modem_hourly (0006) holds, per modem and UTC hour (unix ms of its start),
-- the parts sent, delivered and failed, counted by the triggers below, and
-- the signal samples.
CREATE TABLE modem_hourly (
    hour           BIGINT  NOT NULL CHECK (hour % 3600000 = 0),
    modem_id       TEXT    NOT NULL CHECK (modem_id <> ''),
    sent           BIGINT  NOT NULL DEFAULT 0 CHECK (sent >= 0),
    delivered      BIGINT  NOT NULL DEFAULT 0 CHECK (delivered >= 0),
    failed         BIGINT  NOT NULL DEFAULT 0 CHECK (failed >= 0),
    signal_sum     BIGINT  NOT NULL DEFAULT 0,                               -- dBm, summed over the samples
    signal_samples BIGINT  NOT NULL DEFAULT 0 CHECK (signal_samples >= 0),
    PRIMARY KEY (hour, modem_id)
);

-- queue_hourly (0006) holds the queue's peaks as sampled during an hour.
-- hour is a plain key (SQLite's INTEGER PRIMARY KEY, always given).
CREATE TABLE queue_hourly (
    hour           BIGINT  PRIMARY KEY CHECK (hour % 3600000 = 0),
    samples        BIGINT  NOT NULL DEFAULT 0 CHECK (samples >= 0),
    depth_max      BIGINT  NOT NULL DEFAULT 0 CHECK (depth_max >= 0),
    oldest_age_max BIGINT  NOT NULL DEFAULT 0 CHECK (oldest_age_max >= 0)   -- ms
);

-- sim_balances (0006) keeps the balance readings of each SIM. SQLite's
-- CHECK (ok = (amount IS NOT NULL)) compares a number with a truth value,
-- which PostgreSQL does not: (ok = 1) is the truth value.
CREATE TABLE sim_balances (
    modem_id TEXT             NOT NULL CHECK (modem_id <> ''),
    at       BIGINT           NOT NULL,
    amount   DOUBLE PRECISION,
    currency TEXT             NOT NULL DEFAULT '',
    raw      TEXT             NOT NULL DEFAULT '',
    ok       INTEGER          NOT NULL CHECK (ok IN (0, 1)),
    -- SQLite's implicit rowid: the order of readings taken at the same
    -- millisecond (store/rollup.go).
    rowid    BIGINT           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    CHECK ((ok = 1) = (amount IS NOT NULL))
);

-- SQLite's index on (at) holds the rowid implicitly; Balances orders by both.
CREATE INDEX sim_balances_at ON sim_balances (at, rowid);

-- inbound_calls (0007) records the voice calls the modems were given.
CREATE TABLE inbound_calls (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    modem_id    TEXT    NOT NULL CHECK (modem_id <> ''),
    from_number TEXT    NOT NULL, -- '' when the caller's number was withheld
    at          BIGINT  NOT NULL,
    rejected    INTEGER NOT NULL CHECK (rejected IN (0, 1))
);

CREATE INDEX inbound_calls_at ON inbound_calls (at);

-- budget_counts (0008) holds the SMS the API admitted against its budgets.
CREATE TABLE budget_counts (
    key        TEXT    NOT NULL CHECK (key <> ''),
    bucket     BIGINT  NOT NULL, -- unix ms
    count      BIGINT  NOT NULL CHECK (count > 0),
    expires_at BIGINT  NOT NULL, -- unix ms
    PRIMARY KEY (key, bucket)
);

CREATE INDEX budget_counts_expires ON budget_counts (expires_at);

-- rejected_pins (0009) remembers which PIN (a keyed fingerprint) each SIM
-- rejected.
CREATE TABLE rejected_pins (
    iccid       TEXT    NOT NULL CHECK (iccid <> ''),
    fingerprint BYTEA   NOT NULL CHECK (octet_length(fingerprint) = 32),
    at          BIGINT  NOT NULL,
    PRIMARY KEY (iccid, fingerprint)
);

-- The triggers.

-- messages_forget_verification_text: once a verification's SMS has left
-- the queue (any status but accepted, queued or sending; 0005 did not add
-- scheduled to the list), erase its text, which holds the sealed code. The
-- UPDATE sets only text, so it fires none of the UPDATE OF status triggers.
CREATE FUNCTION messages_forget_verification_text() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE messages SET text = '' WHERE id = NEW.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER messages_forget_verification_text
AFTER UPDATE OF status ON messages
FOR EACH ROW
WHEN (NEW.verification_id IS NOT NULL AND NEW.text <> ''
    AND NEW.status NOT IN ('accepted', 'queued', 'sending'))
EXECUTE FUNCTION messages_forget_verification_text();

-- webhook_message_status: a message that becomes sent, delivered or failed
-- writes the message.<status> event, when that type is subscribed.
CREATE FUNCTION webhook_message_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_subscriptions WHERE type = 'message.' || NEW.status) THEN
        INSERT INTO webhook_events (id, type, payload, created_at) VALUES (
            simgate_event_id(), 'message.' || NEW.status,
            simgate_json_minify(json_build_object(
                'message_id', NEW.id, 'to', NEW.to_number, 'status', NEW.status, 'reason', NEW.reason,
                'priority', NEW.priority, 'attempts', NEW.attempts, 'modem_id', NEW.modem_id,
                'verification_id', NEW.verification_id,
                'created_at', simgate_rfc3339_ms(NEW.created_at),
                'updated_at', simgate_rfc3339_ms(NEW.updated_at))::text),
            NEW.updated_at);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER webhook_message_status
AFTER UPDATE OF status ON messages
FOR EACH ROW
WHEN (NEW.status IN ('sent', 'delivered', 'failed') AND OLD.status <> NEW.status)
EXECUTE FUNCTION webhook_message_status();

-- webhook_verification_status: a verification that becomes approved,
-- expired, max_attempts_reached or failed writes the verification.<status>
-- event, when that type is subscribed.
CREATE FUNCTION webhook_verification_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_subscriptions WHERE type = 'verification.' || NEW.status) THEN
        INSERT INTO webhook_events (id, type, payload, created_at) VALUES (
            simgate_event_id(), 'verification.' || NEW.status,
            simgate_json_minify(json_build_object(
                'verification_id', NEW.id, 'to', NEW.to_number, 'status', NEW.status,
                'reference', NEW.reference, 'attempts', NEW.attempts, 'send_count', NEW.send_count,
                'message_id', NEW.message_id,
                'created_at', simgate_rfc3339_ms(NEW.created_at),
                'updated_at', simgate_rfc3339_ms(NEW.updated_at))::text),
            NEW.updated_at);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER webhook_verification_status
AFTER UPDATE OF status ON verifications
FOR EACH ROW
WHEN (NEW.status IN ('approved', 'expired', 'max_attempts_reached', 'failed') AND OLD.status <> NEW.status)
EXECUTE FUNCTION webhook_verification_status();

-- webhook_alert: a new alert writes the security.alert event, when that
-- type is subscribed.
CREATE FUNCTION webhook_alert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_subscriptions WHERE type = 'security.alert') THEN
        INSERT INTO webhook_events (id, type, payload, created_at) VALUES (
            simgate_event_id(), 'security.alert',
            simgate_json_minify(json_build_object(
                'alert_id', NEW.id, 'kind', NEW.kind, 'subject', NEW.subject, 'detail', NEW.detail,
                'at', simgate_rfc3339_ms(NEW.at))::text),
            NEW.at);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER webhook_alert
AFTER INSERT ON alerts
FOR EACH ROW
EXECUTE FUNCTION webhook_alert();

-- webhook_inbound (as 0003 made it): a received SMS writes the sms.received
-- event, when that type is subscribed. data is in hex (lowercase); mms and
-- raw are embedded as JSON, without whitespace, as SQLite's json() gives
-- them.
CREATE FUNCTION webhook_inbound() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_subscriptions WHERE type = 'sms.received') THEN
        INSERT INTO webhook_events (id, type, payload, created_at) VALUES (
            simgate_event_id(), 'sms.received',
            simgate_json_minify(json_build_object(
                'inbound_id', NEW.id, 'modem_id', NEW.modem_id, 'from', NEW.from_number, 'text', NEW.text,
                'kind', NEW.kind, 'status', NEW.status, 'parts', NEW.parts, 'parts_total', NEW.parts_total,
                'port', NEW.port,
                'data_hex', encode(NEW.data, 'hex'),
                'mms', NEW.mms::json, 'raw', NEW.raw::json,
                'scts', simgate_rfc3339_ms(NEW.scts),
                'received_at', simgate_rfc3339_ms(NEW.received_at))::text),
            NEW.received_at);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER webhook_inbound
AFTER INSERT ON inbound_messages
FOR EACH ROW
EXECUTE FUNCTION webhook_inbound();

-- webhook_call_received (0007): a call to a modem writes the call.received
-- event, when that type is subscribed; rejected is a JSON true or false.
CREATE FUNCTION webhook_call_received() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_subscriptions WHERE type = 'call.received') THEN
        INSERT INTO webhook_events (id, type, payload, created_at) VALUES (
            simgate_event_id(), 'call.received',
            simgate_json_minify(json_build_object(
                'call_id', NEW.id, 'modem_id', NEW.modem_id, 'from', NEW.from_number,
                'rejected', NEW.rejected = 1,
                'at', simgate_rfc3339_ms(NEW.at))::text),
            NEW.at);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER webhook_call_received
AFTER INSERT ON inbound_calls
FOR EACH ROW
EXECUTE FUNCTION webhook_call_received();

-- status_counts_count keeps status_counts for the six triggers below; its
-- argument is the entity ('message' or 'verification'). An insert counts
-- the new status, a delete uncounts the old one, an update that changes the
-- status does both. Unlike SQLite, PostgreSQL lets several writers in at
-- once: an update first locks its two rows in one order (by status), so
-- that two transactions moving rows between the same two statuses in
-- opposite directions (queued -> sending, sending -> queued) wait for each
-- other instead of deadlocking. The counts are SQLite's.
CREATE FUNCTION status_counts_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO status_counts (entity, status, n) VALUES (TG_ARGV[0], NEW.status, 0)
        ON CONFLICT (entity, status) DO NOTHING;
        PERFORM 1 FROM status_counts
        WHERE entity = TG_ARGV[0] AND status IN (OLD.status, NEW.status)
        ORDER BY status
        FOR UPDATE;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE status_counts SET n = n - 1 WHERE entity = TG_ARGV[0] AND status = OLD.status;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO status_counts (entity, status, n) VALUES (TG_ARGV[0], NEW.status, 1)
        ON CONFLICT (entity, status) DO UPDATE SET n = status_counts.n + 1;
    END IF;
    RETURN NULL;
END;
$$;

-- status_counts_message_insert: a new message counts under its status.
CREATE TRIGGER status_counts_message_insert
AFTER INSERT ON messages
FOR EACH ROW
EXECUTE FUNCTION status_counts_count('message');

-- status_counts_message_update: a message that changes status moves from
-- the old status's count to the new one's.
CREATE TRIGGER status_counts_message_update
AFTER UPDATE OF status ON messages
FOR EACH ROW
WHEN (OLD.status <> NEW.status)
EXECUTE FUNCTION status_counts_count('message');

-- status_counts_message_delete: a deleted message leaves its status's count.
CREATE TRIGGER status_counts_message_delete
AFTER DELETE ON messages
FOR EACH ROW
EXECUTE FUNCTION status_counts_count('message');

-- status_counts_verification_insert: a new verification counts under its
-- status.
CREATE TRIGGER status_counts_verification_insert
AFTER INSERT ON verifications
FOR EACH ROW
EXECUTE FUNCTION status_counts_count('verification');

-- status_counts_verification_update: a verification that changes status
-- moves from the old status's count to the new one's.
CREATE TRIGGER status_counts_verification_update
AFTER UPDATE OF status ON verifications
FOR EACH ROW
WHEN (OLD.status <> NEW.status)
EXECUTE FUNCTION status_counts_count('verification');

-- status_counts_verification_delete: a deleted verification leaves its
-- status's count.
CREATE TRIGGER status_counts_verification_delete
AFTER DELETE ON verifications
FOR EACH ROW
EXECUTE FUNCTION status_counts_count('verification');

-- modem_hourly_sent (0006): a part that becomes sent counts as sent for its
-- modem in the hour of its submit. Parts without a modem ('' or NULL) or
-- a submit time are skipped.
CREATE FUNCTION modem_hourly_sent() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO modem_hourly (hour, modem_id, sent)
    VALUES (NEW.submitted_at - NEW.submitted_at % 3600000, NEW.modem_id, 1)
    ON CONFLICT (hour, modem_id) DO UPDATE SET sent = modem_hourly.sent + 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER modem_hourly_sent
AFTER UPDATE OF status ON message_parts
FOR EACH ROW
WHEN (NEW.status = 'sent' AND OLD.status <> 'sent' AND NEW.modem_id <> '' AND NEW.submitted_at IS NOT NULL)
EXECUTE FUNCTION modem_hourly_sent();

-- modem_hourly_reported (0006): a sent part that becomes delivered or failed
-- counts as such for its modem, in the hour its newest status report was
-- received, else of its done_at, else of its submit; with none of the three
-- it is not counted.
CREATE FUNCTION modem_hourly_reported() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO modem_hourly (hour, modem_id, delivered, failed)
    SELECT t - t % 3600000, NEW.modem_id,
        CASE WHEN NEW.status = 'delivered' THEN 1 ELSE 0 END,
        CASE WHEN NEW.status = 'failed' THEN 1 ELSE 0 END
    FROM (SELECT coalesce(
              (SELECT max(received_at) FROM status_reports WHERE message_id = NEW.message_id AND part_seq = NEW.seq),
              NEW.done_at, NEW.submitted_at) AS t) AS report
    WHERE t IS NOT NULL
    ON CONFLICT (hour, modem_id) DO UPDATE SET
        delivered = modem_hourly.delivered + excluded.delivered, failed = modem_hourly.failed + excluded.failed;
    RETURN NULL;
END;
$$;

CREATE TRIGGER modem_hourly_reported
AFTER UPDATE OF status ON message_parts
FOR EACH ROW
WHEN (OLD.status = 'sent' AND NEW.status IN ('delivered', 'failed') AND NEW.modem_id <> '')
EXECUTE FUNCTION modem_hourly_reported();

-- modem_hourly_refused (0006): a message that becomes failed counts its
-- parts that failed without going out (submitted_at NULL) as failed for the
-- modem the message last tried, in the hour of the change; none, no row.
CREATE FUNCTION modem_hourly_refused() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO modem_hourly (hour, modem_id, failed)
    SELECT NEW.updated_at - NEW.updated_at % 3600000, NEW.modem_id, count(*)
    FROM message_parts
    WHERE message_id = NEW.id AND status = 'failed' AND submitted_at IS NULL
    HAVING count(*) > 0
    ON CONFLICT (hour, modem_id) DO UPDATE SET failed = modem_hourly.failed + excluded.failed;
    RETURN NULL;
END;
$$;

CREATE TRIGGER modem_hourly_refused
AFTER UPDATE OF status ON messages
FOR EACH ROW
WHEN (NEW.status = 'failed' AND OLD.status <> 'failed' AND NEW.modem_id <> '')
EXECUTE FUNCTION modem_hourly_refused();
