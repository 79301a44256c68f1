-- Change capture (PostgreSQL only): rows of missions and city_snapshots changed by any writer
-- other than Switchboard's API (psql, another service) are recorded in change_log and announced
-- with NOTIFY switchboard_changes (payload: the schema). Every node listens; one node claims each
-- entry (DELETE ... RETURNING, SKIP LOCKED) and publishes it, so a change is published once.
-- API writes set switchboard.origin = 'api' in their transaction and publish themselves.
CREATE TABLE change_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name TEXT NOT NULL,
    row_key TEXT NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE FUNCTION switchboard_capture_mission() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('switchboard.origin', true), '') = 'api' THEN
        RETURN NULL;
    END IF;
    EXECUTE format('INSERT INTO %I.change_log (table_name, row_key) VALUES ($1, $2)', TG_TABLE_SCHEMA)
        USING 'missions', (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)::text;
    PERFORM pg_notify('switchboard_changes', TG_TABLE_SCHEMA);
    RETURN NULL;
END;
$$;

CREATE FUNCTION switchboard_capture_city() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('switchboard.origin', true), '') = 'api' THEN
        RETURN NULL;
    END IF;
    EXECUTE format('INSERT INTO %I.change_log (table_name, row_key) VALUES ($1, $2)', TG_TABLE_SCHEMA)
        USING 'city_snapshots', CASE WHEN TG_OP = 'DELETE' THEN OLD.city_id ELSE NEW.city_id END;
    PERFORM pg_notify('switchboard_changes', TG_TABLE_SCHEMA);
    RETURN NULL;
END;
$$;

CREATE TRIGGER missions_capture AFTER INSERT OR UPDATE OR DELETE ON missions
    FOR EACH ROW EXECUTE FUNCTION switchboard_capture_mission();
CREATE TRIGGER city_snapshots_capture AFTER INSERT OR UPDATE OR DELETE ON city_snapshots
    FOR EACH ROW EXECUTE FUNCTION switchboard_capture_city();
