-- The operators' alert inbox (maas/alerts.py): what dispatch must see and act on, kept after a page
-- reload. One row per ongoing condition of a booking (its connection at leg N, its delay at the pickup
-- or the drop-off, its no-show): while open (resolved_at NULL) a condition raised again updates its
-- row; once resolved, raising it again makes a new row.
CREATE TABLE alerts (
    id uuid PRIMARY KEY,
    -- The connection states of migration 0020 that need the operator (missed, cancelled), a ride's
    -- delay beyond rules.delay_alert_s (maas/eta.py), a driver's no-show report.
    kind text NOT NULL CHECK (kind IN ('connection_missed', 'train_cancelled', 'delay', 'no_show')),
    severity text NOT NULL CHECK (severity IN ('warning', 'critical')),
    -- Which condition of the booking: 'connection:<leg>', 'delay:pickup', 'delay:dropoff', 'no_show'.
    condition text NOT NULL CHECK (condition ~ '^[a-z_]+(:[a-z0-9_]+)?$' AND length(condition) <= 64),
    -- An alert goes with its booking or journey (a rider's erasure removes their journeys, and with them
    -- what the train connection said); a vehicle or shift removed leaves the alert without it.
    booking_id uuid REFERENCES bookings (id) ON DELETE CASCADE,
    journey_id uuid REFERENCES journeys (id) ON DELETE CASCADE,
    vehicle_id uuid REFERENCES vehicles (id) ON DELETE SET NULL,
    shift_id uuid REFERENCES shifts (id) ON DELETE SET NULL,
    detail text NOT NULL CHECK (length(detail) BETWEEN 1 AND 2000 AND detail !~ '[[:cntrl:]]'),
    raised_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by uuid REFERENCES users (id) ON DELETE SET NULL,  -- NULL with acknowledged_at: account removed
    resolved_at timestamptz,
    resolution text CHECK (length(resolution) BETWEEN 1 AND 600 AND resolution !~ '[[:cntrl:]]'),
    CHECK (updated_at >= raised_at),
    CHECK (acknowledged_at IS NULL OR acknowledged_at >= raised_at),
    CHECK (acknowledged_by IS NULL OR acknowledged_at IS NOT NULL),
    CHECK ((resolved_at IS NULL) = (resolution IS NULL) AND (resolved_at IS NULL OR resolved_at >= raised_at))
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (booking_id, condition) NULLS NOT DISTINCT WHERE resolved_at IS NULL;
CREATE INDEX alerts_newest ON alerts (raised_at DESC, id);
CREATE INDEX alerts_open ON alerts (raised_at DESC, id) WHERE resolved_at IS NULL;
CREATE INDEX alerts_booking ON alerts (booking_id);
CREATE INDEX alerts_journey ON alerts (journey_id) WHERE journey_id IS NOT NULL;

-- An alert says what happened, not whom to call: a phone caller's number never stays in its detail
-- (the console reads it from the booking, which the erasure and retention jobs pseudonymise), whichever
-- code writes it.
CREATE FUNCTION maas_alert_without_caller() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    phone text;
BEGIN
    SELECT b.caller_phone INTO phone FROM bookings b WHERE b.id = NEW.booking_id;
    IF phone IS NOT NULL AND phone <> '' THEN
        NEW.detail := replace(NEW.detail, phone, '[phone]');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER alerts_without_caller BEFORE INSERT OR UPDATE OF detail ON alerts
    FOR EACH ROW EXECUTE FUNCTION maas_alert_without_caller();
