-- Journeys booked by an operator for a phone caller (POST /operator/journeys): they belong to no rider
-- account but name the caller, as phone bookings do; each journey is a rider's or a caller's.
ALTER TABLE journeys ALTER COLUMN rider_id DROP NOT NULL;
ALTER TABLE journeys
    ADD COLUMN caller_name text CHECK (length(caller_name) BETWEEN 1 AND 200 AND caller_name !~ '[[:cntrl:]]'),
    ADD COLUMN caller_phone text CHECK (length(caller_phone) BETWEEN 1 AND 64 AND caller_phone !~ '[[:cntrl:]]'),
    -- When the caller's name and number were replaced by a pseudonym (maas/privacy.py, maas/retention.py).
    ADD COLUMN pseudonymised_at timestamptz,
    ADD CONSTRAINT journeys_rider_or_caller CHECK ((rider_id IS NULL) <> (caller_name IS NULL));
CREATE INDEX journeys_callers ON journeys (regexp_replace(caller_phone, '[^0-9]', '', 'g'))
    WHERE caller_phone IS NOT NULL;
