-- Inbound messages get what real SIMs deliver besides text: WAP pushes and
-- MMS notifications (port 2948/2949), 8-bit data, long SMS whose other parts
-- never came (incomplete), and PDUs that cannot be decoded at all, which are
-- kept raw (undecodable) so that nothing is lost and the SIM does not fill.
-- The sender may be empty: an undecodable PDU has none, and networks deliver
-- SMS whose originating address holds no digits.
--
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt
-- with the same ids (AUTOINCREMENT's sequence follows the largest id
-- inserted), then its index and webhook trigger are made again.

CREATE TABLE inbound_messages_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    modem_id    TEXT    NOT NULL CHECK (modem_id <> ''),
    from_number TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    scts        INTEGER,
    received_at INTEGER NOT NULL,
    kind        TEXT    NOT NULL DEFAULT 'text'
                CHECK (kind IN ('text', 'wap_push', 'mms_notification', 'data')),
    status      TEXT    NOT NULL DEFAULT 'complete'
                CHECK (status IN ('complete', 'incomplete', 'undecodable')),
    parts       INTEGER NOT NULL DEFAULT 1 CHECK (parts >= 1),
    parts_total INTEGER NOT NULL DEFAULT 1 CHECK (parts_total >= parts),
    port        INTEGER CHECK (port BETWEEN 0 AND 65535),
    data        BLOB,    -- the user data of a message that is not text
    mms         TEXT CHECK (mms IS NULL OR json_valid(mms)), -- the decoded MMS notification
    raw         TEXT CHECK (raw IS NULL OR json_valid(raw)), -- the PDU of an undecodable one
    CHECK (status <> 'undecodable' OR raw IS NOT NULL)
) STRICT;

INSERT INTO inbound_messages_new (id, modem_id, from_number, text, scts, received_at)
SELECT id, modem_id, from_number, text, scts, received_at FROM inbound_messages;

DROP TABLE inbound_messages;
ALTER TABLE inbound_messages_new RENAME TO inbound_messages;

CREATE INDEX inbound_messages_received ON inbound_messages (received_at);

CREATE TRIGGER webhook_inbound
AFTER INSERT ON inbound_messages
WHEN EXISTS (SELECT 1 FROM webhook_subscriptions WHERE type = 'sms.received')
BEGIN
    INSERT INTO webhook_events (id, type, payload, created_at) VALUES (
        'evt_' || lower(hex(randomblob(16))), 'sms.received',
        json_object('inbound_id', NEW.id, 'modem_id', NEW.modem_id, 'from', NEW.from_number, 'text', NEW.text,
            'kind', NEW.kind, 'status', NEW.status, 'parts', NEW.parts, 'parts_total', NEW.parts_total,
            'port', NEW.port,
            'data_hex', CASE WHEN NEW.data IS NULL THEN NULL ELSE lower(hex(NEW.data)) END,
            'mms', json(NEW.mms), 'raw', json(NEW.raw),
            'scts', CASE WHEN NEW.scts IS NULL THEN NULL
                         ELSE strftime('%Y-%m-%dT%H:%M:%fZ', NEW.scts / 1000.0, 'unixepoch') END,
            'received_at', strftime('%Y-%m-%dT%H:%M:%fZ', NEW.received_at / 1000.0, 'unixepoch')),
        NEW.received_at);
END;
