-- Indexes for matching and joining at scale (see bench/README.md).

-- The kinds of waiting call (language, specialism) are read by a loose scan
-- of this index, a few probes however long the queue.
CREATE INDEX calls_waiting_kinds ON calls (language, (coalesce(specialism, '')))
    WHERE state = 'queued' AND caller_gone_at IS NULL;

-- An authority's queue length, counted at every join, without reading its
-- ended calls.
CREATE INDEX calls_live_by_authority ON calls (authority_id)
    WHERE state IN ('queued', 'offered');
