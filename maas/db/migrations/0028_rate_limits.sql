-- Requests counted per budget and caller in one-minute windows, shared by every worker process of the
-- database. UNLOGGED: counters are worth losing in a crash rather than writing to the WAL on every request.
CREATE UNLOGGED TABLE rate_limit_hits (
    key text NOT NULL CHECK (length(key) <= 200),
    window_start bigint NOT NULL,  -- epoch minute
    hits integer NOT NULL,
    PRIMARY KEY (key, window_start)
);
