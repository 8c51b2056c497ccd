-- name: invoice_lines
-- A month's ledger lines for an invoice: calls grouped by band, rate and VAT
-- rate; the standing charge; each credit on its own.
SELECT l.kind, l.rate_band, l.rate_pence_per_minute, l.vat_basis_points,
       CASE WHEN l.kind = 'credit' THEN l.id END AS credit_id,
       min(l.credit_for) AS credit_for,
       min(l.reason) AS reason,
       min(l.author_name) AS author_name,
       count(*) AS lines,
       count(*) FILTER (WHERE l.net_pence > 0) AS charged_lines,
       coalesce(sum(l.charged_seconds), 0)::bigint AS charged_seconds,
       sum(l.net_pence)::bigint AS net_pence,
       sum(l.vat_pence)::bigint AS vat_pence
FROM ledger l
WHERE l.authority_id = $1 AND l.billing_month = $2
GROUP BY l.kind, l.rate_band, l.rate_pence_per_minute, l.vat_basis_points,
         CASE WHEN l.kind = 'credit' THEN l.id END
ORDER BY CASE l.kind WHEN 'call' THEN 1 WHEN 'standing_charge' THEN 2 ELSE 3 END,
         l.rate_band NULLS LAST, l.rate_pence_per_minute, credit_id;

-- name: uncharged_calls
-- Calls of the month not charged, by reason.
SELECT zero_rated_reason AS reason, count(*) AS calls
FROM ledger
WHERE authority_id = $1 AND billing_month = $2 AND kind = 'call' AND net_pence = 0
GROUP BY zero_rated_reason ORDER BY zero_rated_reason;

-- name: authority_for_close
-- Closing a month waits for lines being written and makes new ones wait
-- (and then move on to the next open month: ledger_line_checks).
SELECT id, slug, name, time_zone FROM authorities WHERE id = $1 FOR UPDATE;

-- name: next_month_to_issue
-- Invoices go month by month with no gaps: after the last one issued, or
-- from the first month with a ledger line or a standing charge.
SELECT coalesce(
    (SELECT (max(month) + interval '1 month')::date FROM invoices WHERE authority_id = $1),
    (SELECT least(
        (SELECT min(billing_month) FROM ledger WHERE authority_id = $1),
        (SELECT date_trunc('month', min(effective_from))::date FROM rate_cards
         WHERE authority_id = $1 AND monthly_standing_charge_pence > 0))));

-- name: invoice_of_month
SELECT * FROM invoices WHERE authority_id = $1 AND month = $2;

-- name: card_on
SELECT * FROM rate_cards
WHERE authority_id = $1 AND effective_from <= $2
ORDER BY effective_from DESC LIMIT 1;

-- name: insert_standing_charge
INSERT INTO ledger (authority_id, kind, billing_month, service_at, rate_card_id, net_pence,
                    vat_basis_points)
VALUES ($1, 'standing_charge', $2, $3, $4, $5, $6)
ON CONFLICT (authority_id, billing_month) WHERE kind = 'standing_charge' DO NOTHING;

-- name: insert_invoice
INSERT INTO invoices (authority_id, month, number, issued_by, net_pence, vat_pence,
                      gross_pence, lines)
SELECT $1, $2, coalesce(max(number), 0) + 1, $3, $4::bigint, $5::bigint, $4::bigint + $5::bigint, $6
FROM invoices WHERE authority_id = $1
RETURNING *;

-- name: invoices_listed
SELECT i.*, upper(a.slug) || '-' || lpad(i.number::text, 4, '0') AS reference
FROM invoices i JOIN authorities a ON a.id = i.authority_id
WHERE i.authority_id = $1 ORDER BY i.month DESC;

-- name: open_months
-- Months with lines and no invoice yet.
SELECT l.billing_month AS month, count(*) AS lines, sum(l.net_pence)::bigint AS net_pence,
       sum(l.vat_pence)::bigint AS vat_pence
FROM ledger l
WHERE l.authority_id = $1
  AND NOT EXISTS (SELECT 1 FROM invoices i
                  WHERE i.authority_id = l.authority_id AND i.month = l.billing_month)
GROUP BY l.billing_month ORDER BY l.billing_month DESC;

-- name: line_for_credit
SELECT l.id, l.authority_id, l.kind, l.billing_month, l.net_pence, l.vat_basis_points,
       l.call_id,
       l.net_pence + coalesce((SELECT sum(c.net_pence) FROM ledger c
                                WHERE c.credit_for = l.id), 0) AS remaining_pence
FROM ledger l WHERE l.id = $1;

-- name: insert_credit
INSERT INTO ledger (authority_id, kind, call_id, billing_month, service_at, net_pence,
                    vat_basis_points, credit_for, reason, author_id, author_name)
VALUES ($1, 'credit', $2, $3, now(), $4, $5, $6, $7, $8, $9)
RETURNING id, billing_month;

-- name: authority_by_id
SELECT id, slug, name, time_zone FROM authorities WHERE id = $1;
