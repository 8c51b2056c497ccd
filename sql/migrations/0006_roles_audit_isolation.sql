-- Roles, isolation between authorities, sign-in throttling and the audit log.

-- Staff of the shared service: operator administrators, supervisors and
-- interpreters. Staff of one authority: its administrators and its finance
-- team. An authority's staff always name their authority; the service's
-- staff never do.
ALTER TABLE users DROP CONSTRAINT users_role_check;
UPDATE users SET role = CASE
    WHEN role = 'admin' AND authority_id IS NULL THEN 'operator_admin'
    WHEN role = 'admin' THEN 'authority_admin'
    WHEN role = 'finance' AND authority_id IS NOT NULL THEN 'authority_finance'
    -- The service's own finance staff had no role of their own: they keep
    -- read access to queues until an administrator decides.
    WHEN role = 'finance' THEN 'supervisor'
    ELSE role END;
ALTER TABLE users
    ADD CONSTRAINT users_role_check CHECK (role IN (
        'operator_admin', 'supervisor', 'interpreter', 'authority_admin', 'authority_finance')),
    ADD CONSTRAINT users_role_authority_check CHECK (
        (role IN ('authority_admin', 'authority_finance')) = (authority_id IS NOT NULL));

-- Who did what, when and from where: administrative actions, sign-ins and
-- exports. Never changed or deleted.
CREATE TABLE audit_log (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_id      bigint REFERENCES users (id),
    -- The account's email as it was then, or what tried to sign in.
    actor         text NOT NULL,
    action        text NOT NULL CHECK (action ~ '^[a-z][a-z_.]*$'),
    -- The authority whose data the action concerned, if one.
    authority_id  bigint REFERENCES authorities (id),
    detail        jsonb NOT NULL DEFAULT '{}',
    address       inet
);
CREATE INDEX audit_log_recent ON audit_log (at DESC, id DESC);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Failed sign-ins, counted per account and per address to slow guessing.
CREATE TABLE sign_in_failures (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    email    text NOT NULL,
    address  inet
);
CREATE INDEX sign_in_failures_by_email ON sign_in_failures (email, at);
CREATE INDEX sign_in_failures_by_address ON sign_in_failures (address, at);

-- An authority's staff read its data as this role, with the setting
-- signvideo.authority_id naming their authority (db.authority_scope): the
-- database itself shows them that authority's rows and no other, whatever
-- the query says. Without the setting they see nothing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'signvideo_authority_reader') THEN
        CREATE ROLE signvideo_authority_reader NOLOGIN;
    END IF;
END
$$;
DO $$
BEGIN
    EXECUTE format('GRANT signvideo_authority_reader TO %I', current_user);
EXCEPTION WHEN OTHERS THEN
    -- A superuser may take any role already; others were granted it above
    -- or by whoever made the role.
    NULL;
END
$$;

CREATE FUNCTION reader_authority() RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('signvideo.authority_id', true), '')::bigint
$$;

GRANT SELECT ON authorities, calls, charges, call_events, audit_log
    TO signvideo_authority_reader;
GRANT EXECUTE ON FUNCTION reader_authority() TO signvideo_authority_reader;

ALTER TABLE authorities ENABLE ROW LEVEL SECURITY;
ALTER TABLE calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE charges ENABLE ROW LEVEL SECURITY;
ALTER TABLE call_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;

-- The service itself (the tables' owner) is not limited by these policies;
-- only the reader role is.
CREATE POLICY own_authority ON authorities FOR SELECT TO signvideo_authority_reader
    USING (id = reader_authority());
CREATE POLICY own_calls ON calls FOR SELECT TO signvideo_authority_reader
    USING (authority_id = reader_authority());
CREATE POLICY own_charges ON charges FOR SELECT TO signvideo_authority_reader
    USING (authority_id = reader_authority());
CREATE POLICY own_call_events ON call_events FOR SELECT TO signvideo_authority_reader
    USING (EXISTS (SELECT 1 FROM calls c WHERE c.id = call_id));
CREATE POLICY own_audit ON audit_log FOR SELECT TO signvideo_authority_reader
    USING (authority_id = reader_authority());
