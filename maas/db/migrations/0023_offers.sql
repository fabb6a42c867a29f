-- Offers of a quote, kept under an id until they expire, so that a rider books the one chosen
-- (POST /bookings {"offer": id}); and what a booking was asked with, so that an Idempotency-Key
-- reused with another request is told apart from a retry (IETF Idempotency-Key draft: 422).
CREATE TABLE offers (
    id uuid PRIMARY KEY,
    created_by uuid NOT NULL REFERENCES users (id),
    wish jsonb NOT NULL,    -- the ride as asked (maas.booking.RideWish)
    offer jsonb NOT NULL,   -- the vehicle and promise offered (routing.dispatch.dispatcher.Offer)
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL CHECK (expires_at > created_at)
);
CREATE INDEX offers_expiry ON offers (expires_at);

ALTER TABLE bookings ADD COLUMN offer_id uuid;
ALTER TABLE bookings ADD COLUMN request_hash text CHECK (length(request_hash) <= 128);
CREATE UNIQUE INDEX bookings_offer ON bookings (offer_id) WHERE offer_id IS NOT NULL;  -- an offer is booked once

-- As in 0015, with the offer and the request's hash stored.
CREATE OR REPLACE FUNCTION maas_book(expected bigint, area_version bigint, shift uuid, stops jsonb, booking jsonb,
                                     key text, fleet_lock bigint)
RETURNS TABLE (outcome text, version bigint, changed uuid[], known uuid)
LANGUAGE plpgsql AS $$
DECLARE
    now_version bigint;
    noted bigint;
    touched boolean;
    new_version bigint;
    found_id uuid;
BEGIN
    PERFORM pg_advisory_xact_lock(fleet_lock);
    IF key IS NOT NULL THEN
        SELECT b.id INTO found_id FROM bookings b
        WHERE b.created_by = (booking ->> 'created_by')::uuid AND b.idempotency_key = key;
        IF found_id IS NOT NULL THEN
            RETURN QUERY SELECT 'replay'::text, NULL::bigint, NULL::uuid[], found_id;
            RETURN;
        END IF;
    END IF;
    IF (SELECT max(a.id) FROM service_areas a) IS DISTINCT FROM area_version THEN
        RETURN QUERY SELECT 'area'::text, NULL::bigint, NULL::uuid[], NULL::uuid;
        RETURN;
    END IF;
    SELECT s.version INTO now_version FROM fleet_state s WHERE s.id = 1;
    IF now_version <> expected THEN
        SELECT count(*), coalesce(bool_or(shift = ANY (c.shifts)), false) INTO noted, touched
        FROM fleet_changes c WHERE c.version > expected AND c.version <= now_version;
        IF now_version < expected OR noted <> now_version - expected OR touched THEN
            RETURN QUERY SELECT 'stale'::text, now_version, NULL::uuid[], NULL::uuid;
            RETURN;
        END IF;
    END IF;
    WITH booked AS (
        INSERT INTO bookings (id, rider_id, caller_name, caller_phone, created_by, origin_lat, origin_lon,
                              destination_lat, destination_lon, seated, wheelchairs, earliest_pickup,
                              latest_arrival, status, vehicle_id, shift_id, pickup_earliest, pickup_latest,
                              dropoff_latest, created_at, idempotency_key, offer_id, request_hash)
        SELECT r.id, r.rider_id, r.caller_name, r.caller_phone, r.created_by, r.origin_lat, r.origin_lon,
               r.destination_lat, r.destination_lon, r.seated, r.wheelchairs, r.earliest_pickup,
               r.latest_arrival, r.status, r.vehicle_id, r.shift_id, r.pickup_earliest, r.pickup_latest,
               r.dropoff_latest, r.created_at, key, r.offer_id, r.request_hash
        FROM jsonb_populate_record(NULL::bookings, booking) r
        RETURNING id, status, created_by)
    INSERT INTO booking_events (booking_id, status, actor) SELECT b.id, b.status, b.created_by FROM booked b;
    INSERT INTO shift_plans (shift_id, stops, updated_at) VALUES (shift, stops, now())
        ON CONFLICT (shift_id) DO UPDATE SET stops = excluded.stops, updated_at = now();
    UPDATE fleet_state s SET version = s.version + 1 WHERE s.id = 1 RETURNING s.version INTO new_version;
    INSERT INTO fleet_changes (version, shifts) VALUES (new_version, ARRAY[shift]);
    RETURN QUERY SELECT 'booked'::text, new_version,
        (SELECT coalesce(array_agg(DISTINCT x), '{}') FROM fleet_changes c, unnest(c.shifts) x
         WHERE c.version > expected AND c.version < new_version), NULL::uuid;
END $$;
