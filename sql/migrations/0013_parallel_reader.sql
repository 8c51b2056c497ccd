-- Row-level security's reader_authority() may run in parallel workers (they
-- get the leader's role and settings), so that an authority's own exports
-- and reports get the same parallel plans as the service's: without it the
-- usage export of a million lines took 1.6 times as long read as the
-- authority's staff (bench/README.md). A test reads with parallel plans
-- forced and still sees only the authority's rows.
ALTER FUNCTION reader_authority() PARALLEL SAFE;
