-- webhook_subscriptions lists the event types that some configured endpoint
-- subscribes to. simgate serve writes it at start (webhook.Sender.Open), before
-- any message moves. The outbox records only these types: an install without
-- webhooks writes no events, and has none to fan out and purge, on the path of
-- every message.
CREATE TABLE webhook_subscriptions (
    type TEXT PRIMARY KEY
) STRICT, WITHOUT ROWID;

DROP TRIGGER webhook_message_status;
CREATE TRIGGER webhook_message_status
AFTER UPDATE OF status ON messages
WHEN NEW.status IN ('sent', 'delivered', 'failed') AND OLD.status <> NEW.status
    AND EXISTS (SELECT 1 FROM webhook_subscriptions WHERE type = 'message.' || NEW.status)
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

DROP TRIGGER webhook_verification_status;
CREATE TRIGGER webhook_verification_status
AFTER UPDATE OF status ON verifications
WHEN NEW.status IN ('approved', 'expired', 'max_attempts_reached', 'failed') AND OLD.status <> NEW.status
    AND EXISTS (SELECT 1 FROM webhook_subscriptions WHERE type = 'verification.' || NEW.status)
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

DROP TRIGGER webhook_alert;
CREATE TRIGGER webhook_alert
AFTER INSERT ON alerts
WHEN EXISTS (SELECT 1 FROM webhook_subscriptions WHERE type = 'security.alert')
BEGIN
    INSERT INTO webhook_events (id, type, payload, created_at) VALUES (
        'evt_' || lower(hex(randomblob(16))), 'security.alert',
        json_object('alert_id', NEW.id, 'kind', NEW.kind, 'subject', NEW.subject, 'detail', NEW.detail,
            'at', strftime('%Y-%m-%dT%H:%M:%fZ', NEW.at / 1000.0, 'unixepoch')),
        NEW.at);
END;

DROP TRIGGER webhook_inbound;
CREATE TRIGGER webhook_inbound
AFTER INSERT ON inbound_messages
WHEN EXISTS (SELECT 1 FROM webhook_subscriptions WHERE type = 'sms.received')
BEGIN
    INSERT INTO webhook_events (id, type, payload, created_at) VALUES (
        'evt_' || lower(hex(randomblob(16))), 'sms.received',
        json_object('inbound_id', NEW.id, 'modem_id', NEW.modem_id, 'from', NEW.from_number, 'text', NEW.text,
            'scts', CASE WHEN NEW.scts IS NULL THEN NULL
                         ELSE strftime('%Y-%m-%dT%H:%M:%fZ', NEW.scts / 1000.0, 'unixepoch') END,
            'received_at', strftime('%Y-%m-%dT%H:%M:%fZ', NEW.received_at / 1000.0, 'unixepoch')),
        NEW.received_at);
END;
