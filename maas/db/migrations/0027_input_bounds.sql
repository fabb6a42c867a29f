-- The bounds of the API's wire types (maas/wire.py), held by the database too: names and free text of
-- bounded length without control characters, counts and coordinates in range, times in a sane span.
-- NOT VALID: rows stored before are left as they are (the service reads them as before); every new or
-- changed row is checked. A violation answers 422 (maas/errors.py), never a 500.
ALTER TABLE users
    ADD CONSTRAINT users_name_bounded CHECK (length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]') NOT VALID,
    ADD CONSTRAINT users_phone_bounded CHECK (length(phone) <= 64 AND phone !~ '[[:cntrl:]]') NOT VALID,
    ADD CONSTRAINT users_agency_bounded CHECK (length(agency) BETWEEN 1 AND 200 AND agency !~ '[[:cntrl:]]') NOT VALID;

ALTER TABLE vehicles
    ADD CONSTRAINT vehicles_name_bounded CHECK (length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]') NOT VALID,
    ADD CONSTRAINT vehicles_places_bounded
        CHECK (seats <= 100 AND wheelchair_places <= 100 AND seats + wheelchair_places > 0) NOT VALID,
    ADD CONSTRAINT vehicles_depot_on_earth
        CHECK (depot_lat BETWEEN -90 AND 90 AND depot_lon BETWEEN -180 AND 180) NOT VALID;

ALTER TABLE shifts
    ADD CONSTRAINT shifts_sane_times CHECK (
        starts_at BETWEEN '2000-01-01 00:00+00' AND '2200-01-01 00:00+00'
        AND ends_at <= starts_at + interval '16 hours'
    ) NOT VALID;

ALTER TABLE bookings
    ADD CONSTRAINT bookings_caller_bounded CHECK (
        length(caller_name) <= 200 AND caller_name !~ '[[:cntrl:]]'
        AND length(caller_phone) <= 64 AND caller_phone !~ '[[:cntrl:]]'
    ) NOT VALID,
    ADD CONSTRAINT bookings_key_bounded CHECK (length(idempotency_key) BETWEEN 1 AND 200) NOT VALID,
    ADD CONSTRAINT bookings_places_on_earth CHECK (
        origin_lat BETWEEN -90 AND 90 AND origin_lon BETWEEN -180 AND 180
        AND destination_lat BETWEEN -90 AND 90 AND destination_lon BETWEEN -180 AND 180
        AND (origin_lat, origin_lon) <> (destination_lat, destination_lon)
    ) NOT VALID,
    ADD CONSTRAINT bookings_passengers_bounded
        CHECK (seated >= 0 AND wheelchairs >= 0 AND seated + wheelchairs BETWEEN 1 AND 50) NOT VALID,
    ADD CONSTRAINT bookings_sane_times CHECK (
        pickup_earliest BETWEEN '2000-01-01 00:00+00' AND '2200-01-01 00:00+00'
        AND dropoff_latest BETWEEN '2000-01-01 00:00+00' AND '2200-01-01 00:00+00'
    ) NOT VALID;

ALTER TABLE booking_events
    ADD CONSTRAINT booking_events_reason_bounded CHECK (length(reason) <= 2000) NOT VALID;

ALTER TABLE positions
    ADD CONSTRAINT positions_on_earth CHECK (
        lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180
        AND speed_mps BETWEEN 0 AND 100 AND heading_deg BETWEEN 0 AND 360
    ) NOT VALID;
ALTER TABLE latest_positions
    ADD CONSTRAINT latest_positions_on_earth CHECK (
        lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180
        AND speed_mps BETWEEN 0 AND 100 AND heading_deg BETWEEN 0 AND 360
    ) NOT VALID;

ALTER TABLE service_areas
    ADD CONSTRAINT service_areas_name_bounded
        CHECK (length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]') NOT VALID;
