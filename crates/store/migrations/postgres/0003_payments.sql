-- Payments: one row per request to the payment demo; the status moves pending -> succeeded|failed
-- once, and the result is pushed to the connection named by socket_id.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    amount DOUBLE PRECISION NOT NULL CHECK (amount > 0),
    socket_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX payments_pending ON payments (status) WHERE status = 'pending';
