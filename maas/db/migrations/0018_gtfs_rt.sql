-- The latest GTFS-Realtime message of each GTFS feed, one row per kind of entity it carries (producers
-- often serve trip updates and vehicle positions at separate URLs; a message carrying both is kept
-- under both). Every worker process applies the same stored messages: a row's version, drawn from one
-- sequence on every store, tells a process which rows changed since it last read them.
CREATE SEQUENCE gtfs_rt_versions;

CREATE TABLE gtfs_rt_messages (
    feed_id text NOT NULL CHECK (feed_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
    kind text NOT NULL CHECK (kind IN ('trip_updates', 'vehicle_positions')),
    version bigint NOT NULL DEFAULT nextval('gtfs_rt_versions'),
    body bytea NOT NULL CHECK (octet_length(body) BETWEEN 1 AND 67108864),  -- MAAS_GTFS_RT_MAX_BYTES at most
    header_timestamp timestamptz,          -- the producer's time of the message (GTFS-RT header)
    entities integer NOT NULL CHECK (entities >= 0),  -- of this kind
    source text NOT NULL CHECK (length(source) BETWEEN 1 AND 2000),  -- the URL polled, or 'POST'
    received_by uuid REFERENCES users (id),  -- who posted it (NULL: the poller)
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (feed_id, kind)
);
