-- Connection protection: what the service last knew of the train or bus a ride's promise protects,
-- so that every process acts once per change (under the fleet lock) and the rider sees why.
ALTER TABLE journey_legs
    ADD COLUMN connection_expected_at timestamptz,   -- the trip's realtime time at the station
    ADD COLUMN connection_state text NOT NULL DEFAULT 'scheduled'
        CHECK (connection_state IN ('scheduled', 'on_time', 'late', 'waiting', 'missed', 'cancelled'));
