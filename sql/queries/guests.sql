-- A hearing party in a call (migration 0017; signvideo/guests.py).

-- name: guest_call_for_update
-- The interpreter's own answered call, locked, with the guest in it if any.
SELECT c.id, c.state, c.interpreter_id,
       (SELECT g.id FROM call_guests g
        WHERE g.call_id = c.id AND g.joined_at IS NOT NULL AND g.left_at IS NULL) AS guest_id
FROM calls c WHERE c.id = $1 FOR UPDATE;

-- name: guest_revoke_unused
UPDATE call_guests SET revoked_at = now()
WHERE call_id = $1 AND joined_at IS NULL AND revoked_at IS NULL;

-- name: guest_invite
INSERT INTO call_guests (call_id, invited_by, expires_at, invitation_sha256)
VALUES ($1, $2, now() + make_interval(secs => $3), $4)
RETURNING id, expires_at;

-- name: guest_invitation
-- What the link's page shows: whether it can still be used, and for whom.
SELECT g.id, g.call_id, g.expires_at, g.joined_at, g.revoked_at,
       g.expires_at <= now() AS expired, c.state AS call_state, a.name AS authority_name
FROM call_guests g
JOIN calls c ON c.id = g.call_id
JOIN authorities a ON a.id = c.authority_id
WHERE g.invitation_sha256 = $1;

-- name: guest_invitation_call_for_share
-- Holds the call while the link is used, so that it cannot end meanwhile.
SELECT c.id, c.state FROM calls c
WHERE c.id = (SELECT g.call_id FROM call_guests g WHERE g.invitation_sha256 = $1)
FOR SHARE;

-- name: guest_join
UPDATE call_guests g
SET joined_at = now(), name = $2, token_sha256 = $3, process_id = $4
WHERE g.invitation_sha256 = $1 AND g.joined_at IS NULL AND g.revoked_at IS NULL
  AND g.expires_at > now()
RETURNING g.id, g.call_id;

-- name: guest_by_token
-- A guest coming back after a dropped connection, with their call.
SELECT g.id, g.call_id, g.name, g.left_at,
       g.gone_at < now() - make_interval(secs => $2) AS past_grace, c.state AS call_state
FROM call_guests g JOIN calls c ON c.id = g.call_id
WHERE g.token_sha256 = $1
FOR UPDATE OF g;

-- name: guest_back
UPDATE call_guests SET gone_at = NULL, process_id = $2 WHERE id = $1;

-- name: guest_gone
UPDATE call_guests SET gone_at = now()
WHERE id = $1 AND process_id = $2 AND gone_at IS NULL AND left_at IS NULL
RETURNING call_id;

-- name: guest_leave
-- The guest leaves or is removed (`$2` the reason); only from a call in progress.
UPDATE call_guests SET left_at = now(), left_reason = $2
WHERE id = $1 AND call_id = $3 AND joined_at IS NOT NULL AND left_at IS NULL
RETURNING id;

-- name: guests_end_with_call
-- The call is over: its guest leaves, and an unused link dies.
UPDATE call_guests
SET revoked_at = CASE WHEN joined_at IS NULL THEN now() ELSE revoked_at END,
    left_at = CASE WHEN joined_at IS NOT NULL THEN now() END,
    left_reason = CASE WHEN joined_at IS NOT NULL THEN 'call_ended' END
WHERE call_id = $1 AND left_at IS NULL AND (joined_at IS NOT NULL OR revoked_at IS NULL)
RETURNING id, joined_at IS NOT NULL AS joined;

-- name: guests_of_process_gone
UPDATE call_guests SET gone_at = $2
WHERE process_id = $1 AND gone_at IS NULL AND left_at IS NULL AND joined_at IS NOT NULL
RETURNING id, call_id;

-- name: guests_past_grace
-- Guests whose connection dropped and did not come back in time leave the
-- call, in its event log as every other way out (the others were told when
-- the connection dropped). One statement: nothing to do costs one look.
WITH gone AS (
    UPDATE call_guests SET left_at = now(), left_reason = 'disconnected'
    WHERE gone_at < now() - make_interval(secs => $1) AND left_at IS NULL
    RETURNING id, call_id
)
INSERT INTO call_events (call_id, kind, actor, interpreter_id, detail)
SELECT call_id, 'guest_left', 'guest', NULL, '{"reason": "disconnected"}'::jsonb FROM gone;

-- name: relay_in_call
-- Passes SDP or ICE from one party of an answered call to another (`$3`, or
-- when null, the caller's interpreter or the interpreter's caller), if both
-- are in the call now (call_party_recipient, migration 0017).
WITH c AS (
    SELECT x.id, coalesce($3::text, CASE WHEN $4::text = 'caller'
                                         THEN 'interpreter:' || x.interpreter_id
                                         ELSE 'caller' END) AS party
    FROM calls x WHERE x.id = $1 AND x.state = 'answered'
),
r AS (
    SELECT call_party_recipient(c.id, c.party) AS recipient FROM c
    WHERE call_party_recipient(c.id, $4::text) IS NOT NULL
),
m AS (
    INSERT INTO mailbox (recipient, payload)
    SELECT r.recipient, $2 FROM r WHERE r.recipient IS NOT NULL
    RETURNING id, recipient
)
SELECT pg_notify('signvideo_mail', m.recipient || ' ' || m.id) FROM m;


-- name: call_parties
-- Everyone in a call now, in order: the caller, its interpreter, an
-- interpreter taking over who has joined (migration 0018), and a hearing
-- party who is connected.
SELECT 'caller' AS party, 'caller' AS role, NULL::text AS name, false AS handover, 0 AS n
UNION ALL
SELECT 'interpreter:' || c.interpreter_id, 'interpreter', u.display_name, false, 1
FROM calls c JOIN users u ON u.id = c.interpreter_id
WHERE c.id = $1
UNION ALL
SELECT 'interpreter:' || h.to_interpreter, 'interpreter', u.display_name, true, 2
FROM call_handovers h JOIN users u ON u.id = h.to_interpreter
WHERE h.call_id = $1 AND h.state = 'joined'
UNION ALL
SELECT 'guest:' || g.id, 'guest', g.name, false, 3
FROM call_guests g
WHERE g.call_id = $1 AND g.joined_at IS NOT NULL AND g.left_at IS NULL AND g.gone_at IS NULL
ORDER BY n, party;
