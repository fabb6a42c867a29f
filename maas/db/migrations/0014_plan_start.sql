-- Where and when a vehicle's plan starts once stop events have moved it away from its depot (the
-- last pickup or drop-off and the time it ended). Every process that re-reads the shift plans from
-- there, instead of from the depot at the start of the shift.
ALTER TABLE shift_plans ADD COLUMN start_lat double precision;
ALTER TABLE shift_plans ADD COLUMN start_lon double precision;
ALTER TABLE shift_plans ADD COLUMN start_at timestamptz;
