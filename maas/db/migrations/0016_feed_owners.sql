-- A feed id belongs to the agency that first uploaded under it. A key instead of a check before
-- the insert: two agencies uploading the same new feed id at once cannot both take it.
CREATE TABLE feed_owners (
    feed_id text PRIMARY KEY,
    agency text NOT NULL
);

INSERT INTO feed_owners (feed_id, agency)
SELECT DISTINCT ON (feed_id) feed_id, agency FROM feed_versions ORDER BY feed_id, created_at;
