-- Missions: the public fields, the classified ones, and the change time.
CREATE TABLE missions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    codename TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('planned', 'active', 'compromised', 'completed', 'aborted')),
    location TEXT NOT NULL,
    objective TEXT NOT NULL DEFAULT '',
    handler_notes TEXT NOT NULL DEFAULT '',
    asset_identity TEXT NOT NULL DEFAULT '',
    extraction_code TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL
);
