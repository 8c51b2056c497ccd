-- name: authority_by_slug
SELECT id, slug, name, answer_seconds, rate_pence_per_minute,
       billing_increment_seconds, minimum_charge_pence, time_zone,
       languages, opening_hours, nation, closed_on_bank_holidays, max_queue_length
FROM authorities WHERE slug = $1;

-- name: authority_closures
SELECT first_day, last_day, reason FROM authority_closures
WHERE authority_id = $1 AND last_day >= current_date - 1
ORDER BY first_day;

-- name: specialism
SELECT code, name, trainee_allowed FROM specialisms WHERE code = $1;

-- name: queue_length
SELECT count(*) FROM calls WHERE authority_id = $1 AND state IN ('queued', 'offered');

-- name: enqueue_call
INSERT INTO calls (authority_id, token_sha256, state, language, specialism,
                   deadline_at, caller_process)
VALUES ($1, $2, 'queued', $3, $4, now() + make_interval(secs => $5), $6)
RETURNING id, queued_at, deadline_at;

-- name: append_event
INSERT INTO call_events (call_id, kind, actor, interpreter_id, detail)
VALUES ($1, $2, $3, $4, $5);

-- name: call_for_update
SELECT c.id, c.state, c.interpreter_id, c.queued_at, c.answered_at,
       c.offer_expires_at, c.authority_id, c.caller_gone_at
FROM calls c WHERE c.id = $1 FOR UPDATE;

-- name: lock_matcher
-- One match at a time across every server process: the decision reads the
-- queue and the idle interpreters as they are after the previous match.
SELECT pg_advisory_xact_lock(7428311);

-- name: next_match
-- The first waiting call, in dispatch order, that some eligible interpreter
-- is free for, and the eligible interpreter idle longest. Dispatch order:
-- priority first; then callers waiting longer than the ceiling ($1 s), oldest
-- first; then callers still inside their window, nearest deadline first;
-- then callers past their window, oldest first. Callers whose connection
-- has dropped keep their place but are not offered until they return.
SELECT c.id AS call_id, i.user_id AS interpreter_id, a.slug, a.name,
       c.language, c.specialism,
       extract(epoch FROM now() - c.queued_at)::integer AS waited_seconds
FROM calls c
JOIN authorities a ON a.id = c.authority_id
LEFT JOIN specialisms sp ON sp.code = c.specialism
CROSS JOIN LATERAL (
    SELECT s.user_id FROM interpreter_status s
    JOIN interpreters p ON p.user_id = s.user_id
    WHERE s.state = 'available'
      AND s.console_gone_at IS NULL
      AND c.language = ANY (p.languages)
      AND (c.specialism IS NULL
           OR (c.specialism = ANY (p.specialisms)
               AND (p.category = 'registered' OR sp.trainee_allowed)))
      AND NOT EXISTS (SELECT 1 FROM call_declines d
                      WHERE d.call_id = c.id AND d.interpreter_id = s.user_id)
    ORDER BY s.state_since, s.user_id
    LIMIT 1
) i
WHERE c.state = 'queued' AND c.caller_gone_at IS NULL
ORDER BY c.priority DESC,
         CASE WHEN now() - c.queued_at > make_interval(secs => $1) THEN 0
              WHEN c.deadline_at >= now() THEN 1 ELSE 2 END,
         CASE WHEN now() - c.queued_at <= make_interval(secs => $1)
                   AND c.deadline_at >= now() THEN c.deadline_at
              ELSE c.queued_at END,
         c.queued_at, c.id
LIMIT 1;

-- name: waiting_positions
-- Each waiting call's place among the calls of its language, in dispatch
-- order (see next_match); calls being offered are at the front.
WITH w AS (
    SELECT c.id, row_number() OVER (
        PARTITION BY c.language
        ORDER BY (c.state = 'offered') DESC, c.priority DESC,
                 CASE WHEN now() - c.queued_at > make_interval(secs => $2) THEN 0
                      WHEN c.deadline_at >= now() THEN 1 ELSE 2 END,
                 CASE WHEN now() - c.queued_at <= make_interval(secs => $2)
                           AND c.deadline_at >= now() THEN c.deadline_at
                      ELSE c.queued_at END,
                 c.queued_at, c.id) AS position,
           c.language
    FROM calls c WHERE c.state IN ('queued', 'offered')
)
SELECT id, position, language FROM w WHERE id = ANY ($1::uuid[]);

-- name: offer_call
UPDATE calls SET state = 'offered', interpreter_id = $2, offered_at = now(),
       offer_expires_at = now() + make_interval(secs => $3)
WHERE id = $1 AND state = 'queued';

-- name: set_interpreter_state
INSERT INTO interpreter_status (user_id, state, state_since, call_id, reason, wrap_up_until)
VALUES ($1, $2, now(), $3, $4,
        CASE WHEN $2 = 'wrap_up' THEN now() + make_interval(secs => $5) END)
ON CONFLICT (user_id) DO UPDATE
SET state = EXCLUDED.state, state_since = now(), call_id = EXCLUDED.call_id,
    reason = EXCLUDED.reason, wrap_up_until = EXCLUDED.wrap_up_until
RETURNING state_since, wrap_up_until;

-- name: log_interpreter_state
INSERT INTO interpreter_events (interpreter_id, state, reason, call_id)
VALUES ($1, $2, $3, $4);

-- name: interpreter_state_for_update
SELECT state, call_id, reason, state_since, wrap_up_until, missed_offers, console_gone_at
FROM interpreter_status WHERE user_id = $1 FOR UPDATE;

-- name: interpreter_state
SELECT state, call_id, reason, state_since, wrap_up_until
FROM interpreter_status WHERE user_id = $1;

-- name: set_missed_offers
UPDATE interpreter_status SET missed_offers = $2 WHERE user_id = $1
RETURNING missed_offers;

-- name: answer_call
UPDATE calls SET state = 'answered', answered_at = now(), offer_expires_at = NULL
WHERE id = $1 AND state = 'offered' AND interpreter_id = $2 AND offer_expires_at > now()
RETURNING id;

-- name: requeue_call
-- Back to the queue with its original arrival time: the caller keeps their place.
UPDATE calls SET state = 'queued', interpreter_id = NULL, offered_at = NULL,
       offer_expires_at = NULL
WHERE id = $1 AND state = 'offered';

-- name: record_decline
INSERT INTO call_declines (call_id, interpreter_id) VALUES ($1, $2)
ON CONFLICT DO NOTHING;

-- name: expired_offers
SELECT id, interpreter_id FROM calls
WHERE state = 'offered' AND offer_expires_at <= now()
ORDER BY offer_expires_at
FOR UPDATE SKIP LOCKED;

-- name: finished_wrap_ups
SELECT user_id FROM interpreter_status
WHERE state = 'wrap_up' AND wrap_up_until <= now()
FOR UPDATE SKIP LOCKED;

-- name: finish_call
UPDATE calls SET state = 'ended', ended_at = now(), end_reason = $2,
       offer_expires_at = NULL
WHERE id = $1 AND state <> 'ended'
RETURNING ended_at,
          ceil(extract(epoch FROM now() - answered_at))::integer AS billable_seconds;

-- name: waiting_count
SELECT count(*) FROM calls WHERE state IN ('queued', 'offered');

-- name: mailbox_put
WITH m AS (INSERT INTO mailbox (recipient, payload) VALUES ($1, $2) RETURNING id)
SELECT pg_notify('signvideo_mail', $1 || ' ' || m.id) FROM m;

-- name: mailbox_take_ids
DELETE FROM mailbox WHERE id = ANY($1::bigint[])
RETURNING id, recipient, payload;

-- name: mailbox_take_recipients
DELETE FROM mailbox WHERE recipient = ANY($1::text[])
RETURNING id, recipient, payload;

-- name: mailbox_expire
DELETE FROM mailbox WHERE created_at < now() - make_interval(secs => $1);

-- name: notify_queue_changed
SELECT pg_notify('signvideo_queue', '');

-- name: relay_from_caller
-- Passes a caller's SDP or ICE to the interpreter of their answered call.
WITH c AS (SELECT interpreter_id FROM calls WHERE id = $1 AND state = 'answered'),
m AS (INSERT INTO mailbox (recipient, payload)
      SELECT 'interpreter:' || c.interpreter_id, $2 FROM c RETURNING id, recipient)
SELECT pg_notify('signvideo_mail', m.recipient || ' ' || m.id) FROM m;

-- name: relay_from_interpreter
WITH c AS (SELECT id FROM calls WHERE id = $1 AND state = 'answered' AND interpreter_id = $3),
m AS (INSERT INTO mailbox (recipient, payload)
      SELECT 'caller:' || c.id, $2 FROM c RETURNING id, recipient)
SELECT pg_notify('signvideo_mail', m.recipient || ' ' || m.id) FROM m;

-- name: call_brief
SELECT c.id, c.state, c.interpreter_id, c.offer_expires_at <= now() AS offer_expired
FROM calls c WHERE c.id = $1;

-- name: authority_of_call
SELECT a.slug, a.name FROM calls c JOIN authorities a ON a.id = c.authority_id
WHERE c.id = $1;

-- name: rate_rule
SELECT rate_pence_per_minute, billing_increment_seconds, minimum_charge_pence
FROM authorities WHERE id = $1;

-- name: call_resend
SELECT c.state, c.language, c.specialism, a.slug, a.name,
       extract(epoch FROM now() - c.queued_at)::integer AS waited_seconds,
       extract(epoch FROM c.offer_expires_at - now())::float8 AS expires_in
FROM calls c JOIN authorities a ON a.id = c.authority_id WHERE c.id = $1;
