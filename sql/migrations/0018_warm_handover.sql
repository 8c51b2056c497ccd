-- A warm handover: the call's interpreter asks for a colleague; an eligible
-- free interpreter (idle longest) is offered the handover, joins the call
-- beside the first, and the first then leaves. The call, its caller and its
-- charge carry on throughout (billing reads the first `answered` event).
CREATE TABLE call_handovers (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id           uuid NOT NULL REFERENCES calls (id),
    from_interpreter  bigint NOT NULL REFERENCES users (id),
    requested_at      timestamptz NOT NULL DEFAULT now(),
    state             text NOT NULL DEFAULT 'requested'
                      CHECK (state IN ('requested', 'offered', 'joined', 'completed', 'cancelled')),
    to_interpreter    bigint REFERENCES users (id),
    offered_at        timestamptz,
    offer_expires_at  timestamptz,
    joined_at         timestamptz,
    finished_at       timestamptz,
    finish_reason     text,
    -- Interpreters who declined or missed this handover are not asked again.
    declined          bigint[] NOT NULL DEFAULT '{}',
    CHECK ((state = 'offered') = (offer_expires_at IS NOT NULL)),
    CHECK (state NOT IN ('offered', 'joined', 'completed') OR to_interpreter IS NOT NULL),
    CHECK ((state IN ('completed', 'cancelled')) = (finished_at IS NOT NULL))
);
-- One handover under way per call, and per incoming interpreter.
CREATE UNIQUE INDEX call_handovers_one_open ON call_handovers (call_id)
    WHERE state IN ('requested', 'offered', 'joined');
CREATE UNIQUE INDEX call_handovers_one_incoming ON call_handovers (to_interpreter)
    WHERE state IN ('offered', 'joined');
CREATE INDEX call_handovers_waiting ON call_handovers (requested_at)
    WHERE state = 'requested';

-- The incoming interpreter of a handover is a party of the call once joined.
CREATE OR REPLACE FUNCTION call_party_recipient(call uuid, party text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN party = 'caller' THEN 'caller:' || c.id
        WHEN party = 'interpreter:' || c.interpreter_id THEN party
        WHEN party LIKE 'interpreter:%' AND EXISTS (
            SELECT 1 FROM call_handovers h
            WHERE h.call_id = c.id AND h.state = 'joined'
              AND 'interpreter:' || h.to_interpreter = party)
        THEN party
        WHEN party LIKE 'guest:%' AND EXISTS (
            SELECT 1 FROM call_guests g
            WHERE g.call_id = c.id AND 'guest:' || g.id = party
              AND g.joined_at IS NOT NULL AND g.left_at IS NULL AND g.gone_at IS NULL)
        THEN party
    END
    FROM calls c WHERE c.id = call AND c.state = 'answered'
$$;
