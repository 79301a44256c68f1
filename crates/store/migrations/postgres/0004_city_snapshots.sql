-- The latest metrics snapshot of each city, as posted by a data pipeline.
CREATE TABLE city_snapshots (
    city_id TEXT PRIMARY KEY NOT NULL,
    metrics TEXT NOT NULL,        -- JSON object of metric name -> finite number
    updated_at TEXT NOT NULL
);
