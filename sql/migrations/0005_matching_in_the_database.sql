-- A routing decision as one statement: the matching round and the join (with
-- its own round) are database functions, so each costs one round trip and
-- one commit however many queries it runs (see bench/README.md).

-- The `offer` message a console is sent for a call (the call's columns and
-- its authority's), as it stands now. An expression, so the planner inlines it.
CREATE FUNCTION offer_message(call_id uuid, authority_slug text, authority_name text,
                              language text, specialism text, queued_at timestamptz,
                              expires_in double precision)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'type', 'offer',
        'call_id', call_id,
        'authority', jsonb_build_object('slug', authority_slug, 'name', authority_name),
        'language', language,
        'specialism', specialism,
        'waited_seconds', extract(epoch FROM now() - queued_at)::integer,
        'expires_in', greatest(expires_in, 0))
$$;

-- One matching round, under the matcher lock (one round at a time across
-- every server process). The free interpreters, grouped by the kinds of
-- waiting call they may take (idle longest first); then the waiting calls of
-- those kinds in dispatch order (migration 0004), a page at a time, each
-- paired greedily with the first free eligible interpreter who has not
-- declined it and is not paired yet (the same as matching one pair at a
-- time), until every free interpreter is paired or no call is left; then all
-- the offers in one statement, which locks and rechecks the paired rows.
--
-- Messages for interpreters whose consoles the calling process holds
-- (`local_interpreters`) are not stored: they are returned in `mail`
-- (a JSON array of {recipient, payload}), after any older messages still
-- stored for those recipients, which this takes (deletes) so that the caller
-- can send everything in order straight after the commit. Should that
-- process die before sending, those consoles die with it, and a console that
-- reconnects is told its state and its offer afresh. Messages for other
-- consoles are stored and notified (mailbox.py).
--
-- `offers` counts the offers made; `again` says that a pair was left out
-- because its call or interpreter was changing meanwhile (SKIP LOCKED), so
-- another round should run.
CREATE FUNCTION match_round(
    ceiling_seconds double precision,
    offer_seconds double precision,
    spare_calls integer,
    local_interpreters bigint[],
    OUT offers integer,
    OUT again boolean,
    OUT mail jsonb
) LANGUAGE plpgsql AS $$
DECLARE
    -- Kinds of call, as parallel arrays; each kind's eligible free
    -- interpreters are free_ids[kind_first[k] .. kind_last[k]].
    kind_languages text[] := '{}';
    kind_specialisms text[] := '{}';
    kind_first integer[] := '{}';
    kind_last integer[] := '{}';
    free_ids bigint[] := '{}';
    free_count integer;
    taken bigint[] := '{}';
    seen uuid[] := '{}';
    pair_calls uuid[] := '{}';
    pair_interpreters bigint[] := '{}';
    page integer;
    skip integer := 0;
    read integer;
    kind record;
    c record;
    k integer;
    i integer;
    who bigint;
    stored_count bigint;
BEGIN
    offers := 0;
    again := false;
    mail := '[]';
    PERFORM pg_advisory_xact_lock(7428311);

    -- Free: available with their console attached. Eligible for a kind: the
    -- interpreter signs the language; for a specialism, they hold it, and a
    -- trainee only where the specialism allows trainees.
    FOR kind IN
        WITH free AS MATERIALIZED (
            SELECT s.user_id, s.state_since, p.languages, p.specialisms, p.category
            FROM interpreter_status s
            JOIN interpreters p ON p.user_id = s.user_id
            WHERE s.state = 'available' AND s.console_gone_at IS NULL
        ),
        kinds AS (
            -- SELECT DISTINCT, as a loose scan of calls_waiting_kinds: one probe a kind.
            WITH RECURSIVE q (language, specialism) AS (
                (SELECT w.language, coalesce(w.specialism, '') FROM calls w
                 WHERE w.state = 'queued' AND w.caller_gone_at IS NULL
                 ORDER BY 1, 2 LIMIT 1)
                UNION ALL
                SELECT n.language, n.specialism FROM q
                CROSS JOIN LATERAL (
                    SELECT w.language, coalesce(w.specialism, '') AS specialism FROM calls w
                    WHERE w.state = 'queued' AND w.caller_gone_at IS NULL
                      AND (w.language, coalesce(w.specialism, '')) > (q.language, q.specialism)
                    ORDER BY 1, 2 LIMIT 1
                ) n
            )
            SELECT q.language, q.specialism FROM q
        )
        SELECT ks.language, ks.specialism,
               array_agg(f.user_id ORDER BY f.state_since, f.user_id) AS interpreters
        FROM kinds ks
        LEFT JOIN specialisms sp ON sp.code = nullif(ks.specialism, '')
        JOIN free f
          ON ks.language = ANY (f.languages)
         AND (ks.specialism = ''
              OR (ks.specialism = ANY (f.specialisms)
                  AND (f.category = 'registered' OR sp.trainee_allowed)))
        GROUP BY ks.language, ks.specialism
    LOOP
        kind_languages := kind_languages || kind.language;
        kind_specialisms := kind_specialisms || kind.specialism;
        kind_first := kind_first || (cardinality(free_ids) + 1);
        free_ids := free_ids || kind.interpreters;
        kind_last := kind_last || cardinality(free_ids);
    END LOOP;
    IF cardinality(free_ids) = 0 THEN
        RETURN;
    END IF;
    SELECT count(DISTINCT f.id) INTO free_count FROM unnest(free_ids) AS f (id);
    -- A page has a call for every free interpreter and some to spare for
    -- calls that free interpreters have declined.
    page := free_count + spare_calls;

    <<pages>>
    LOOP
        read := 0;
        -- Callers whose connection has dropped keep their place but are not
        -- offered until they return.
        FOR c IN
            SELECT w.id, w.language, w.specialism,
                   ARRAY(SELECT d.interpreter_id FROM call_declines d
                         WHERE d.call_id = w.id) AS declined
            FROM unnest(kind_languages, kind_specialisms) AS ks (language, specialism)
            -- Each kind's first calls, read from calls_waiting_kinds.
            CROSS JOIN LATERAL (
                SELECT x.id, x.language, ks.specialism, x.priority, x.queued_at,
                       dispatch_band(x.queued_at, x.deadline_at, ceiling_seconds) AS band,
                       dispatch_due(x.queued_at, x.deadline_at, ceiling_seconds) AS due
                FROM calls x
                WHERE x.state = 'queued' AND x.caller_gone_at IS NULL
                  AND x.language = ks.language AND coalesce(x.specialism, '') = ks.specialism
                ORDER BY x.priority DESC, band, due, x.queued_at, x.id
                LIMIT page + skip
            ) w
            ORDER BY w.priority DESC, w.band, w.due, w.queued_at, w.id
            LIMIT page OFFSET skip
        LOOP
            read := read + 1;
            -- Pages are read one statement each; a call put back in the queue
            -- meanwhile moves the rest down a place, so one may come twice.
            IF skip > 0 THEN
                CONTINUE WHEN c.id = ANY (seen);
            END IF;
            seen := seen || c.id;
            k := 1;
            WHILE kind_languages[k] <> c.language OR kind_specialisms[k] <> c.specialism LOOP
                k := k + 1;
            END LOOP;
            FOR i IN kind_first[k] .. kind_last[k] LOOP
                who := free_ids[i];
                IF who <> ALL (taken) AND who <> ALL (c.declined) THEN
                    taken := taken || who;
                    pair_calls := pair_calls || c.id;
                    pair_interpreters := pair_interpreters || who;
                    EXIT;
                END IF;
            END LOOP;
            EXIT pages WHEN cardinality(taken) >= free_count;
        END LOOP;
        EXIT pages WHEN read < page;
        skip := skip + page;
    END LOOP;
    IF cardinality(pair_calls) = 0 THEN
        RETURN;
    END IF;

    -- The offers. A call whose caller left or dropped since it was read is
    -- skipped, and so is an interpreter who is no longer free: both rows are
    -- locked and checked as they are now. A row another transaction is
    -- changing is skipped rather than waited for (waiting on rows in the
    -- plan's order could deadlock with a sweep that changes many rows).
    WITH pairs AS (
        SELECT * FROM unnest(pair_calls, pair_interpreters) WITH ORDINALITY
            AS p (call_id, interpreter_id, n)
    ),
    -- Locked by key, then checked (as they are once locked): a condition on
    -- the state here would let the planner scan a partial index of waiting
    -- calls instead.
    waiting AS (
        SELECT x.id, x.state, x.caller_gone_at FROM calls x
        WHERE x.id = ANY (pair_calls)
        FOR UPDATE SKIP LOCKED
    ),
    free AS (
        SELECT s.user_id, s.state, s.console_gone_at FROM interpreter_status s
        WHERE s.user_id = ANY (pair_interpreters)
        FOR UPDATE SKIP LOCKED
    ),
    ok AS MATERIALIZED (
        SELECT p.* FROM pairs p
        JOIN waiting w ON w.id = p.call_id AND w.state = 'queued' AND w.caller_gone_at IS NULL
        JOIN free f ON f.user_id = p.interpreter_id AND f.state = 'available'
                   AND f.console_gone_at IS NULL
    ),
    offered AS (
        UPDATE calls x
        SET state = 'offered', interpreter_id = ok.interpreter_id, offered_at = now(),
            offer_expires_at = now() + make_interval(secs => offer_seconds)
        FROM ok WHERE x.id = ok.call_id
        RETURNING x.id, x.authority_id, x.language, x.specialism, x.queued_at
    ),
    logged AS (
        INSERT INTO call_events (call_id, kind, actor, interpreter_id, detail)
        SELECT ok.call_id, 'offered', 'matcher', ok.interpreter_id, '{}'::jsonb FROM ok
    ),
    states AS (
        INSERT INTO interpreter_status AS s
            (user_id, state, state_since, call_id, reason, wrap_up_until)
        SELECT ok.interpreter_id, 'offered', now(), ok.call_id, NULL, NULL FROM ok
        ON CONFLICT (user_id) DO UPDATE
        SET state = EXCLUDED.state, state_since = EXCLUDED.state_since,
            call_id = EXCLUDED.call_id, reason = NULL, wrap_up_until = NULL
    ),
    states_logged AS (
        INSERT INTO interpreter_events (interpreter_id, state, reason, call_id)
        SELECT ok.interpreter_id, 'offered', NULL, ok.call_id FROM ok
    ),
    -- Each offered interpreter gets the offer, then their new state.
    messages AS (
        SELECT 'interpreter:' || ok.interpreter_id AS recipient,
               ok.interpreter_id = ANY (local_interpreters) AS here,
               ok.n, m.part, m.payload
        FROM ok
        JOIN offered o ON o.id = ok.call_id
        JOIN authorities a ON a.id = o.authority_id
        CROSS JOIN LATERAL (VALUES
            (1, offer_message(o.id, a.slug, a.name, o.language, o.specialism, o.queued_at,
                              offer_seconds)),
            (2, jsonb_build_object('type', 'state', 'state', 'offered', 'call_id', o.id,
                                   'reason', NULL, 'since', now(), 'until', NULL))
        ) AS m (part, payload)
    ),
    stored AS (
        INSERT INTO mailbox (recipient, payload)
        SELECT recipient, payload FROM messages WHERE NOT here ORDER BY n, part
        RETURNING id, recipient
    ),
    notified AS (
        SELECT count(pg_notify('signvideo_mail', recipient || ' ' || id)) AS n FROM stored
    ),
    -- Older messages for the local recipients, taken to be sent first.
    older AS (
        DELETE FROM mailbox b
        WHERE b.recipient IN (SELECT recipient FROM messages WHERE here)
        RETURNING b.id, b.recipient, b.payload
    ),
    outgoing AS (
        SELECT 0 AS batch, id AS n, 0 AS part, recipient, payload FROM older
        UNION ALL
        SELECT 1, n, part, recipient, payload FROM messages WHERE here
    )
    SELECT (SELECT count(*) FROM ok),
           (SELECT coalesce(jsonb_agg(jsonb_build_object('recipient', recipient,
                                                         'payload', payload)
                                      ORDER BY batch, n, part), '[]')
            FROM outgoing),
           (SELECT n FROM notified)
    INTO offers, mail, stored_count;
    again := offers < cardinality(pair_calls);
END
$$;

-- Puts a caller in the queue of an authority, unless it holds its maximum
-- already (no call_id then), and, when `match`, runs a matching round in the
-- same transaction (match_round's outputs), so that a caller who can be
-- answered at once is offered with the join's own commit. The join stands if
-- the round fails: the round runs in a subtransaction, and `match_error`
-- says what went wrong (`again` is then true, for the matcher to retry).
-- Joins to one authority go one at a time (its join lock), so that the
-- queue's limit holds. `detail` is the `queued` event's detail; it gains the
-- deadline. The queue-changed notice goes with the commit.
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
    OUT match_error text
) LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz;
BEGIN
    offers := 0;
    again := false;
    mail := '[]';
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
    RETURNING id, deadline_at INTO call_id, deadline;
    IF call_id IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO call_events (call_id, kind, actor, interpreter_id, detail)
    VALUES (join_queue.call_id, 'queued', 'caller', NULL,
            detail || jsonb_build_object('deadline', deadline));
    PERFORM pg_notify('signvideo_queue', '');
    IF match THEN
        BEGIN
            SELECT r.offers, r.again, r.mail INTO offers, again, mail
            FROM match_round(ceiling_seconds, offer_seconds, spare_calls,
                             local_interpreters) r;
        EXCEPTION WHEN OTHERS THEN
            match_error := SQLERRM;
            again := true;
        END;
    END IF;
END
$$;

-- Server processes keep what joins check about an authority (its languages,
-- hours and closures, and the specialisms); they are told when it changes.
CREATE FUNCTION notify_authorities_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('signvideo_authorities', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER authorities_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON authorities FOR EACH STATEMENT EXECUTE FUNCTION notify_authorities_changed();
CREATE TRIGGER authority_closures_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON authority_closures FOR EACH STATEMENT EXECUTE FUNCTION notify_authorities_changed();
CREATE TRIGGER specialisms_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON specialisms FOR EACH STATEMENT EXECUTE FUNCTION notify_authorities_changed();
