-- Network versions: the configured network and every network built when a feed version is
-- published. Exactly one is active; every process serves the active one.
CREATE TABLE networks (
    id serial PRIMARY KEY,
    directory text NOT NULL,
    status text NOT NULL CHECK (status IN ('building', 'built', 'failed')),
    feeds jsonb NOT NULL DEFAULT '[]',     -- [{"feed_id", "version_id" (null: not uploaded here), "agency"}]
    osm text,
    error text,
    created_by uuid REFERENCES users (id), -- null for the network configured by MAAS_NETWORK_DIR
    build_seconds double precision,
    active boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    built_at timestamptz,
    activated_at timestamptz
);
CREATE UNIQUE INDEX networks_one_active ON networks (active) WHERE active;
CREATE INDEX feed_versions_feed ON feed_versions (feed_id, status);
