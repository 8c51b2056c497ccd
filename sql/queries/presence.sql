-- name: process_register
INSERT INTO server_processes (id) VALUES ($1)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now();

-- name: process_heartbeat
UPDATE server_processes SET heartbeat_at = now() WHERE id = $1 RETURNING id;

-- name: process_forget
DELETE FROM server_processes WHERE id = $1;

-- name: dead_processes
-- Processes that stopped beating: their sockets count as dropped from their
-- last heartbeat.
DELETE FROM server_processes
WHERE heartbeat_at < now() - make_interval(secs => $1)
RETURNING id, heartbeat_at;

-- name: callers_of_process_gone
UPDATE calls SET caller_gone_at = $2
WHERE caller_process = $1 AND caller_gone_at IS NULL AND state <> 'ended'
RETURNING id, state;

-- name: consoles_of_process_gone
UPDATE interpreter_status SET console_gone_at = $2
WHERE console_process = $1 AND console_gone_at IS NULL AND state <> 'offline'
RETURNING user_id;

-- name: caller_gone
UPDATE calls SET caller_gone_at = now()
WHERE id = $1 AND caller_process = $2 AND state <> 'ended' AND caller_gone_at IS NULL
RETURNING state, interpreter_id;

-- name: call_by_token
SELECT c.id, c.state, c.interpreter_id, a.slug
FROM calls c JOIN authorities a ON a.id = c.authority_id
WHERE c.token_sha256 = $1 FOR UPDATE OF c;

-- name: caller_back
UPDATE calls SET caller_gone_at = NULL, caller_process = $2 WHERE id = $1;

-- name: callers_past_grace
SELECT id FROM calls
WHERE caller_gone_at < now() - make_interval(secs => $1) AND state <> 'ended'
ORDER BY caller_gone_at LIMIT 100;

-- name: console_row
INSERT INTO interpreter_status (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING;

-- name: console_attach
UPDATE interpreter_status SET console_gone_at = NULL, console_process = $2
WHERE user_id = $1
RETURNING state, call_id;

-- name: console_gone
UPDATE interpreter_status SET console_gone_at = now()
WHERE user_id = $1 AND console_process = $2 AND state <> 'offline'
RETURNING state;

-- name: consoles_past_lease
SELECT user_id FROM interpreter_status
WHERE console_gone_at < now() - make_interval(secs => $1) AND state <> 'offline'
ORDER BY console_gone_at LIMIT 100;

-- name: sweep_due
-- What the once-a-second sweep would find, in one look: each of its steps
-- runs only when this says it has something to do (an idle process makes
-- one statement a second here, not thirteen). The same conditions as the
-- steps' own queries: expired_offers, handover_offers_expired,
-- finished_wrap_ups, dead_processes, callers_past_grace, guests_past_grace
-- and consoles_past_lease. $1: seconds without a heartbeat before a process
-- is dead; $2: the callers' and guests' grace; $3: the consoles' lease.
SELECT
    EXISTS (SELECT 1 FROM calls
            WHERE state = 'offered' AND offer_expires_at <= now()) AS offers,
    EXISTS (SELECT 1 FROM call_handovers
            WHERE state = 'offered' AND offer_expires_at <= now()) AS handovers,
    EXISTS (SELECT 1 FROM interpreter_status
            WHERE state = 'wrap_up' AND wrap_up_until <= now()) AS wrap_ups,
    EXISTS (SELECT 1 FROM server_processes
            WHERE heartbeat_at < now() - make_interval(secs => $1)) AS dead_processes,
    EXISTS (SELECT 1 FROM calls
            WHERE caller_gone_at < now() - make_interval(secs => $2)
              AND state <> 'ended') AS callers,
    EXISTS (SELECT 1 FROM call_guests
            WHERE gone_at < now() - make_interval(secs => $2)
              AND left_at IS NULL) AS guests,
    EXISTS (SELECT 1 FROM interpreter_status
            WHERE console_gone_at < now() - make_interval(secs => $3)
              AND state <> 'offline') AS consoles;
