-- name: authority_by_slug
SELECT id, slug, name, answer_seconds, rate_pence_per_minute,
       billing_increment_seconds, minimum_charge_pence, time_zone
FROM authorities WHERE slug = $1;

-- name: enqueue_call
INSERT INTO calls (authority_id, token_sha256, state)
VALUES ($1, $2, 'queued')
RETURNING id, queued_at;

-- name: append_event
INSERT INTO call_events (call_id, kind, actor, interpreter_id, detail)
VALUES ($1, $2, $3, $4, $5);

-- name: call_for_update
SELECT c.id, c.state, c.interpreter_id, c.queued_at, c.answered_at,
       c.offer_expires_at, c.authority_id
FROM calls c WHERE c.id = $1 FOR UPDATE;

-- name: lock_matcher
-- One match at a time across every server process: the decision reads the
-- queue and the idle interpreters as they are after the previous match.
SELECT pg_advisory_xact_lock(7428311);

-- name: next_match
-- First come, first served: the oldest waiting call that some available
-- interpreter has not declined, given to the interpreter idle longest.
SELECT c.id AS call_id, i.user_id AS interpreter_id, a.slug, a.name,
       extract(epoch FROM now() - c.queued_at)::integer AS waited_seconds
FROM calls c
JOIN authorities a ON a.id = c.authority_id
CROSS JOIN LATERAL (
    SELECT s.user_id FROM interpreter_status s
    WHERE s.state = 'available'
      AND NOT EXISTS (SELECT 1 FROM call_declines d
                      WHERE d.call_id = c.id AND d.interpreter_id = s.user_id)
    ORDER BY s.state_since, s.user_id
    LIMIT 1
) i
WHERE c.state = 'queued'
ORDER BY c.queued_at, c.id
LIMIT 1;

-- name: offer_call
UPDATE calls SET state = 'offered', interpreter_id = $2, offered_at = now(),
       offer_expires_at = now() + make_interval(secs => $3)
WHERE id = $1 AND state = 'queued';

-- name: set_interpreter_state
INSERT INTO interpreter_status (user_id, state, state_since, call_id)
VALUES ($1, $2, now(), $3)
ON CONFLICT (user_id) DO UPDATE
SET state = EXCLUDED.state, state_since = now(), call_id = EXCLUDED.call_id;

-- name: interpreter_state_for_update
SELECT state, call_id FROM interpreter_status WHERE user_id = $1 FOR UPDATE;

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

-- name: finish_call
UPDATE calls SET state = 'ended', ended_at = now(), end_reason = $2,
       offer_expires_at = NULL
WHERE id = $1 AND state <> 'ended'
RETURNING ended_at,
          ceil(extract(epoch FROM now() - answered_at))::integer AS billable_seconds;

-- name: waiting_positions
-- Position in the one shared queue, 1 being next, for the given calls.
SELECT id, position FROM (
    SELECT id, row_number() OVER (ORDER BY queued_at, id) AS position
    FROM calls WHERE state IN ('queued', 'offered')
) q WHERE id = ANY($1::uuid[]);

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

-- name: interpreter_state
SELECT state, call_id FROM interpreter_status WHERE user_id = $1;
