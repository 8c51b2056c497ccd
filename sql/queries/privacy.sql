-- name: set_caller_contact
UPDATE calls SET caller_contact = $2 WHERE id = $1;

-- name: purge_contacts
-- Wipes callers' contact details older than $1 days; returns how many.
WITH wiped AS (
    UPDATE calls SET caller_contact = NULL
    WHERE caller_contact IS NOT NULL AND queued_at < now() - make_interval(days => $1)
    RETURNING 1
)
SELECT count(*) FROM wiped;

-- name: caller_contact
SELECT caller_contact FROM calls WHERE id = $1;
