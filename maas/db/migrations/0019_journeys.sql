-- Journeys: what a rider was shown (itineraries, kept until their offers expire, so that one can be
-- booked by its id) and what a rider booked (a journey, its legs, the bookings of its on-demand
-- legs, the connection each ride's promise protects, and every decision as an event).
CREATE TABLE itineraries (
    id uuid PRIMARY KEY,
    owner_id uuid NOT NULL REFERENCES users (id),
    network_id bigint,
    service_version bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    request jsonb NOT NULL,     -- the plan request, to plan again when the itinerary no longer fits
    itinerary jsonb NOT NULL,   -- as the rider saw it (routing.plan.Itinerary)
    rides jsonb NOT NULL        -- its on-demand legs: requests, connections, offers (routing.plan.live.Ride)
);
CREATE INDEX itineraries_expiry ON itineraries (expires_at);

CREATE TABLE journeys (
    id uuid PRIMARY KEY,
    rider_id uuid NOT NULL REFERENCES users (id),
    created_by uuid NOT NULL REFERENCES users (id),
    itinerary_id uuid NOT NULL,
    status text NOT NULL CHECK (status IN ('confirmed', 'at_risk', 'cancelled', 'completed')),
    departure timestamptz NOT NULL,
    arrival timestamptz NOT NULL,
    itinerary jsonb NOT NULL,
    idempotency_key text CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (created_by, idempotency_key)
);
CREATE INDEX journeys_rider ON journeys (rider_id, created_at DESC);

CREATE TABLE journey_legs (
    journey_id uuid NOT NULL REFERENCES journeys (id),
    leg integer NOT NULL CHECK (leg >= 0),
    mode text NOT NULL CHECK (mode IN ('walk', 'transit', 'bike_share', 'on_demand')),
    booking_id uuid UNIQUE REFERENCES bookings (id),
    connection_kind text CHECK (connection_kind IN ('first_mile', 'last_mile', 'direct')),
    connection_stop text,
    connection_trip text,
    connection_at timestamptz,   -- the trip's scheduled departure (first mile) or arrival (last mile)
    change_s integer CHECK (change_s >= 0),
    PRIMARY KEY (journey_id, leg),
    CHECK ((mode = 'on_demand') = (booking_id IS NOT NULL))
);
CREATE INDEX journey_legs_trip ON journey_legs (connection_trip) WHERE connection_trip IS NOT NULL;

CREATE TABLE journey_events (
    id bigserial PRIMARY KEY,
    journey_id uuid NOT NULL REFERENCES journeys (id),
    at timestamptz NOT NULL DEFAULT now(),
    kind text NOT NULL,
    detail text,
    actor uuid REFERENCES users (id)
);
CREATE INDEX journey_events_journey ON journey_events (journey_id, id);
