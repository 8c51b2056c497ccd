-- Each authority's queue length, kept as calls start and stop being live.
--
-- A join is refused when its authority already has `max_queue_length` calls
-- waiting or being offered. Until now join_queue counted them at every join
-- (and admission before it): a scan of every live call of the authority,
-- about 0.2 ms with 1,000 waiting (a third of the join's own work in the
-- database, bench/README.md, 2026-12-01) and ten times that with 10,000.
-- Now the count is a row per authority, kept by triggers on `calls` in the
-- same transaction as the change, so it is exactly as true as the calls
-- themselves, whichever process or statement changes them.
--
-- A join locks its authority's row here before reading it (join_queue,
-- migration 0023), so joins of one authority go one at a time and reading
-- the count and then inserting cannot overshoot. A change that makes a call
-- live or not live (a join, an answer, an end) updates the authority's row,
-- so answers and ends of one authority's calls also go one at a time, and
-- wait for a join of that authority to commit (about a millisecond).
-- Changes between `queued` and `offered`, the most frequent, do not touch it
-- (the triggers' WHEN clauses).

CREATE TABLE queue_lengths (
    authority_id bigint PRIMARY KEY REFERENCES authorities (id) ON DELETE CASCADE,
    -- Calls `queued` or `offered`: the ones max_queue_length limits.
    live integer NOT NULL DEFAULT 0
);

-- No call may change while they are counted and the triggers made: a
-- process of the previous version may be running joins and ends during a
-- rolling restart, and a change between the two would never be counted.
LOCK TABLE calls IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO queue_lengths (authority_id, live)
SELECT a.id, (SELECT count(*) FROM calls c
              WHERE c.authority_id = a.id AND c.state IN ('queued', 'offered'))
FROM authorities a;

CREATE FUNCTION queue_length_for_new_authority() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue_lengths (authority_id) VALUES (NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER authorities_queue_length AFTER INSERT ON authorities
    FOR EACH ROW EXECUTE FUNCTION queue_length_for_new_authority();

-- Fired only for rows whose liveness (or authority) changes: see the WHEN
-- clauses below. Never below zero: were the count ever wrong (triggers
-- disabled by hand), ending and answering calls must still work.
CREATE FUNCTION count_live_calls() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF OLD.state IN ('queued', 'offered') THEN
            UPDATE queue_lengths SET live = greatest(live - 1, 0)
            WHERE authority_id = OLD.authority_id;
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NEW.state IN ('queued', 'offered') THEN
            UPDATE queue_lengths SET live = live + 1 WHERE authority_id = NEW.authority_id;
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER calls_live_inserted AFTER INSERT ON calls
    FOR EACH ROW WHEN (NEW.state IN ('queued', 'offered'))
    EXECUTE FUNCTION count_live_calls();

CREATE TRIGGER calls_live_changed AFTER UPDATE OF state, authority_id ON calls
    FOR EACH ROW WHEN ((OLD.state IN ('queued', 'offered')) <> (NEW.state IN ('queued', 'offered'))
                       OR OLD.authority_id <> NEW.authority_id)
    EXECUTE FUNCTION count_live_calls();

CREATE TRIGGER calls_live_deleted AFTER DELETE ON calls
    FOR EACH ROW WHEN (OLD.state IN ('queued', 'offered'))
    EXECUTE FUNCTION count_live_calls();

-- TRUNCATE fires no row triggers: no call is left, so none is live.
CREATE FUNCTION queue_lengths_emptied() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE queue_lengths SET live = 0 WHERE live <> 0;
    RETURN NULL;
END
$$;

CREATE TRIGGER calls_truncated AFTER TRUNCATE ON calls
    FOR EACH STATEMENT EXECUTE FUNCTION queue_lengths_emptied();
