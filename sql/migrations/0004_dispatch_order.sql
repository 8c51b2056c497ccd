-- The dispatch order in one place. Callers waiting longer than the ceiling
-- (ceiling_seconds) are band 0, oldest first; callers still inside their
-- window band 1, nearest deadline first; callers past their window band 2,
-- oldest first. The matcher (calls_in_dispatch_order) and callers' places
-- (waiting_positions, position_of) order by
-- (priority DESC, dispatch_band, dispatch_due, queued_at, id).
-- Plain SQL expressions, so the planner inlines them.

CREATE FUNCTION dispatch_band(queued_at timestamptz, deadline_at timestamptz,
                              ceiling_seconds double precision)
RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN now() - queued_at > make_interval(secs => ceiling_seconds) THEN 0
                WHEN deadline_at >= now() THEN 1
                ELSE 2 END
$$;

CREATE FUNCTION dispatch_due(queued_at timestamptz, deadline_at timestamptz,
                             ceiling_seconds double precision)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN dispatch_band(queued_at, deadline_at, ceiling_seconds) = 1
                THEN deadline_at ELSE queued_at END
$$;
