-- name: insert_charge
-- Exactly one charge per call: a second end of the same call adds nothing.
INSERT INTO charges (call_id, authority_id, billable_seconds, rate_pence_per_minute,
                     billing_increment_seconds, minimum_charge_pence, charge_pence)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (call_id) DO NOTHING
RETURNING id;

-- name: usage_rows
-- Every finished call of one authority that joined the queue between two
-- local dates (inclusive), in the authority's own time zone.
SELECT c.id AS call_id, a.slug AS authority,
       c.queued_at, c.answered_at, c.ended_at,
       ceil(extract(epoch FROM coalesce(c.answered_at, c.ended_at) - c.queued_at))::integer
           AS queue_wait_seconds,
       coalesce(ch.billable_seconds, 0) AS billable_seconds,
       coalesce(ch.charge_pence, 0) AS charge_pence,
       c.end_reason,
       ch.rate_pence_per_minute, ch.billing_increment_seconds
FROM calls c
JOIN authorities a ON a.id = c.authority_id
LEFT JOIN charges ch ON ch.call_id = c.id
WHERE c.authority_id = $1
  AND c.state = 'ended'
  AND c.queued_at >= ($2::date)::timestamp AT TIME ZONE a.time_zone
  AND c.queued_at < ($3::date + 1)::timestamp AT TIME ZONE a.time_zone
ORDER BY c.queued_at, c.id;

-- name: authorities_listed
-- The authorities this connection may see, by name (for an authority's
-- staff, row-level security leaves their own).
SELECT id, slug, name FROM authorities ORDER BY name;
