-- A hearing party (a council officer, say) brought into a call by its
-- interpreter. One row per invitation: the interpreter makes a one-time link
-- (its token kept hashed); the person who opens it and joins becomes the
-- call's guest, and the link is dead from then on, or from `expires_at` if
-- nobody uses it. The guest keeps a second token of their own, to come back
-- after a dropped connection.
CREATE TABLE call_guests (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id            uuid NOT NULL REFERENCES calls (id),
    invited_by         bigint NOT NULL REFERENCES users (id),
    invited_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    invitation_sha256  bytea NOT NULL UNIQUE,
    -- Made void by a newer invitation, or by the call ending, before use.
    revoked_at         timestamptz,
    joined_at          timestamptz,
    name               text CHECK (length(name) BETWEEN 1 AND 80),
    token_sha256       bytea UNIQUE,
    process_id         uuid,
    -- Their connection dropped (they may come back within the grace period).
    gone_at            timestamptz,
    left_at            timestamptz,
    left_reason        text CHECK (left_reason IN ('left', 'removed', 'call_ended', 'disconnected')),
    CHECK ((joined_at IS NULL) = (name IS NULL) AND (joined_at IS NULL) = (token_sha256 IS NULL)),
    CHECK ((left_at IS NULL) = (left_reason IS NULL)),
    CHECK (left_at IS NULL OR joined_at IS NOT NULL)
);
-- One hearing party in a call at a time.
CREATE UNIQUE INDEX call_guests_one_present ON call_guests (call_id)
    WHERE joined_at IS NOT NULL AND left_at IS NULL;
CREATE INDEX call_guests_by_call ON call_guests (call_id);
CREATE INDEX call_guests_by_process ON call_guests (process_id)
    WHERE left_at IS NULL AND gone_at IS NULL AND joined_at IS NOT NULL;

-- Whether `party` (as named in messages: 'caller', 'interpreter:<user id>'
-- or 'guest:<id>') is in the answered call `call` now, and where a message
-- for them goes (the mailbox recipient); NULL if they are not.
CREATE FUNCTION call_party_recipient(call uuid, party text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN party = 'caller' THEN 'caller:' || c.id
        WHEN party = 'interpreter:' || c.interpreter_id THEN party
        WHEN party LIKE 'guest:%' AND EXISTS (
            SELECT 1 FROM call_guests g
            WHERE g.call_id = c.id AND 'guest:' || g.id = party
              AND g.joined_at IS NOT NULL AND g.left_at IS NULL AND g.gone_at IS NULL)
        THEN party
    END
    FROM calls c WHERE c.id = call AND c.state = 'answered'
$$;
