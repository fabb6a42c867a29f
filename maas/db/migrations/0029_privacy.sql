-- Privacy (maas/retention.py, maas/privacy.py): what the retention job keeps of old GPS fixes, which
-- rows it has pseudonymised, and its runs; the audit log never holds a phone number.

-- Vehicles' GPS fixes older than rules.retention.positions_days, one row per vehicle and hour: how many
-- fixes, the first and last, their mean position and the distance driven between them.
CREATE TABLE position_hours (
    vehicle_id uuid NOT NULL,
    hour timestamptz NOT NULL,
    positions integer NOT NULL CHECK (positions > 0),
    first_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL CHECK (last_at >= first_at),
    lat double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    distance_m double precision NOT NULL CHECK (distance_m >= 0),
    PRIMARY KEY (vehicle_id, hour)
);
-- The trail is appended in time order: a BRIN index finds its oldest rows for almost no upkeep.
CREATE INDEX positions_at_brin ON positions USING brin (at);

-- When a rider's name and number, or a phone booking's caller, were replaced by a pseudonym.
ALTER TABLE users ADD COLUMN pseudonymised_at timestamptz;
ALTER TABLE bookings ADD COLUMN pseudonymised_at timestamptz;
CREATE INDEX bookings_callers ON bookings (regexp_replace(caller_phone, '[^0-9]', '', 'g'))
    WHERE caller_phone IS NOT NULL;
CREATE INDEX audit_log_phone_bookings ON audit_log (subject) WHERE action = 'phone_booking';

CREATE TABLE retention_runs (
    id bigserial PRIMARY KEY,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL CHECK (finished_at >= started_at),
    report jsonb NOT NULL  -- maas.retention.RetentionReport
);

-- The audit log records what was done, not whom a phone booking was for: a caller's number stays on
-- the booking (until it is pseudonymised), whichever code writes an audit entry.
CREATE FUNCTION maas_audit_without_phone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.details := NEW.details - 'phone';
    RETURN NEW;
END $$;
CREATE TRIGGER audit_log_without_phone BEFORE INSERT OR UPDATE OF details ON audit_log
    FOR EACH ROW EXECUTE FUNCTION maas_audit_without_phone();
UPDATE audit_log SET details = details - 'phone' WHERE details ? 'phone';
