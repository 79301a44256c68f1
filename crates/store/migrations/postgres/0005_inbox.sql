-- Durable per-user inbox: publications to `user:<sub>` kept until acknowledged or expired.
-- Offsets are per user, assigned from inbox_seq; the epoch changes only if this table is lost.
-- ("offset" is a reserved word in PostgreSQL, hence the quotes.)
CREATE TABLE inbox_seq (
    user_id TEXT PRIMARY KEY NOT NULL,
    last_offset BIGINT NOT NULL,
    epoch TEXT NOT NULL
);
CREATE TABLE inbox (
    user_id TEXT NOT NULL,
    "offset" BIGINT NOT NULL,
    event TEXT NOT NULL,
    data TEXT NOT NULL,           -- JSON
    created_at_ms BIGINT NOT NULL,
    acked BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (user_id, "offset")
);
CREATE INDEX inbox_pending ON inbox (user_id, acked, "offset");
CREATE INDEX inbox_created ON inbox (created_at_ms);
