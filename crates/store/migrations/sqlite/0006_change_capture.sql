-- Change capture on SQLite (issue 16): rows of missions and city_snapshots changed by any
-- writer other than Switchboard's API (the sqlite3 CLI, another program) are recorded in
-- change_log; the server notices new commits with PRAGMA data_version and publishes them like
-- API writes. API writes delete the entries their own statement recorded, in the same
-- transaction (they publish themselves). AUTOINCREMENT: an id is never reused, because it is
-- the publication's idempotency key.
CREATE TABLE change_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name TEXT NOT NULL,
    row_key TEXT NOT NULL,
    changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TRIGGER missions_capture_insert AFTER INSERT ON missions
BEGIN
    INSERT INTO change_log (table_name, row_key) VALUES ('missions', CAST(NEW.id AS TEXT));
END;
CREATE TRIGGER missions_capture_update AFTER UPDATE ON missions
BEGIN
    INSERT INTO change_log (table_name, row_key) VALUES ('missions', CAST(NEW.id AS TEXT));
END;
CREATE TRIGGER missions_capture_delete AFTER DELETE ON missions
BEGIN
    INSERT INTO change_log (table_name, row_key) VALUES ('missions', CAST(OLD.id AS TEXT));
END;

CREATE TRIGGER city_snapshots_capture_insert AFTER INSERT ON city_snapshots
BEGIN
    INSERT INTO change_log (table_name, row_key) VALUES ('city_snapshots', NEW.city_id);
END;
CREATE TRIGGER city_snapshots_capture_update AFTER UPDATE ON city_snapshots
BEGIN
    INSERT INTO change_log (table_name, row_key) VALUES ('city_snapshots', NEW.city_id);
END;
CREATE TRIGGER city_snapshots_capture_delete AFTER DELETE ON city_snapshots
BEGIN
    INSERT INTO change_log (table_name, row_key) VALUES ('city_snapshots', OLD.city_id);
END;
