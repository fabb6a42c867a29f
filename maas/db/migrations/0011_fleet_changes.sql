-- Which shifts each fleet version changed, so that a process whose plans are a few versions old
-- re-reads only those shifts instead of everything. A version without a row here (a new shift,
-- say) makes readers rebuild all plans.
CREATE TABLE fleet_changes (
    version bigint PRIMARY KEY,
    shifts uuid[] NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
