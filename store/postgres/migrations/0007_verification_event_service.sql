-- The verification.* webhook events name the verification's service and
-- channel: the SQLite store's 0013
-- (store/migrations/0013_verification_event_service.sql), with the keys in
-- the same order.
CREATE OR REPLACE FUNCTION webhook_verification_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_subscriptions WHERE type = 'verification.' || NEW.status) THEN
        INSERT INTO webhook_events (id, type, payload, created_at) VALUES (
            simgate_event_id(), 'verification.' || NEW.status,
            simgate_json_minify(json_build_object(
                'verification_id', NEW.id, 'service', NEW.service_id, 'channel', NEW.channel,
                'to', NEW.to_number, 'status', NEW.status,
                'reference', NEW.reference, 'attempts', NEW.attempts, 'send_count', NEW.send_count,
                'message_id', NEW.message_id,
                'created_at', simgate_rfc3339_ms(NEW.created_at),
                'updated_at', simgate_rfc3339_ms(NEW.updated_at))::text),
            NEW.updated_at);
    END IF;
    RETURN NULL;
END;
$$;
