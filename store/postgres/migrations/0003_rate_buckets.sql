-- The API's rate limits as one count for every node (api.Options.Buckets).

-- rate_buckets holds a token bucket per limited key ("key:ID", "ip:ADDR",
-- "number:+E164"): the tokens left at the time of its last take. UNLOGGED:
-- a bucket is worth no WAL, and a crash or a failover that empties the
-- table only forgives the clients some of their debt. full_at is when the
-- bucket is full again, after which its row means nothing and may go.
CREATE UNLOGGED TABLE rate_buckets (
    key     TEXT             PRIMARY KEY,
    tokens  DOUBLE PRECISION NOT NULL,
    at      BIGINT           NOT NULL,
    full_at BIGINT           NOT NULL
);

CREATE INDEX rate_buckets_full ON rate_buckets (full_at);

-- take_tokens takes n tokens from the bucket of k (per_second tokens a
-- second, up to burst; a new bucket is full) at now_ms and returns 0, or,
-- when there are fewer than n, takes none and returns the seconds until
-- there are. A clock behind the bucket's last take (another node's) adds
-- nothing and takes nothing back.
CREATE FUNCTION take_tokens(k TEXT, per_second DOUBLE PRECISION, burst INTEGER, n INTEGER, now_ms BIGINT)
RETURNS DOUBLE PRECISION
LANGUAGE plpgsql AS $$
DECLARE
    avail DOUBLE PRECISION;
    last  BIGINT;
BEGIN
    INSERT INTO rate_buckets (key, tokens, at, full_at) VALUES (k, burst, now_ms, now_ms)
    ON CONFLICT (key) DO NOTHING;
    SELECT tokens, at INTO avail, last FROM rate_buckets WHERE key = k FOR UPDATE;
    avail := least(burst, avail + greatest(0, now_ms - last) / 1000.0 * per_second);
    IF avail >= n THEN
        UPDATE rate_buckets SET tokens = avail - n, at = greatest(last, now_ms),
            full_at = greatest(last, now_ms) + ceil((burst - (avail - n)) / per_second * 1000)::bigint
        WHERE key = k;
        RETURN 0;
    END IF;
    UPDATE rate_buckets SET tokens = avail, at = greatest(last, now_ms) WHERE key = k;
    RETURN (n - avail) / per_second;
END
$$;
