-- Routing that keeps each authority's promise: languages and opening hours,
-- interpreter skills, deadlines, wrap-up and breaks, leases for dropped
-- sockets, and the server processes that hold them.

ALTER TABLE authorities
    ADD COLUMN languages text[] NOT NULL DEFAULT '{BSL}'
        CHECK (cardinality(languages) > 0),
    ADD COLUMN opening_hours jsonb NOT NULL DEFAULT
        '{"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]],
          "wed": [["09:00", "17:00"]], "thu": [["09:00", "17:00"]],
          "fri": [["09:00", "17:00"]], "sat": [], "sun": []}',
    ADD COLUMN nation text NOT NULL DEFAULT 'england-and-wales'
        CHECK (nation IN ('england-and-wales', 'scotland', 'northern-ireland')),
    ADD COLUMN closed_on_bank_holidays boolean NOT NULL DEFAULT true,
    ADD COLUMN max_queue_length integer NOT NULL DEFAULT 50 CHECK (max_queue_length > 0);

CREATE TABLE authority_closures (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    authority_id  bigint NOT NULL REFERENCES authorities (id),
    first_day     date NOT NULL,
    last_day      date NOT NULL,
    reason        text NOT NULL DEFAULT '',
    CHECK (last_day >= first_day)
);
CREATE INDEX authority_closures_by_authority ON authority_closures (authority_id, last_day);

-- Kinds of work; trainees are not offered the ones marked so.
CREATE TABLE specialisms (
    code             text PRIMARY KEY CHECK (code ~ '^[a-z][a-z-]*$'),
    name             text NOT NULL,
    trainee_allowed  boolean NOT NULL DEFAULT true
);
INSERT INTO specialisms (code, name, trainee_allowed) VALUES
    ('health', 'Health', true),
    ('legal', 'Legal', true),
    ('criminal-justice', 'Criminal justice', false),
    ('mental-health', 'Mental health', false),
    ('safeguarding', 'Safeguarding', true),
    ('social-care', 'Social care', true),
    ('education', 'Education', true);

CREATE TABLE interpreters (
    user_id               bigint PRIMARY KEY REFERENCES users (id),
    languages             text[] NOT NULL DEFAULT '{BSL}',
    specialisms           text[] NOT NULL DEFAULT '{}',
    register_body         text NOT NULL DEFAULT 'NRCPD' CHECK (register_body IN ('NRCPD', 'SRLPDC')),
    category              text NOT NULL DEFAULT 'registered'
                          CHECK (category IN ('registered', 'trainee')),
    registration_number   text,
    registration_expires  date
);
INSERT INTO interpreters (user_id) SELECT id FROM users WHERE role = 'interpreter';

-- Each running server process, so that the sockets of one that died can be
-- treated as dropped.
CREATE TABLE server_processes (
    id            uuid PRIMARY KEY,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE calls
    ADD COLUMN language text NOT NULL DEFAULT 'BSL',
    ADD COLUMN specialism text REFERENCES specialisms (code),
    ADD COLUMN priority smallint NOT NULL DEFAULT 0,
    ADD COLUMN deadline_at timestamptz,
    -- Where the caller's socket is, and since when it has been missing.
    ADD COLUMN caller_process uuid,
    ADD COLUMN caller_gone_at timestamptz;
UPDATE calls c SET deadline_at = c.queued_at + make_interval(secs => a.answer_seconds)
FROM authorities a WHERE a.id = c.authority_id;
ALTER TABLE calls ALTER COLUMN deadline_at SET NOT NULL;
CREATE UNIQUE INDEX calls_token ON calls (token_sha256);
CREATE INDEX calls_caller_gone ON calls (caller_gone_at) WHERE caller_gone_at IS NOT NULL;

ALTER TABLE interpreter_status DROP CONSTRAINT interpreter_status_state_check;
ALTER TABLE interpreter_status DROP CONSTRAINT interpreter_status_check;
ALTER TABLE interpreter_status
    ADD CONSTRAINT interpreter_status_state_check CHECK (
        state IN ('offline', 'available', 'offered', 'in_call', 'wrap_up', 'break')),
    ADD CONSTRAINT interpreter_status_call_check CHECK (
        (state IN ('offered', 'in_call')) = (call_id IS NOT NULL)),
    ADD COLUMN reason text,
    ADD COLUMN wrap_up_until timestamptz,
    ADD COLUMN missed_offers integer NOT NULL DEFAULT 0,
    ADD COLUMN console_process uuid,
    ADD COLUMN console_gone_at timestamptz;
CREATE INDEX interpreter_status_available ON interpreter_status (state_since)
    WHERE state = 'available';

-- Interpreter state changes are kept too (who, what, when, why).
CREATE TABLE interpreter_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    interpreter_id  bigint NOT NULL REFERENCES users (id),
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    state           text NOT NULL,
    reason          text,
    call_id         uuid REFERENCES calls (id)
);
CREATE INDEX interpreter_events_by_interpreter ON interpreter_events (interpreter_id, id);
CREATE TRIGGER interpreter_events_append_only BEFORE UPDATE OR DELETE ON interpreter_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE INDEX calls_recent_answered ON calls (ended_at DESC) WHERE answered_at IS NOT NULL;
