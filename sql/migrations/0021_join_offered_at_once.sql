-- A join that can be answered at once is offered without a whole matching
-- round (see bench/README.md, 2026-12-01, "join to offer").
--
-- Before, a join with matching ran match_round: the kinds of every waiting
-- call, the free interpreters for each kind, a page of calls in dispatch
-- order, and one statement for all the offers, about 0.5 ms of the join's
-- 0.8 ms in the database. A join changes one thing: there is one more call.
-- So the join now looks only at the interpreter that call would get in a
-- round, the free eligible interpreter idle longest. If no call waiting ahead
-- of it in dispatch order (migration 0004) is one that interpreter may take
-- (and has not declined), a whole round would pair the two as well: calls
-- ahead of it never take that interpreter. The join offers it then and
-- there. Otherwise, as before, the join runs a whole round.
--
-- The new call has no declines and its caller is here. Under the matcher
-- lock, like a round. The interpreter's row is locked and checked as it is
-- now; one another transaction holds is not waited for: `again` asks the
-- process to run a round instead, as a round does when it skips a row.
--
-- The join also says whether its own call was offered (`offered`): the
-- caller is then told they are next, without reading the queue again. And
-- it notifies `signvideo_queue` only when calls start or stop waiting: a
-- call offered at once moves no one's place (sql/queries/routing.sql,
-- waiting_positions), so no process need read the places again.
--
-- join_queue is as in migration 0019 but for the matching, which is
-- match_joined_call below, `offered`, and the notice.

-- The join's own matching, in the join's transaction, its call just
-- inserted (`queued` at `queued_at`, due by `deadline`, of `new_priority`).
CREATE FUNCTION match_joined_call(
    call_id uuid,
    authority bigint,
    call_language text,
    call_specialism text,
    queued timestamptz,
    deadline timestamptz,
    new_priority smallint,
    ceiling_seconds double precision,
    offer_seconds double precision,
    spare_calls integer,
    local_interpreters bigint[],
    OUT offers integer,
    OUT again boolean,
    OUT mail jsonb,
    OUT offered boolean
) LANGUAGE plpgsql
-- As match_round (migration 0016): plans kept for the connection.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    who bigint;
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
    PERFORM pg_advisory_xact_lock(7428311);
    -- A handover waiting for a colleague comes before any call (the
    -- matcher offers handovers first: signvideo/handover.py); while one
    -- waits, the join leaves matching to the matcher.
    IF EXISTS (SELECT 1 FROM call_handovers h WHERE h.state = 'requested') THEN
        again := true;
        RETURN;
    END IF;
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
    IF who IS NULL THEN
        RETURN;  -- no one free may take it: it waits
    END IF;
    -- Is any call ahead of it one that interpreter may take? Each kind
    -- they may take is one probe of calls_waiting_kinds (a subquery with
    -- a limit, which the planner keeps as it is: as a semi-join, its
    -- generic plan read every waiting call).
    IF EXISTS (
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
              AND w.id <> match_joined_call.call_id
              AND (-w.priority,
                   dispatch_band(w.queued_at, w.deadline_at, ceiling_seconds),
                   dispatch_due(w.queued_at, w.deadline_at, ceiling_seconds),
                   w.queued_at, w.id)
                  < (-new_priority,
                     dispatch_band(queued, deadline, ceiling_seconds),
                     dispatch_due(queued, deadline, ceiling_seconds),
                     queued, match_joined_call.call_id)
              AND NOT EXISTS (SELECT 1 FROM call_declines d
                              WHERE d.call_id = w.id AND d.interpreter_id = who)
            LIMIT 1
        ) ahead
        WHERE p.user_id = who
    ) THEN
        SELECT r.offers, r.again, r.mail INTO offers, again, mail
        FROM match_round(ceiling_seconds, offer_seconds, spare_calls,
                         local_interpreters) r;
        offered := offers > 0 AND EXISTS (
            SELECT 1 FROM calls c WHERE c.id = match_joined_call.call_id AND c.state = 'offered');
        RETURN;
    END IF;
    -- Locked and checked as it is now; not waited for.
    PERFORM 1 FROM interpreter_status s
    WHERE s.user_id = who AND s.state = 'available' AND s.console_gone_at IS NULL
    FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        again := true;
        RETURN;
    END IF;
    -- The offer, as match_round makes it.
    UPDATE calls SET state = 'offered', interpreter_id = who, offered_at = now(),
                     offer_expires_at = now() + make_interval(secs => offer_seconds)
    WHERE id = match_joined_call.call_id;
    INSERT INTO call_events (call_id, kind, actor, interpreter_id, detail)
    VALUES (match_joined_call.call_id, 'offered', 'matcher', who, '{}'::jsonb);
    UPDATE interpreter_status
    SET state = 'offered', state_since = now(), call_id = match_joined_call.call_id,
        reason = NULL, wrap_up_until = NULL
    WHERE user_id = who;
    INSERT INTO interpreter_events (interpreter_id, state, reason, call_id)
    VALUES (who, 'offered', NULL, match_joined_call.call_id);
    offers := 1;
    offered := true;
    -- Its messages: the offer, then the new state.
    SELECT offer_message(match_joined_call.call_id, a.slug, a.name, call_language,
                         call_specialism, queued, offer_seconds)
    INTO offer_payload
    FROM authorities a WHERE a.id = authority;
    state_payload := jsonb_build_object('type', 'state', 'state', 'offered',
                                'call_id', match_joined_call.call_id, 'reason', NULL,
                                'since', now(), 'until', NULL);
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
END
$$;

DROP FUNCTION join_queue(bigint, bytea, text, text, uuid, jsonb, boolean,
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
    deadline timestamptz;
    queued timestamptz;
    new_priority smallint;
BEGIN
    offers := 0;
    again := false;
    mail := '[]';
    offered := false;
    PERFORM pg_advisory_xact_lock(7428312, authority::integer);
    INSERT INTO calls (authority_id, token_sha256, state, language, specialism,
                       deadline_at, caller_process)
    SELECT a.id, join_queue.token_sha256, 'queued', call_language, call_specialism,
           now() + make_interval(secs => a.answer_seconds), join_queue.caller_process
    FROM authorities a
    WHERE a.id = authority
      AND (SELECT count(*) FROM calls w
           WHERE w.authority_id = authority AND w.state IN ('queued', 'offered'))
          < a.max_queue_length
    RETURNING id, deadline_at, queued_at, calls.priority
    INTO call_id, deadline, queued, new_priority;
    IF call_id IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO call_events (call_id, kind, actor, interpreter_id, detail)
    VALUES (join_queue.call_id, 'queued', 'caller', NULL,
            detail || jsonb_build_object('deadline', deadline));
    IF match THEN
        BEGIN
            SELECT m.offers, m.again, m.mail, m.offered INTO offers, again, mail, offered
            FROM match_joined_call(join_queue.call_id, authority, call_language,
                                   call_specialism, queued, deadline, new_priority,
                                   ceiling_seconds, offer_seconds, spare_calls,
                                   local_interpreters) m;
        EXCEPTION WHEN OTHERS THEN
            match_error := SQLERRM;
            again := true;
        END;
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
