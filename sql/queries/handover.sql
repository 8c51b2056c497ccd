-- Warm handovers (migration 0018; signvideo/handover.py).

-- name: handover_request
-- The call's own interpreter asks for a colleague, once at a time.
INSERT INTO call_handovers (call_id, from_interpreter)
SELECT c.id, c.interpreter_id FROM calls c
WHERE c.id = $1 AND c.state = 'answered' AND c.interpreter_id = $2
ON CONFLICT DO NOTHING
RETURNING id;

-- name: handover_open_for_update
-- The call's handover under way, if any, locked.
SELECT h.id, h.call_id, h.from_interpreter, h.state, h.to_interpreter, h.declined,
       h.offer_expires_at <= now() AS offer_expired
FROM call_handovers h
WHERE h.call_id = $1 AND h.state IN ('requested', 'offered', 'joined')
FOR UPDATE;

-- name: handover_of_incoming_for_update
-- The handover offered to, or joined by, this interpreter, locked.
SELECT h.id, h.call_id, h.from_interpreter, h.state, h.to_interpreter, h.declined,
       h.offer_expires_at <= now() AS offer_expired
FROM call_handovers h
WHERE h.to_interpreter = $1 AND h.state IN ('offered', 'joined')
FOR UPDATE;

-- name: handovers_any_waiting
SELECT EXISTS (SELECT 1 FROM call_handovers WHERE state = 'requested');

-- name: handovers_waiting
-- Requests with nobody asked yet, oldest first; each is taken by one process.
-- The call is locked with its handover, as every step locks the call first
-- (end_call locks the call, then its handover); one being changed is skipped.
SELECT h.id, h.call_id, h.from_interpreter, h.declined, c.language, c.specialism
FROM call_handovers h
JOIN calls c ON c.id = h.call_id
WHERE h.state = 'requested' AND c.state = 'answered'
ORDER BY h.requested_at
LIMIT 20
FOR UPDATE OF h, c SKIP LOCKED;

-- name: handover_candidate
-- The free interpreter idle longest who may take the call (the same rule as
-- match_round: the language, and for a specialism, holding it, and a trainee
-- only where the specialism allows trainees), not the one handing over and
-- not one who declined; locked, or skipped if another round has them.
SELECT s.user_id FROM interpreter_status s
JOIN interpreters p ON p.user_id = s.user_id
LEFT JOIN specialisms sp ON sp.code = $2
WHERE s.state = 'available' AND s.console_gone_at IS NULL
  AND s.user_id <> $3 AND s.user_id <> ALL ($4::bigint[])
  AND $1 = ANY (p.languages)
  AND ($2::text IS NULL
       OR ($2 = ANY (p.specialisms) AND (p.category = 'registered' OR sp.trainee_allowed)))
ORDER BY s.state_since, s.user_id
LIMIT 1
FOR UPDATE OF s SKIP LOCKED;

-- name: handover_offered
UPDATE call_handovers
SET state = 'offered', to_interpreter = $2, offered_at = now(),
    offer_expires_at = now() + make_interval(secs => $3)
WHERE id = $1;

-- name: handover_back_to_requested
-- The offer was declined or missed: ask someone else (not them again).
UPDATE call_handovers
SET state = 'requested', declined = declined || to_interpreter, to_interpreter = NULL,
    offered_at = NULL, offer_expires_at = NULL
WHERE id = $1;

-- name: handover_joined
UPDATE call_handovers SET state = 'joined', joined_at = now(), offer_expires_at = NULL
WHERE id = $1;

-- name: handover_finish
UPDATE call_handovers
SET state = $2, finished_at = now(), finish_reason = $3, offer_expires_at = NULL
WHERE id = $1;

-- name: handover_pass_call
-- The incoming interpreter becomes the call's interpreter.
UPDATE calls SET interpreter_id = $2 WHERE id = $1 AND state = 'answered';

-- name: handover_offers_expired
SELECT h.call_id FROM call_handovers h
WHERE h.state = 'offered' AND h.offer_expires_at <= now();

-- name: handover_incoming
-- The handover of this call offered to, or joined by, this interpreter, with
-- its `offer` message as it stands (sent when it is offered, and again to a
-- console that reconnects).
SELECT h.state,
       offer_message(c.id, a.slug, a.name, c.language, c.specialism, c.queued_at,
                     extract(epoch FROM h.offer_expires_at - now())::float8)
       || jsonb_build_object('handover', jsonb_build_object('from', u.display_name)) AS offer
FROM call_handovers h
JOIN calls c ON c.id = h.call_id
JOIN authorities a ON a.id = c.authority_id
JOIN users u ON u.id = h.from_interpreter
WHERE h.to_interpreter = $1 AND h.call_id = $2 AND h.state IN ('offered', 'joined');
