-- The join decides its call's offer before inserting it, so that a call
-- offered at once is written once (bench/README.md, 2026-12-01).
--
-- join_queue as in migration 0021 but:
-- - The queue length comes from `queue_lengths` (migration 0022), not a
--   count of the authority's live calls.
-- - The free interpreter a round would give the new call (match_joined_call
--   in 0021, now inlined here and dropped) is found before the insert: the
--   call's place in dispatch order (its priority, arrival and deadline) is
--   known before it is written. If that interpreter may take no call ahead
--   of it, the call is inserted already `offered` to them, with its two
--   events in one statement; before, it was inserted `queued` and then
--   updated (a second version of the row and of each of its index entries).
--   If a call ahead is one they may take, the call is inserted `queued` and a
--   whole round runs, as before.
-- - No subtransaction around the matching. It let the join stand if the
--   matching failed; routing.join_queue now does that by joining again
--   without matching (the first attempt rolled back whole), so a join that
--   goes well no longer pays for a subtransaction. `match_error` is always
--   null now; it stays for one release, for processes of the previous
--   version that still ask for it during a rolling restart.
-- - Joins of one authority go one at a time by the lock on its
--   queue_lengths row, not an advisory lock. Every row lock the insert will
--   need (that row, and the authority's and the specialism's for the
--   foreign keys) is taken before the matcher lock: a join waiting for an
--   answer or an end of its authority's calls to commit, or for an
--   authority being edited, must not hold up matching for everyone.
-- - The `queued` event is timed when the join is admitted, as before: not
--   after waiting for the matcher lock. Billing and service levels count the
--   wait from it (billing.call_for_rating).

DROP FUNCTION join_queue(bigint, bytea, text, text, uuid, jsonb, boolean,
                         double precision, double precision, integer, bigint[]);
DROP FUNCTION match_joined_call(uuid, bigint, text, text, timestamptz, timestamptz, smallint,
                                double precision, double precision, integer, bigint[]);

CREATE FUNCTION join_queue(
    authority bigint,
    token_sha256 bytea,
    call_language text,
    call_specialism text,
    caller_process uuid,
    detail jsonb,
    match boolean,
    ceiling_seconds double precision,
    offer_seconds double precision,
    spare_calls integer,
    local_interpreters bigint[],
    OUT call_id uuid,
    OUT offers integer,
    OUT again boolean,
    OUT mail jsonb,
    OUT match_error text,
    OUT offered boolean
) LANGUAGE plpgsql
-- As match_round (migration 0016): plans kept for the connection.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    answer_seconds integer;
    max_length integer;
    live_now integer;
    queued timestamptz := now();
    admitted timestamptz;
    deadline timestamptz;
    -- The new call's priority, written by the insert and used by the
    -- dispatch check below, so that the two agree.
    new_priority smallint := 0;
    who bigint;
    run_round boolean := false;
    to_whom text;
    offer_payload jsonb;
    state_payload jsonb;
    older jsonb;
    stored_id bigint;
BEGIN
    offers := 0;
    again := false;
    mail := '[]';
    offered := false;
    -- The locks the insert needs, before the matcher lock (below).
    SELECT q.live INTO live_now FROM queue_lengths q
    WHERE q.authority_id = authority FOR NO KEY UPDATE;
    SELECT a.answer_seconds, a.max_queue_length INTO answer_seconds, max_length
    FROM authorities a WHERE a.id = authority FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN;  -- no such authority (any more): call_id stays null
    END IF;
    IF live_now IS NULL THEN
        RAISE EXCEPTION 'authority % has no row in queue_lengths', authority;
    END IF;
    IF live_now >= max_length THEN
        RETURN;  -- call_id stays null: the queue is full
    END IF;
    IF call_specialism IS NOT NULL THEN
        PERFORM 1 FROM specialisms sp WHERE sp.code = call_specialism FOR KEY SHARE;
    END IF;
    admitted := clock_timestamp();
    deadline := queued + make_interval(secs => answer_seconds);
    call_id := gen_random_uuid();

    IF match THEN
        PERFORM pg_advisory_xact_lock(7428311);  -- the matcher lock, as a round
        -- A handover waiting for a colleague comes before any call (the
        -- matcher offers handovers first: signvideo/handover.py); while one
        -- waits, the join leaves matching to the matcher.
        IF EXISTS (SELECT 1 FROM call_handovers h WHERE h.state = 'requested') THEN
            again := true;
        ELSE
            -- The free interpreter idle longest who may take this call (the
            -- eligibility of match_round).
            SELECT s.user_id INTO who
            FROM interpreter_status s
            JOIN interpreters p ON p.user_id = s.user_id
            LEFT JOIN specialisms sp ON sp.code = call_specialism
            WHERE s.state = 'available' AND s.console_gone_at IS NULL
              AND call_language = ANY (p.languages)
              AND (call_specialism IS NULL
                   OR (call_specialism = ANY (p.specialisms)
                       AND (p.category = 'registered' OR sp.trainee_allowed)))
            ORDER BY s.state_since, s.user_id
            LIMIT 1;
        END IF;
        -- Is any call ahead of it one that interpreter may take? Each kind
        -- they may take is one probe of calls_waiting_kinds (see 0021).
        IF who IS NOT NULL AND EXISTS (
            SELECT 1
            FROM interpreters p
            CROSS JOIN LATERAL unnest(p.languages) AS l (language)
            CROSS JOIN LATERAL (
                SELECT '' AS specialism
                UNION ALL
                SELECT sp.code FROM specialisms sp
                WHERE sp.code = ANY (p.specialisms)
                  AND (p.category = 'registered' OR sp.trainee_allowed)
            ) k
            CROSS JOIN LATERAL (
                SELECT 1 FROM calls w
                WHERE w.state = 'queued' AND w.caller_gone_at IS NULL
                  AND w.language = l.language
                  AND coalesce(w.specialism, '') = k.specialism
                  AND (-w.priority,
                       dispatch_band(w.queued_at, w.deadline_at, ceiling_seconds),
                       dispatch_due(w.queued_at, w.deadline_at, ceiling_seconds),
                       w.queued_at, w.id)
                      < (-new_priority,
                         dispatch_band(queued, deadline, ceiling_seconds),
                         dispatch_due(queued, deadline, ceiling_seconds),
                         queued, join_queue.call_id)
                  AND NOT EXISTS (SELECT 1 FROM call_declines d
                                  WHERE d.call_id = w.id AND d.interpreter_id = who)
                LIMIT 1
            ) ahead
            WHERE p.user_id = who
        ) THEN
            who := NULL;
            run_round := true;
        END IF;
        IF who IS NOT NULL THEN
            -- Locked and checked as it is now; not waited for.
            PERFORM 1 FROM interpreter_status s
            WHERE s.user_id = who AND s.state = 'available' AND s.console_gone_at IS NULL
            FOR UPDATE SKIP LOCKED;
            IF NOT FOUND THEN
                who := NULL;
                again := true;
            END IF;
        END IF;
    END IF;

    IF who IS NULL THEN
        INSERT INTO calls (id, authority_id, token_sha256, state, language, specialism,
                           priority, queued_at, deadline_at, caller_process)
        VALUES (join_queue.call_id, authority, join_queue.token_sha256, 'queued',
                call_language, call_specialism, new_priority, queued, deadline,
                join_queue.caller_process);
        INSERT INTO call_events (call_id, kind, actor, interpreter_id, detail, at)
        VALUES (join_queue.call_id, 'queued', 'caller', NULL,
                detail || jsonb_build_object('deadline', deadline), admitted);
        IF run_round THEN
            SELECT r.offers, r.again, r.mail INTO offers, again, mail
            FROM match_round(ceiling_seconds, offer_seconds, spare_calls,
                             local_interpreters) r;
            offered := offers > 0 AND EXISTS (
                SELECT 1 FROM calls c WHERE c.id = join_queue.call_id AND c.state = 'offered');
        END IF;
    ELSE
        -- The offer, as match_round makes it, with the join.
        INSERT INTO calls (id, authority_id, token_sha256, state, language, specialism,
                           priority, queued_at, deadline_at, caller_process, interpreter_id,
                           offered_at, offer_expires_at)
        VALUES (join_queue.call_id, authority, join_queue.token_sha256, 'offered',
                call_language, call_specialism, new_priority, queued, deadline,
                join_queue.caller_process, who, queued,
                queued + make_interval(secs => offer_seconds));
        INSERT INTO call_events (call_id, kind, actor, interpreter_id, detail, at)
        VALUES (join_queue.call_id, 'queued', 'caller', NULL,
                detail || jsonb_build_object('deadline', deadline), admitted),
               (join_queue.call_id, 'offered', 'matcher', who, '{}'::jsonb, clock_timestamp());
        UPDATE interpreter_status
        SET state = 'offered', state_since = queued, call_id = join_queue.call_id,
            reason = NULL, wrap_up_until = NULL
        WHERE user_id = who;
        INSERT INTO interpreter_events (interpreter_id, state, reason, call_id)
        VALUES (who, 'offered', NULL, join_queue.call_id);
        offers := 1;
        offered := true;
        -- Its messages: the offer, then the new state.
        SELECT offer_message(join_queue.call_id, a.slug, a.name, call_language,
                             call_specialism, queued, offer_seconds)
        INTO offer_payload
        FROM authorities a WHERE a.id = authority;
        state_payload := jsonb_build_object('type', 'state', 'state', 'offered',
                                            'call_id', join_queue.call_id, 'reason', NULL,
                                            'since', queued, 'until', NULL);
        to_whom := 'interpreter:' || who;
        IF who = ANY (local_interpreters) THEN
            -- Older messages for that console first, taken to be sent.
            WITH taken AS (
                DELETE FROM mailbox b WHERE b.recipient = to_whom
                RETURNING b.id, b.payload
            )
            SELECT coalesce(jsonb_agg(jsonb_build_object('recipient', to_whom,
                                                         'payload', t.payload)
                                      ORDER BY t.id), '[]')
            INTO older FROM taken t;
            mail := older
                || jsonb_build_array(
                       jsonb_build_object('recipient', to_whom, 'payload', offer_payload),
                       jsonb_build_object('recipient', to_whom, 'payload', state_payload));
        ELSE
            INSERT INTO mailbox (recipient, payload) VALUES (to_whom, offer_payload)
            RETURNING id INTO stored_id;
            PERFORM pg_notify('signvideo_mail', to_whom || ' ' || stored_id);
            INSERT INTO mailbox (recipient, payload) VALUES (to_whom, state_payload)
            RETURNING id INTO stored_id;
            PERFORM pg_notify('signvideo_mail', to_whom || ' ' || stored_id);
        END IF;
    END IF;
    -- Places change when calls start or stop waiting: not when the one
    -- change is its own call, offered at once.
    IF offers > offered::integer THEN
        PERFORM pg_notify('signvideo_queue', '');  -- a round offered others, any language
    ELSIF NOT offered THEN
        PERFORM pg_notify('signvideo_queue', coalesce(call_language, ''));
    END IF;
END
$$;
