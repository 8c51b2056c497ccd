-- A change to the queue is notified with the language of the call that
-- changed, so that each process recomputes the places of its waiting callers
-- of that language only: a call in one language's queue never moves a caller
-- in another's (routing.positions). An empty payload means every language.
-- join_queue is as in migration 0005 but for its notice.
CREATE OR REPLACE FUNCTION join_queue(
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
    PERFORM pg_notify('signvideo_queue', coalesce(call_language, ''));
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
