-- Re-optimisation of the live plans (maas/reoptimizing.py): one row per run, whichever process ran it:
-- why it ran, what the fleet would drive before and after, and whether the plans were adopted (if not,
-- why not). The operator reads them with GET /fleet/reoptimizations.
CREATE TABLE reoptimizations (
    id bigserial PRIMARY KEY,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    trigger text NOT NULL CHECK (trigger IN ('schedule', 'cancellation', 'manual')),
    outcome text NOT NULL CHECK (outcome IN ('adopted', 'no_gain', 'stale', 'rejected', 'idle', 'failed')),
    detail text NOT NULL DEFAULT '' CHECK (length(detail) <= 2000),
    fleet_version bigint NOT NULL,           -- the plans' version the search started from
    adopted_version bigint,                  -- the fleet version the adopted plans committed as
    rides integer NOT NULL CHECK (rides >= 0),
    vehicles integer NOT NULL CHECK (vehicles >= 0),
    drive_before_s double precision NOT NULL CHECK (drive_before_s >= 0),
    drive_after_s double precision CHECK (drive_after_s >= 0),  -- the search's plan, adopted or not
    moved_rides integer NOT NULL DEFAULT 0 CHECK (moved_rides >= 0),  -- rides now on another vehicle
    search_s double precision NOT NULL CHECK (search_s >= 0),
    duration_s double precision NOT NULL CHECK (duration_s >= 0),
    CHECK (finished_at >= started_at),
    CHECK ((outcome = 'adopted') = (adopted_version IS NOT NULL))
);
CREATE INDEX reoptimizations_started ON reoptimizations (started_at DESC);
