-- Several hosts on one database (docs/OPERATIONS.md, "Several hosts").

-- nodes holds the last report of each simgate serve process sharing this
-- database: a node writes its own row every few seconds (DB.Heartbeat) and
-- reads the others' to show their modems, and whether they are gone.
CREATE TABLE nodes (
    id         TEXT   PRIMARY KEY CHECK (id <> ''),
    version    TEXT   NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    modems     JSONB  NOT NULL  -- []simgate.ModemStatus, as the node reported them
);

-- queue_notify tells the listening nodes (DB.ListenQueue) that a message is
-- queued: inserted, retried, given back, or released from a wait or its
-- schedule. NOTIFY is delivered when the transaction commits, and several in
-- one transaction are delivered once, so that a node whose modem is idle
-- claims the message at once instead of at its next sweep.
CREATE FUNCTION queue_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('simgate_queue', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_queued_notify
AFTER INSERT OR UPDATE OF status, next_attempt_at ON messages
FOR EACH ROW WHEN (NEW.status = 'queued')
EXECUTE FUNCTION queue_notify();
