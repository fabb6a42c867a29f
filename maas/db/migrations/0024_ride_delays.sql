-- Delay alerts from GPS estimates (maas/eta.py): per ride and stop, the level last alerted, in whole
-- steps of rules.delay_alert_s (0: on time). A new alert is pushed only when the level rises, and
-- "on time again" once when it falls back to 0, so that every ping does not alert again. Each alert
-- is also a booking event, with the numbers in its reason.
CREATE TABLE ride_delays (
    booking_id uuid NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    stop text NOT NULL CHECK (stop IN ('pickup', 'dropoff')),
    level integer NOT NULL CHECK (level >= 0),
    late_s integer NOT NULL,
    eta timestamptz NOT NULL,
    planned_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (booking_id, stop)
);
