-- Live fan-out: every committed plan change and booking status change is announced on the
-- channel maas_events, whichever code path wrote it, so that every API process can push it to
-- its WebSocket subscribers. NOTIFY inside a transaction is delivered only when it commits, and
-- identical payloads within one transaction are sent once.
CREATE FUNCTION maas_notify_plan() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('maas_events', json_build_object(
        'type', 'plan', 'shift_id', NEW.shift_id,
        'vehicle_id', (SELECT vehicle_id FROM shifts WHERE id = NEW.shift_id),
        'stops', jsonb_array_length(NEW.stops))::text);
    RETURN NULL;
END $$;

CREATE TRIGGER shift_plans_notify AFTER INSERT OR UPDATE ON shift_plans
    FOR EACH ROW EXECUTE FUNCTION maas_notify_plan();

CREATE FUNCTION maas_notify_booking() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('maas_events', json_build_object(
        'type', 'booking', 'booking_id', NEW.id, 'status', NEW.status,
        'vehicle_id', NEW.vehicle_id, 'shift_id', NEW.shift_id)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER bookings_notify AFTER INSERT OR UPDATE OF status, shift_id ON bookings
    FOR EACH ROW EXECUTE FUNCTION maas_notify_booking();
