-- name: call_for_rating
-- An ended call's times as its event log has them: joined, first answered
-- (a handover keeps the charge running), ended, why, and for a call ended by
-- a lost connection, when it was lost.
SELECT c.authority_id, a.time_zone, a.nation,
       min(e.at) FILTER (WHERE e.kind = 'queued') AS queued_at,
       min(e.at) FILTER (WHERE e.kind = 'answered') AS answered_at,
       max(e.at) FILTER (WHERE e.kind = 'ended') AS ended_at,
       (array_agg(e.detail ->> 'reason' ORDER BY e.id DESC)
            FILTER (WHERE e.kind = 'ended'))[1] AS end_reason,
       ((array_agg(e.detail ->> 'lost_at' ORDER BY e.id DESC)
            FILTER (WHERE e.kind = 'ended'))[1])::timestamptz AS lost_at
FROM calls c
JOIN authorities a ON a.id = c.authority_id
JOIN call_events e ON e.call_id = c.id
WHERE c.id = $1
GROUP BY c.authority_id, a.time_zone, a.nation;

-- name: rate_cards_of
SELECT * FROM rate_cards WHERE authority_id = $1 ORDER BY effective_from;

-- name: insert_call_line
-- A call's line; a second rating of the same call adds nothing.
INSERT INTO ledger (authority_id, kind, call_id, queued_at, ended_at, billing_month,
                    service_at, rate_card_id, rate_band, rate_pence_per_minute,
                    billing_increment_seconds, minimum_charge_pence, billable_seconds,
                    charged_seconds, net_pence, vat_basis_points, zero_rated_reason)
VALUES ($1, 'call', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (call_id) WHERE kind = 'call' DO NOTHING
RETURNING id;

-- name: usage_lines
-- The usage export (docs/exports.md lists its columns; they do not change
-- meaning). One authority's ledger lines whose billing month is from $2 to $3
-- and whose service was from $4 to before $5: a month's invoice is
-- ($2 = $3 = that month, $4 and $5 infinite); a range of days is (months
-- infinite, $4 and $5 the local midnights). Local times are in the session's
-- time zone, which the export sets to the authority's.
SELECT l.id AS line_id,
       l.kind AS line_type,
       to_char(l.billing_month, 'YYYY-MM') AS billing_month,
       upper(a.slug) || '-' || lpad(i.number::text, 4, '0') AS invoice_number,
       a.slug AS authority,
       l.call_id,
       c.cost_centre,
       c.language,
       c.specialism,
       to_char(l.queued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS queued_at_utc,
       to_char(l.queued_at, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM') AS queued_at_local,
       to_char(answer.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS answered_at_utc,
       to_char(answer.at, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM') AS answered_at_local,
       to_char(l.ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS ended_at_utc,
       to_char(l.ended_at, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM') AS ended_at_local,
       ceil(extract(epoch FROM coalesce(answer.at, l.ended_at) - l.queued_at))::integer
           AS queue_wait_seconds,
       l.billable_seconds,
       l.charged_seconds,
       l.rate_band,
       l.rate_pence_per_minute,
       l.billing_increment_seconds,
       l.minimum_charge_pence,
       l.net_pence,
       to_char(l.vat_basis_points / 100.0, 'FM990.00') AS vat_rate_percent,
       l.vat_pence,
       l.net_pence + l.vat_pence AS gross_pence,
       c.end_reason,
       l.zero_rated_reason,
       l.credit_for AS credit_for_line,
       export_text(l.reason) AS credit_reason,
       export_text(l.author_name) AS credited_by,
       to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS recorded_at_utc
FROM ledger l
JOIN authorities a ON a.id = l.authority_id
LEFT JOIN calls c ON c.id = l.call_id
LEFT JOIN invoices i ON i.authority_id = l.authority_id AND i.month = l.billing_month
CROSS JOIN LATERAL (
    SELECT CASE WHEN l.kind = 'call' AND l.zero_rated_reason IS DISTINCT FROM 'not_answered'
                THEN l.service_at END AS at
) answer
WHERE l.authority_id = $1
  AND l.billing_month BETWEEN $2::date AND $3::date
  AND l.service_at >= $4::timestamptz AND l.service_at < $5::timestamptz
ORDER BY l.service_at, l.id;

-- name: usage_totals
-- What usage_lines adds up to, with the same parameters.
SELECT count(*) AS lines, coalesce(sum(net_pence), 0)::bigint AS net_pence,
       coalesce(sum(vat_pence), 0)::bigint AS vat_pence,
       coalesce(sum(net_pence + vat_pence), 0)::bigint AS gross_pence
FROM ledger
WHERE authority_id = $1
  AND billing_month BETWEEN $2::date AND $3::date
  AND service_at >= $4::timestamptz AND service_at < $5::timestamptz;

-- name: authorities_listed
-- The authorities this connection may see, by name (for an authority's
-- staff, row-level security leaves their own).
SELECT id, slug, name, time_zone FROM authorities ORDER BY name;

-- name: unrated_calls
-- Calls ended in the last $2 seconds with no ledger line: a rating that
-- failed is tried again (the call's end stands either way).
SELECT c.id FROM calls c
WHERE c.state = 'ended' AND c.ended_at > now() - make_interval(secs => $2)
  AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.call_id = c.id AND l.kind = 'call')
ORDER BY c.ended_at DESC
LIMIT $1;
