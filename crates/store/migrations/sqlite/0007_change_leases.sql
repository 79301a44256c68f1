-- Mirrors postgres/0007 (change_log leases). SQLite needs none: one process owns the file (the
-- data directory's lock), so nobody else claims its entries; it deletes an entry after
-- publishing it, and an entry left by a crash is published after the restart.
SELECT 1;
