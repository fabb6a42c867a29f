-- The operators' booking and journey search (GET /bookings, GET /journeys): each sort order an index can
-- serve, a vehicle's bookings by pickup, and a day's served stops (GET /fleet/plans) by shift.
CREATE INDEX bookings_pickup ON bookings (pickup_earliest, id);
CREATE INDEX bookings_created ON bookings (created_at, id);
CREATE INDEX bookings_vehicle_pickup ON bookings (vehicle_id, pickup_earliest) WHERE vehicle_id IS NOT NULL;
CREATE INDEX bookings_shift ON bookings (shift_id) WHERE shift_id IS NOT NULL;
CREATE INDEX journeys_departure ON journeys (departure, id);
CREATE INDEX journeys_created ON journeys (created_at, id);
