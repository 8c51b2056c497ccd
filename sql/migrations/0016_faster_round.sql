-- A faster matching round, the same rounds (see bench/README.md, 2026-12-01).
--
-- match_round is replaced as it was in migration 0005 but for three things:
--
-- * Its statements always use the plan kept for the connection (a generic
--   plan), made once and remade only when the tables' statistics change.
--   With the default plan_cache_mode, PostgreSQL planned the page of calls
--   afresh at every round (0.2 ms, several times its running time), because
--   the generic plan's estimated cost, with the page size and the kinds
--   unknown, was higher than that of the custom plans; the plan it made each
--   time was the same. The offers statement must not be planned at every
--   round either (0.6 ms): with the change below, the default mode would.
-- * The offers statement locks the paired calls by primary key, one probe a
--   pair, whatever the size of the calls table (below).
-- * The free interpreters are gathered for each kind of waiting call in turn
--   rather than joined to every kind and grouped (below).

CREATE OR REPLACE FUNCTION match_round(
    ceiling_seconds double precision,
    offer_seconds double precision,
    spare_calls integer,
    local_interpreters bigint[],
    OUT offers integer,
    OUT again boolean,
    OUT mail jsonb
) LANGUAGE plpgsql
-- See the top of this file.
SET plan_cache_mode = force_generic_plan
AS $$
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
        -- Each kind's eligible free interpreters gathered kind by kind (kinds
        -- with none left out), rather than joined and then grouped: a sort
        -- and a grouping fewer.
        SELECT ks.language, ks.specialism, e.interpreters
        FROM kinds ks
        LEFT JOIN specialisms sp ON sp.code = nullif(ks.specialism, '')
        CROSS JOIN LATERAL (
            SELECT array_agg(f.user_id ORDER BY f.state_since, f.user_id) AS interpreters
            FROM free f
            WHERE ks.language = ANY (f.languages)
              AND (ks.specialism = ''
                   OR (ks.specialism = ANY (f.specialisms)
                       AND (f.category = 'registered' OR sp.trainee_allowed)))
        ) e
        WHERE e.interpreters IS NOT NULL
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
    -- calls instead. One primary-key probe a pair: with `id = ANY (pair_calls)`
    -- the generic plan, which guesses ten pairs, scanned the whole of a small
    -- calls table instead.
    waiting AS (
        SELECT x.* FROM unnest(pair_calls) AS p (id)
        CROSS JOIN LATERAL (
            SELECT x.id, x.state, x.caller_gone_at FROM calls x
            WHERE x.id = p.id
            FOR UPDATE SKIP LOCKED
        ) x
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
