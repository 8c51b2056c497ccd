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

-- name: authority_for_join
-- The authority, the transaction's clock, and its closures from yesterday on
-- (first days, last days and reasons, in order; null when there are none).
-- Takes the authority's join lock: joins to one queue go one at a time, so
-- that its limit holds (the next statement sees every join committed before).
SELECT a.id, a.slug, a.name, a.answer_seconds, a.time_zone, a.languages,
       a.opening_hours, a.nation, a.closed_on_bank_holidays, a.max_queue_length,
       now() AS now, cl.first_days, cl.last_days, cl.reasons,
       pg_advisory_xact_lock(7428312, a.id::integer) IS NULL AS locked
FROM authorities a
CROSS JOIN LATERAL (
    SELECT array_agg(x.first_day ORDER BY x.first_day) AS first_days,
           array_agg(x.last_day ORDER BY x.first_day) AS last_days,
           array_agg(x.reason ORDER BY x.first_day) AS reasons
    FROM authority_closures x
    WHERE x.authority_id = a.id AND x.last_day >= current_date - 1
) cl
WHERE a.slug = $1;

-- name: enqueue_call
-- Puts a call in the queue unless the authority's queue holds $7 calls
-- already (no row then): the call, its `queued` event ($8, the event's
-- detail, gains the deadline) and the queue-changed notice. Run under the
-- authority's join lock (authority_for_join), so that the count holds.
WITH room AS (
    SELECT count(*) < $7 AS ok FROM calls
    WHERE authority_id = $1 AND state IN ('queued', 'offered')
),
c AS (
    INSERT INTO calls (authority_id, token_sha256, state, language, specialism,
                       deadline_at, caller_process)
    SELECT $1, $2, 'queued', $3, $4, now() + make_interval(secs => $5), $6
    FROM room WHERE room.ok
    RETURNING id, queued_at, deadline_at
),
logged AS (
    INSERT INTO call_events (call_id, kind, actor, interpreter_id, detail)
    SELECT c.id, 'queued', 'caller', NULL,
           $8::jsonb || jsonb_build_object('deadline', c.deadline_at)
    FROM c
),
notified AS (SELECT pg_notify('signvideo_queue', '') FROM c)
SELECT c.id, c.queued_at, c.deadline_at, (SELECT count(*) FROM notified) AS notified
FROM c;

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

-- name: free_interpreters_by_kind
-- For each kind of waiting call (language and specialism), the interpreters
-- free now who may take it, idle longest first. Free: available with their
-- console attached. (make_offers checks again, under row locks, that each
-- interpreter it offers a call to is still free.)
-- Eligibility: the interpreter signs the language; for a specialism, they
-- hold it, and a trainee only where the specialism allows trainees.
WITH free AS MATERIALIZED (
    SELECT s.user_id, s.state_since, p.languages, p.specialisms, p.category
    FROM interpreter_status s
    JOIN interpreters p ON p.user_id = s.user_id
    WHERE s.state = 'available' AND s.console_gone_at IS NULL
),
kinds AS (
    -- SELECT DISTINCT, as a loose scan of calls_waiting_kinds: one probe a kind.
    WITH RECURSIVE k (language, specialism) AS (
        (SELECT c.language, coalesce(c.specialism, '') FROM calls c
         WHERE c.state = 'queued' AND c.caller_gone_at IS NULL
         ORDER BY 1, 2 LIMIT 1)
        UNION ALL
        SELECT n.language, n.specialism FROM k
        CROSS JOIN LATERAL (
            SELECT c.language, coalesce(c.specialism, '') AS specialism FROM calls c
            WHERE c.state = 'queued' AND c.caller_gone_at IS NULL
              AND (c.language, coalesce(c.specialism, '')) > (k.language, k.specialism)
            ORDER BY 1, 2 LIMIT 1
        ) n
    )
    SELECT language, nullif(specialism, '') AS specialism FROM k
)
SELECT k.language, k.specialism,
       array_agg(f.user_id ORDER BY f.state_since, f.user_id) AS interpreters
FROM kinds k
LEFT JOIN specialisms sp ON sp.code = k.specialism
JOIN free f
  ON k.language = ANY (f.languages)
 AND (k.specialism IS NULL
      OR (k.specialism = ANY (f.specialisms)
          AND (f.category = 'registered' OR sp.trainee_allowed)))
GROUP BY k.language, k.specialism;

-- name: calls_in_dispatch_order
-- $4 waiting calls, after the first $5, of the kinds given ($2 languages, $3
-- specialisms, '' for none), in dispatch order (migration 0004; $1 the wait
-- ceiling in seconds), with the interpreters who declined each. Callers whose
-- connection has dropped keep their place but are not offered until they
-- return.
SELECT w.id, w.language, w.specialism, w.slug, w.name, w.waited_seconds, now() AS now,
       ARRAY(SELECT d.interpreter_id FROM call_declines d WHERE d.call_id = w.id) AS declined
FROM (
    SELECT c.id, c.language, c.specialism, a.slug, a.name, c.priority, c.queued_at,
           extract(epoch FROM now() - c.queued_at)::integer AS waited_seconds,
           dispatch_band(c.queued_at, c.deadline_at, $1) AS band,
           dispatch_due(c.queued_at, c.deadline_at, $1) AS due
    FROM calls c
    JOIN authorities a ON a.id = c.authority_id
    WHERE c.state = 'queued' AND c.caller_gone_at IS NULL
      AND (c.language, coalesce(c.specialism, ''))
          IN (SELECT * FROM unnest($2::text[], $3::text[]))
    ORDER BY c.priority DESC, band, due, c.queued_at, c.id
    LIMIT $4 OFFSET $5
) w
ORDER BY w.priority DESC, w.band, w.due, w.queued_at, w.id;

-- name: waiting_positions
-- Each waiting call's place among the calls of its language, in dispatch
-- order (migration 0004; $2 the wait ceiling); calls being offered are at
-- the front.
WITH w AS (
    SELECT c.id, row_number() OVER (
        PARTITION BY c.language
        ORDER BY (c.state = 'offered') DESC, c.priority DESC,
                 dispatch_band(c.queued_at, c.deadline_at, $2),
                 dispatch_due(c.queued_at, c.deadline_at, $2),
                 c.queued_at, c.id) AS position,
           c.language
    FROM calls c WHERE c.state IN ('queued', 'offered')
)
SELECT id, position, language FROM w WHERE id = ANY ($1::uuid[]);

-- name: position_of
-- One waiting call's place among the calls of its language, the same as
-- waiting_positions gives (1 = next), by counting the calls ahead of it in
-- dispatch order rather than ranking the whole queue. No row when the call
-- is not waiting.
WITH keyed AS (
    SELECT c.id, c.language,
           c.state <> 'offered' AS not_offered, -c.priority AS priority,
           dispatch_band(c.queued_at, c.deadline_at, $2) AS band,
           dispatch_due(c.queued_at, c.deadline_at, $2) AS due,
           c.queued_at
    FROM calls c WHERE c.state IN ('queued', 'offered')
),
me AS (SELECT * FROM keyed WHERE id = $1)
SELECT 1 + (SELECT count(*) FROM keyed k
            WHERE k.language = me.language
              AND (k.not_offered, k.priority, k.band, k.due, k.queued_at, k.id)
                  < (me.not_offered, me.priority, me.band, me.due, me.queued_at, me.id)
           ) AS position,
       me.language
FROM me;

-- name: make_offers
-- Offers calls to interpreters, pairs given as arrays: $1 call ids, $2
-- interpreter ids, $3 each offer message and $4 each interpreter's new state
-- message (JSON text), $5 the seconds an offer stands. A call whose caller
-- left or dropped since it was read is skipped, and so is an interpreter
-- who is no longer free: both rows are locked and checked as they are now.
-- A row another transaction is changing is skipped rather than waited for
-- (SKIP LOCKED: waiting on rows in the plan's order could deadlock with a
-- sweep that changes many rows); the round reports the pairs it skipped.
-- Each offer is logged, the interpreter's state changed and logged, and both
-- messages posted, the offer first; returns the messages (id, recipient,
-- payload), which a process holding the recipient may send at once.
WITH pairs AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[])
        AS p (call_id, interpreter_id, offer, state_message)
),
waiting AS (
    SELECT c.id FROM calls c
    WHERE c.id = ANY ($1::uuid[]) AND c.state = 'queued' AND c.caller_gone_at IS NULL
    FOR UPDATE SKIP LOCKED
),
free AS (
    SELECT s.user_id FROM interpreter_status s
    WHERE s.user_id = ANY ($2::bigint[]) AND s.state = 'available'
      AND s.console_gone_at IS NULL
    FOR UPDATE SKIP LOCKED
),
ok AS MATERIALIZED (
    SELECT p.* FROM pairs p
    JOIN waiting w ON w.id = p.call_id
    JOIN free f ON f.user_id = p.interpreter_id
),
offered AS (
    UPDATE calls c
    SET state = 'offered', interpreter_id = ok.interpreter_id, offered_at = now(),
        offer_expires_at = now() + make_interval(secs => $5)
    FROM ok WHERE c.id = ok.call_id
),
logged AS (
    INSERT INTO call_events (call_id, kind, actor, interpreter_id, detail)
    SELECT call_id, 'offered', 'matcher', interpreter_id, '{}'::jsonb FROM ok
),
states AS (
    INSERT INTO interpreter_status (user_id, state, state_since, call_id, reason, wrap_up_until)
    SELECT interpreter_id, 'offered', now(), call_id, NULL, NULL FROM ok
    ON CONFLICT (user_id) DO UPDATE
    SET state = EXCLUDED.state, state_since = EXCLUDED.state_since,
        call_id = EXCLUDED.call_id, reason = NULL, wrap_up_until = NULL
),
states_logged AS (
    INSERT INTO interpreter_events (interpreter_id, state, reason, call_id)
    SELECT interpreter_id, 'offered', NULL, call_id FROM ok
),
mail AS (
    INSERT INTO mailbox (recipient, payload)
    SELECT 'interpreter:' || interpreter_id, offer::jsonb FROM ok
    UNION ALL
    SELECT 'interpreter:' || interpreter_id, state_message::jsonb FROM ok
    RETURNING id, recipient, payload
)
SELECT id, recipient, payload, pg_notify('signvideo_mail', recipient || ' ' || id) IS NULL
FROM mail;

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

-- name: mailbox_has_mail
-- Whether anything waits for these recipients (read without taking it).
SELECT EXISTS (SELECT 1 FROM mailbox WHERE recipient = ANY($1::text[]));

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
