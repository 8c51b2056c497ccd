-- name: staffing
-- Interpreters with a live console, by language: on duty (able to take a
-- call now or soon) and idle now.
SELECT lang AS language,
       count(*) FILTER (WHERE s.state IN ('available', 'offered', 'in_call', 'wrap_up'))
           AS on_duty,
       count(*) FILTER (WHERE s.state = 'available') AS idle
FROM interpreter_status s
JOIN interpreters p ON p.user_id = s.user_id
CROSS JOIN LATERAL unnest(p.languages) AS lang
WHERE s.console_gone_at IS NULL
GROUP BY lang;

-- name: recent_handle_seconds
SELECT avg(extract(epoch FROM ended_at - answered_at))::float8 FROM (
    SELECT ended_at, answered_at FROM calls
    WHERE answered_at IS NOT NULL AND ended_at IS NOT NULL
    ORDER BY ended_at DESC LIMIT 50
) recent;

-- name: waiting_by_language
-- Callers waiting for an interpreter; those being offered to one have theirs
-- (the same count as a newcomer's place: routing.sql, waiting_positions).
SELECT count(*) FROM calls WHERE state = 'queued' AND language = $1;

-- name: queues_overview
-- Per authority: who is waiting, for how long, the nearest deadline, and the
-- interpreters who could take its calls. $1: one authority's id, or null for all.
SELECT a.slug, a.name, a.answer_seconds, a.languages,
       count(c.id) AS waiting,
       coalesce(max(extract(epoch FROM now() - c.queued_at)), 0)::integer AS longest_wait_seconds,
       min(c.deadline_at) AS oldest_deadline,
       (SELECT count(DISTINCT s.user_id) FROM interpreter_status s
        JOIN interpreters p ON p.user_id = s.user_id
        WHERE s.console_gone_at IS NULL AND s.state <> 'offline'
          AND p.languages && a.languages) AS eligible_signed_in,
       (SELECT count(DISTINCT s.user_id) FROM interpreter_status s
        JOIN interpreters p ON p.user_id = s.user_id
        WHERE s.console_gone_at IS NULL AND s.state = 'available'
          AND p.languages && a.languages) AS eligible_available
FROM authorities a
LEFT JOIN calls c ON c.authority_id = a.id AND c.state IN ('queued', 'offered')
WHERE $1::bigint IS NULL OR a.id = $1
GROUP BY a.id
ORDER BY a.slug;
