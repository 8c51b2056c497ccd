-- name: service_levels
-- Service levels of ended calls that joined the queue from $2 to before $3,
-- for one authority ($1) or all (NULL), grouped by $4: 'interval' (15
-- minutes), 'day' or 'month' of each call's local time. Times come from each
-- call's ledger line, which has them from the event log. $5: the short
-- abandon threshold in seconds (a caller who left within it counts on
-- neither side). Service level: answered within the window over calls less
-- short abandons; abandons count against it.
WITH c AS (
    SELECT l.queued_at AT TIME ZONE a.time_zone AS local_queued,
           answer.at AS answered_at,
           ca.deadline_at,
           extract(epoch FROM coalesce(answer.at, l.ended_at) - l.queued_at) AS wait,
           answer.at IS NULL
               AND extract(epoch FROM l.ended_at - l.queued_at) <= $5 AS short_abandon
    FROM ledger l
    JOIN authorities a ON a.id = l.authority_id
    JOIN calls ca ON ca.id = l.call_id
    CROSS JOIN LATERAL (
        SELECT CASE WHEN l.zero_rated_reason IS DISTINCT FROM 'not_answered'
                    THEN l.service_at END AS at
    ) answer
    WHERE l.kind = 'call'
      AND ($1::bigint IS NULL OR l.authority_id = $1)
      AND l.queued_at >= $2::timestamptz AND l.queued_at < $3::timestamptz
),
b AS (
    SELECT CASE $4::text
               WHEN 'interval' THEN date_bin('15 minutes', local_queued, '2000-01-01')
               WHEN 'day' THEN date_trunc('day', local_queued)
               WHEN 'month' THEN date_trunc('month', local_queued)
           END AS bucket, *
    FROM c
)
SELECT bucket, grouping(bucket) = 1 AS total,
       count(*) AS offered,
       count(answered_at) AS answered,
       count(*) FILTER (WHERE answered_at <= deadline_at) AS answered_in_window,
       count(*) FILTER (WHERE answered_at IS NULL AND NOT short_abandon) AS abandoned,
       count(*) FILTER (WHERE short_abandon) AS short_abandons,
       avg(wait) FILTER (WHERE answered_at IS NOT NULL) AS average_answer_seconds,
       max(wait) AS longest_wait_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY wait) FILTER (WHERE NOT short_abandon)
           AS p95_wait_seconds,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY wait) FILTER (WHERE NOT short_abandon)
           AS p99_wait_seconds
FROM b
GROUP BY GROUPING SETS ((bucket), ())
ORDER BY total, bucket;

-- name: minutes_by_day
-- Charged minutes and charges by local day of answer, for one authority.
SELECT date_trunc('day', l.service_at AT TIME ZONE a.time_zone)::date AS day,
       (sum(l.billable_seconds) / 60.0)::float8 AS minutes,
       sum(l.net_pence)::bigint AS net_pence
FROM ledger l JOIN authorities a ON a.id = l.authority_id
WHERE l.kind = 'call' AND l.authority_id = $1
  AND l.service_at >= $2::timestamptz AND l.service_at < $3::timestamptz
GROUP BY 1 ORDER BY 1;
