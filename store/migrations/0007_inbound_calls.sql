-- inbound_calls records the voice calls the modems were given: simgate takes
-- no call, it rejects it (or lets it ring) and keeps who called. The
-- call.received webhook event is written in the same transaction.
CREATE TABLE inbound_calls (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    modem_id    TEXT    NOT NULL CHECK (modem_id <> ''),
    from_number TEXT    NOT NULL, -- '' when the caller's number was withheld
    at          INTEGER NOT NULL,
    rejected    INTEGER NOT NULL CHECK (rejected IN (0, 1))
) STRICT;

CREATE INDEX inbound_calls_at ON inbound_calls (at);

CREATE TRIGGER webhook_call_received
AFTER INSERT ON inbound_calls
WHEN EXISTS (SELECT 1 FROM webhook_subscriptions WHERE type = 'call.received')
BEGIN
    INSERT INTO webhook_events (id, type, payload, created_at) VALUES (
        'evt_' || lower(hex(randomblob(16))), 'call.received',
        json_object('call_id', NEW.id, 'modem_id', NEW.modem_id, 'from', NEW.from_number,
            'rejected', json(CASE NEW.rejected WHEN 1 THEN 'true' ELSE 'false' END),
            'at', strftime('%Y-%m-%dT%H:%M:%fZ', NEW.at / 1000.0, 'unixepoch')),
        NEW.at);
END;
