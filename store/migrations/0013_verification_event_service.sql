-- The verification.* webhook events name the verification's service and
-- channel: an endpoint that serves several applications (services) tells
-- by them which one an event is for, and whether a code or a call ended
-- it. The keys follow the API's verification ("service", "channel").
DROP TRIGGER webhook_verification_status;
CREATE TRIGGER webhook_verification_status
AFTER UPDATE OF status ON verifications
WHEN NEW.status IN ('approved', 'expired', 'max_attempts_reached', 'failed') AND OLD.status <> NEW.status
    AND EXISTS (SELECT 1 FROM webhook_subscriptions WHERE type = 'verification.' || NEW.status)
BEGIN
    INSERT INTO webhook_events (id, type, payload, created_at) VALUES (
        'evt_' || lower(hex(randomblob(16))), 'verification.' || NEW.status,
        json_object(
            'verification_id', NEW.id, 'service', NEW.service_id, 'channel', NEW.channel,
            'to', NEW.to_number, 'status', NEW.status,
            'reference', NEW.reference, 'attempts', NEW.attempts, 'send_count', NEW.send_count,
            'message_id', NEW.message_id,
            'created_at', strftime('%Y-%m-%dT%H:%M:%fZ', NEW.created_at / 1000.0, 'unixepoch'),
            'updated_at', strftime('%Y-%m-%dT%H:%M:%fZ', NEW.updated_at / 1000.0, 'unixepoch')),
        NEW.updated_at);
END;
