-- Users of every role, the fleet, bookings with their event history, plans, positions, feeds, audit.
CREATE TABLE users (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    role text NOT NULL CHECK (role IN ('rider', 'driver', 'operator', 'agency', 'admin')),
    phone text,
    agency text,                       -- the agency an agency user publishes for
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE vehicles (
    id uuid PRIMARY KEY,
    name text NOT NULL UNIQUE,
    seats integer NOT NULL CHECK (seats >= 0),
    wheelchair_places integer NOT NULL DEFAULT 0 CHECK (wheelchair_places >= 0),
    depot_lat double precision NOT NULL,
    depot_lon double precision NOT NULL,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shifts (
    id uuid PRIMARY KEY,
    vehicle_id uuid NOT NULL REFERENCES vehicles (id),
    driver_id uuid REFERENCES users (id),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL CHECK (ends_at > starts_at),
    signed_in_at timestamptz
);
CREATE INDEX shifts_vehicle ON shifts (vehicle_id, starts_at);

CREATE TABLE bookings (
    id uuid PRIMARY KEY,
    rider_id uuid REFERENCES users (id),        -- null for a phone booking without an account
    caller_name text,
    caller_phone text,
    created_by uuid NOT NULL REFERENCES users (id),
    idempotency_key text,
    origin_lat double precision NOT NULL,
    origin_lon double precision NOT NULL,
    destination_lat double precision NOT NULL,
    destination_lon double precision NOT NULL,
    seated integer NOT NULL,
    wheelchairs integer NOT NULL,
    earliest_pickup timestamptz,
    latest_arrival timestamptz,
    status text NOT NULL CHECK (status IN ('confirmed', 'picked_up', 'completed', 'cancelled', 'no_show')),
    vehicle_id uuid REFERENCES vehicles (id),
    shift_id uuid REFERENCES shifts (id),
    pickup_earliest timestamptz NOT NULL,
    pickup_latest timestamptz NOT NULL,
    dropoff_latest timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (created_by, idempotency_key)
);
CREATE INDEX bookings_rider ON bookings (rider_id, created_at);
CREATE INDEX bookings_active ON bookings (status) WHERE status IN ('confirmed', 'picked_up');

CREATE TABLE booking_events (
    id bigserial PRIMARY KEY,
    booking_id uuid NOT NULL REFERENCES bookings (id),
    status text NOT NULL,
    actor uuid REFERENCES users (id),
    reason text,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX booking_events_booking ON booking_events (booking_id, id);

-- The fleet's plans: one version number for all, bumped by every committed change, so that a
-- process whose in-memory plans are older rebuilds them before planning.
CREATE TABLE fleet_state (
    id integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO fleet_state (id, version) VALUES (1, 0);

CREATE TABLE shift_plans (
    shift_id uuid PRIMARY KEY REFERENCES shifts (id),
    stops jsonb NOT NULL,               -- [[booking id, "pickup" | "dropoff"], ...] in visiting order
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE positions (
    vehicle_id uuid NOT NULL,
    at timestamptz NOT NULL,
    lat double precision NOT NULL,
    lon double precision NOT NULL,
    speed_mps real,
    heading_deg real
);
CREATE INDEX positions_vehicle_at ON positions (vehicle_id, at);

CREATE TABLE latest_positions (
    vehicle_id uuid PRIMARY KEY,
    at timestamptz NOT NULL,
    lat double precision NOT NULL,
    lon double precision NOT NULL,
    speed_mps real,
    heading_deg real
);

CREATE TABLE feed_versions (
    id uuid PRIMARY KEY,
    agency text NOT NULL,
    feed_id text NOT NULL,
    uploaded_by uuid NOT NULL REFERENCES users (id),
    sha256 text NOT NULL,
    size_bytes bigint NOT NULL,
    content bytea NOT NULL,
    report jsonb NOT NULL,
    status text NOT NULL CHECK (status IN ('uploaded', 'rejected', 'publishing', 'published', 'failed', 'retired')),
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX feed_versions_agency ON feed_versions (agency, created_at);

CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    actor uuid REFERENCES users (id),
    action text NOT NULL,
    subject text,
    details jsonb NOT NULL DEFAULT '{}',
    at timestamptz NOT NULL DEFAULT now()
);
