-- Change capture exactly once through a crash (issue 16, SPEC §10): a node no longer deletes an
-- entry when it takes it, but leases it (claimed_by, lease_until) and deletes it only after it
-- published it. An entry whose lease ran out (its node died or stalled) is taken by another node;
-- the broker's idempotency key (the entry's id) makes sure it is delivered once even when the
-- first node was only slow.
ALTER TABLE change_log ADD COLUMN claimed_by TEXT;
ALTER TABLE change_log ADD COLUMN lease_until TIMESTAMPTZ;
CREATE INDEX change_log_row ON change_log (table_name, row_key, id);
