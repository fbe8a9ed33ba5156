-- Tandem metadata, format version 8: leases on background jobs.
--
-- Several nodes of one region share this store; a job (training, evaluation, copy, backup)
-- runs on the node that holds its lease. A lease is taken when free, expired, or already the
-- taker's; renewed by its holder; and released when the job is done. `generation` counts the
-- holders that took it, so a takeover after a node's death shows. Times are RFC 3339 UTC with
-- 9 fractional digits, so text order is time order.
--
-- Operational state, not customer data: metadata exports (and so backups) leave this table
-- out, and exports of formats 6 and 7 still import.

UPDATE tandem_meta SET format_version = 8 WHERE id = 1;

CREATE TABLE job_leases (
    job TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    generation INTEGER NOT NULL CHECK (generation > 0)
);
