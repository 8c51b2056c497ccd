-- name: authority_by_slug
SELECT id, slug, name, answer_seconds, service_level_target_percent, time_zone,
       languages, opening_hours, nation, closed_on_bank_holidays, max_queue_length
FROM authorities WHERE slug = $1;

-- name: authority_closures
SELECT first_day, last_day, reason FROM authority_closures
WHERE authority_id = $1 AND last_day >= current_date - 1
ORDER BY first_day;

-- name: queue_length
-- Calls waiting or being offered, as kept by migration 0022's triggers.
SELECT coalesce((SELECT live FROM queue_lengths WHERE authority_id = $1), 0);

-- name: authority_for_join
-- What a join checks before the caller is queued (join_queue in migration
-- 0005 does the rest): the authority, its closures from yesterday on (first
-- days, last days and reasons, in order; null when there are none), and the
-- specialisms we know. Kept for a while by routing.AuthorityCache.
SELECT a.id, a.slug, a.name, a.time_zone, a.languages,
       a.opening_hours, a.nation, a.closed_on_bank_holidays,
       cl.first_days, cl.last_days, cl.reasons,
       ARRAY(SELECT code FROM specialisms) AS specialisms
FROM authorities a
CROSS JOIN LATERAL (
    SELECT array_agg(x.first_day ORDER BY x.first_day) AS first_days,
           array_agg(x.last_day ORDER BY x.first_day) AS last_days,
           array_agg(x.reason ORDER BY x.first_day) AS reasons
    FROM authority_closures x
    WHERE x.authority_id = a.id AND x.last_day >= current_date - 1
) cl
WHERE a.slug = $1;

-- name: join_queue
-- One round trip: see join_queue in migrations 0005, 0021 and 0023.
SELECT call_id, offers, again, mail, offered
FROM join_queue($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11);

-- name: joined_by_token
-- A join whose answer was lost with its connection, if it committed: the
-- call, and the offer and state its interpreter was to be sent.
SELECT c.id, c.state, c.interpreter_id, s.state_since,
       offer_message(c.id, a.slug, a.name, c.language, c.specialism, c.queued_at,
                     extract(epoch FROM c.offer_expires_at - now())::float8) AS offer
FROM calls c
JOIN authorities a ON a.id = c.authority_id
LEFT JOIN interpreter_status s ON s.user_id = c.interpreter_id
WHERE c.token_sha256 = $1;

-- name: match_round
-- One round trip: see match_round in migration 0005. The calls a round
-- offers stop waiting and those behind them move up, so processes are told
-- (any language), with the round's own commit.
SELECT r.offers, r.again, r.mail,
       CASE WHEN r.offers > 0 THEN pg_notify('signvideo_queue', '') IS NULL END AS told
FROM match_round($1, $2, $3, $4) r;

-- name: append_event
INSERT INTO call_events (call_id, kind, actor, interpreter_id, detail)
VALUES ($1, $2, $3, $4, $5);

-- name: call_for_update
SELECT c.id, c.state, c.interpreter_id, c.queued_at, c.answered_at,
       c.offer_expires_at, c.authority_id, c.caller_gone_at
FROM calls c WHERE c.id = $1 FOR UPDATE;

-- name: waiting_positions
-- Each waiting call's place among the waiting calls of its language, in
-- dispatch order (migration 0004; $2 the wait ceiling), 1 being next. A
-- call being offered to an interpreter has one and is about to be answered:
-- it is next itself, and it is not ahead of anyone (its offer neither
-- moves the others nor adds to their wait; a declined call comes back in
-- its own place).
WITH w AS (
    SELECT c.id, row_number() OVER (
        PARTITION BY c.language
        ORDER BY c.priority DESC,
                 dispatch_band(c.queued_at, c.deadline_at, $2),
                 dispatch_due(c.queued_at, c.deadline_at, $2),
                 c.queued_at, c.id) AS position,
           c.language
    FROM calls c WHERE c.state = 'queued'
)
SELECT id, position, language, false AS offered FROM w WHERE id = ANY ($1::uuid[])
UNION ALL
SELECT id, 1, language, true FROM calls WHERE state = 'offered' AND id = ANY ($1::uuid[]);

-- name: position_of
-- One waiting call's place, the same as waiting_positions gives, by
-- counting the waiting calls ahead of it in dispatch order rather than
-- ranking the whole queue. No row when the call is neither waiting nor
-- being offered.
WITH me AS (
    SELECT c.id, c.language, c.state = 'offered' AS offered, -c.priority AS priority,
           dispatch_band(c.queued_at, c.deadline_at, $2) AS band,
           dispatch_due(c.queued_at, c.deadline_at, $2) AS due,
           c.queued_at
    FROM calls c WHERE c.id = $1 AND c.state IN ('queued', 'offered')
)
SELECT CASE WHEN me.offered THEN 1
            ELSE 1 + (SELECT count(*) FROM calls k
                      WHERE k.state = 'queued' AND k.language = me.language
                        AND (-k.priority, dispatch_band(k.queued_at, k.deadline_at, $2),
                             dispatch_due(k.queued_at, k.deadline_at, $2), k.queued_at, k.id)
                            < (me.priority, me.band, me.due, me.queued_at, me.id))
       END AS position,
       me.language, me.offered
FROM me;

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
-- Back to the queue with its original arrival time: the caller keeps their
-- place, and is ahead of those who came later again (notified).
WITH requeued AS (
    UPDATE calls SET state = 'queued', interpreter_id = NULL, offered_at = NULL,
           offer_expires_at = NULL
    WHERE id = $1 AND state = 'offered'
    RETURNING language
)
SELECT pg_notify('signvideo_queue', coalesce(language, '')) FROM requeued;

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
WHERE id = $1 AND state <> 'ended';

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
-- The queue of the call $1's language changed (migration 0019).
SELECT pg_notify('signvideo_queue', coalesce((SELECT language FROM calls WHERE id = $1), ''));

-- name: call_brief
SELECT c.id, c.state, c.interpreter_id, c.offer_expires_at <= now() AS offer_expired
FROM calls c WHERE c.id = $1;

-- name: authority_of_call
-- The call's authority, the caller's contact if they left one, and the
-- cost centre chosen with those the interpreter may choose from.
SELECT a.slug, a.name, c.caller_contact, c.cost_centre, c.answered_at,
       cost_centres_offered(c.authority_id) AS cost_centres
FROM calls c JOIN authorities a ON a.id = c.authority_id
WHERE c.id = $1;

-- name: call_resend
-- What a reconnected console is sent again: its call's state, the offer as
-- it stands (migration 0005), and the authority.
SELECT c.state, a.slug, c.caller_contact, c.cost_centre, c.answered_at,
       cost_centres_offered(c.authority_id) AS cost_centres,
       offer_message(c.id, a.slug, a.name, c.language, c.specialism, c.queued_at,
                     extract(epoch FROM c.offer_expires_at - now())::float8) AS offer
FROM calls c JOIN authorities a ON a.id = c.authority_id WHERE c.id = $1;

-- name: cost_centre_offered
-- Whether an authority offers this cost centre to callers now.
SELECT 1 FROM cost_centres cc JOIN authorities a ON a.id = cc.authority_id
WHERE a.slug = $1 AND cc.code = $2 AND cc.active;

-- name: set_cost_centre
UPDATE calls SET cost_centre = $2 WHERE id = $1;

-- name: set_cost_centre_by_interpreter
-- The interpreter of a call sets (or clears) its cost centre, during the
-- call or within 15 minutes of its end, while its month is not invoiced.
-- The authority's row is share-locked first (in the same transaction), so
-- this and the month's invoice take turns.
UPDATE calls c SET cost_centre = $3
WHERE c.id = $1 AND c.interpreter_id = $2
  AND (c.state = 'answered' OR (c.state = 'ended' AND c.ended_at > now() - interval '15 minutes'))
  AND ($3::text IS NULL OR EXISTS (
        SELECT 1 FROM cost_centres cc
        WHERE cc.authority_id = c.authority_id AND cc.code = $3 AND cc.active))
  AND NOT EXISTS (
        SELECT 1 FROM ledger l
        JOIN invoices i ON i.authority_id = l.authority_id AND i.month = l.billing_month
        WHERE l.call_id = c.id AND l.kind = 'call')
RETURNING c.cost_centre;

-- name: cost_centres_for_callers
SELECT code, name FROM cost_centres WHERE authority_id = $1 AND active ORDER BY name;

-- name: console_gone_at
SELECT console_gone_at FROM interpreter_status WHERE user_id = $1;

-- name: authority_of_call_for_share
SELECT a.id FROM authorities a JOIN calls c ON c.authority_id = a.id
WHERE c.id = $1 FOR SHARE OF a;

-- name: quality_samples
-- A side's samples of its call's quality ($2: 'caller' or 'interpreter'), if
-- the call is connected and, for an interpreter, theirs ($3: their id; the
-- caller's socket holds only its own call).
INSERT INTO call_quality (call_id, side, frames_per_second, width, height, round_trip_ms,
                          packet_loss_percent, warning)
SELECT c.id, $2, s.fps, s.width, s.height, s.rtt, s.loss, s.warning
FROM calls c,
     unnest($4::real[], $5::integer[], $6::integer[], $7::real[], $8::real[], $9::text[])
         AS s (fps, width, height, rtt, loss, warning)
WHERE c.id = $1 AND c.state = 'answered'
  AND ($2 = 'caller' OR c.interpreter_id = $3)
RETURNING 1;

-- name: set_rating_key
UPDATE calls SET rating_key_sha256 = $2 WHERE id = $1;

-- name: rate_call_by_caller
-- The caller's rating of an answered, ended call, once, with its key.
INSERT INTO call_ratings (call_id, rating)
SELECT c.id, $3 FROM calls c
JOIN authorities a ON a.id = c.authority_id
WHERE c.id = $1 AND a.slug = $4 AND c.state = 'ended' AND c.answered_at IS NOT NULL
  AND c.rating_key_sha256 = $2
ON CONFLICT (call_id) DO NOTHING
RETURNING rating;
