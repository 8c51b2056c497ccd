-- The walking skeleton's schema: authorities, staff, sessions, interpreter
-- states, calls with an append-only event log, charges, and the mailbox that
-- carries signalling between server processes.

CREATE TABLE authorities (
    id                         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug                       text NOT NULL UNIQUE
                               CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name                       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    answer_seconds             integer NOT NULL CHECK (answer_seconds > 0),
    rate_pence_per_minute      integer NOT NULL CHECK (rate_pence_per_minute >= 0),
    billing_increment_seconds  integer NOT NULL DEFAULT 60
                               CHECK (billing_increment_seconds > 0),
    minimum_charge_pence       integer NOT NULL DEFAULT 0 CHECK (minimum_charge_pence >= 0),
    time_zone                  text NOT NULL DEFAULT 'Europe/London',
    created_at                 timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email          text NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%@%'),
    display_name   text NOT NULL,
    role           text NOT NULL CHECK (role IN ('interpreter', 'finance', 'admin')),
    -- NULL for staff of the shared service; set for an authority's own staff.
    authority_id   bigint REFERENCES authorities (id),
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    token_sha256  bytea PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE calls (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    authority_id      bigint NOT NULL REFERENCES authorities (id),
    -- The caller's resume token, hashed; the caller alone holds the token.
    token_sha256      bytea NOT NULL,
    state             text NOT NULL CHECK (state IN ('queued', 'offered', 'answered', 'ended')),
    interpreter_id    bigint REFERENCES users (id),
    queued_at         timestamptz NOT NULL DEFAULT now(),
    offered_at        timestamptz,
    offer_expires_at  timestamptz,
    answered_at       timestamptz,
    ended_at          timestamptz,
    end_reason        text,
    CHECK ((state = 'offered') = (offer_expires_at IS NOT NULL)),
    CHECK (state NOT IN ('offered', 'answered') OR interpreter_id IS NOT NULL),
    CHECK (state <> 'answered' OR answered_at IS NOT NULL),
    CHECK ((state = 'ended') = (ended_at IS NOT NULL AND end_reason IS NOT NULL))
);
-- The database itself guarantees one live call per interpreter, whichever
-- server process made the match.
CREATE UNIQUE INDEX calls_one_live_per_interpreter
    ON calls (interpreter_id) WHERE state IN ('offered', 'answered');
CREATE INDEX calls_waiting ON calls (queued_at, id) WHERE state IN ('queued', 'offered');
CREATE INDEX calls_by_authority_time ON calls (authority_id, queued_at);

CREATE TABLE interpreter_status (
    user_id      bigint PRIMARY KEY REFERENCES users (id),
    state        text NOT NULL DEFAULT 'offline'
                 CHECK (state IN ('offline', 'available', 'offered', 'in_call')),
    state_since  timestamptz NOT NULL DEFAULT now(),
    call_id      uuid REFERENCES calls (id),
    CHECK ((state IN ('offered', 'in_call')) = (call_id IS NOT NULL))
);

-- Interpreters who declined or missed a call are not offered it again.
CREATE TABLE call_declines (
    call_id         uuid NOT NULL REFERENCES calls (id),
    interpreter_id  bigint NOT NULL REFERENCES users (id),
    at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (call_id, interpreter_id)
);

-- Every change of a call's state, in order. Never updated or deleted.
CREATE TABLE call_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id         uuid NOT NULL REFERENCES calls (id),
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind            text NOT NULL,
    actor           text NOT NULL,
    interpreter_id  bigint REFERENCES users (id),
    detail          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX call_events_call ON call_events (call_id, id);

CREATE TABLE charges (
    id                         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id                    uuid NOT NULL UNIQUE REFERENCES calls (id),
    authority_id               bigint NOT NULL REFERENCES authorities (id),
    billable_seconds           integer NOT NULL CHECK (billable_seconds >= 0),
    rate_pence_per_minute      integer NOT NULL,
    billing_increment_seconds  integer NOT NULL,
    minimum_charge_pence       integer NOT NULL,
    charge_pence               integer NOT NULL CHECK (charge_pence >= 0),
    created_at                 timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER call_events_append_only BEFORE UPDATE OR DELETE ON call_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER charges_append_only BEFORE UPDATE OR DELETE ON charges
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Messages for a WebSocket that may be held by another server process. The
-- sender inserts a row and notifies the row id; the holder deletes and sends.
CREATE TABLE mailbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient   text NOT NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mailbox_recipient ON mailbox (recipient, id);
