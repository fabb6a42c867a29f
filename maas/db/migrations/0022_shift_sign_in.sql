-- A shift's assignment and who drives it now, kept apart: driver_id stays whom the operator assigned
-- it to (NULL: any driver may take it), signed_in_by and signed_in_at say who is signed in now and
-- since when (both NULL when nobody is, after signing out). Until now signing in wrote the driver
-- into driver_id; those sign-ins carry over, the latest one per driver only.
ALTER TABLE shifts ADD COLUMN signed_in_by uuid REFERENCES users (id);
UPDATE shifts s SET signed_in_by = s.driver_id
    WHERE s.signed_in_at IS NOT NULL AND s.driver_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM shifts t
                      WHERE t.driver_id = s.driver_id AND t.signed_in_at IS NOT NULL
                        AND (t.signed_in_at, t.id) > (s.signed_in_at, s.id));
UPDATE shifts SET signed_in_at = NULL WHERE signed_in_by IS NULL;
ALTER TABLE shifts
    ADD CONSTRAINT shifts_sign_in_complete CHECK ((signed_in_by IS NULL) = (signed_in_at IS NULL)),
    ADD CONSTRAINT shifts_signed_in_by_assignee CHECK (driver_id IS NULL OR signed_in_by IS NULL OR signed_in_by = driver_id);
-- One shift at a time per driver, whichever process signs in: a second sign-in fails even in a race.
CREATE UNIQUE INDEX shifts_one_sign_in_per_driver ON shifts (signed_in_by) WHERE signed_in_by IS NOT NULL;
