-- name: user_by_email
SELECT id, email, display_name, role, authority_id, password_hash
FROM users WHERE email = $1;

-- name: create_session
INSERT INTO sessions (token_sha256, user_id, expires_at)
VALUES ($1, $2, now() + make_interval(secs => $3));

-- name: user_by_session
SELECT u.id, u.email, u.display_name, u.role, u.authority_id
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.token_sha256 = $1 AND s.expires_at > now();

-- name: delete_session
DELETE FROM sessions WHERE token_sha256 = $1;

-- name: update_password_hash
UPDATE users SET password_hash = $2 WHERE id = $1;

-- name: insert_user
INSERT INTO users (email, display_name, role, authority_id, password_hash)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (email) DO NOTHING
RETURNING id;

-- name: display_name
SELECT display_name FROM users WHERE id = $1;

-- name: recent_sign_in_failures
-- Failed sign-ins in the last $3 seconds: for account $1 and from place $2
-- (an address, or an IPv6 /64) made without a known device, and those made
-- with known device $4 (null: none); for each, the seconds until the
-- oldest of them leaves the window.
SELECT count(*) FILTER (WHERE device_id IS NULL AND email = $1) AS account,
       count(*) FILTER (WHERE device_id IS NULL AND address = $2::inet) AS address,
       count(*) FILTER (WHERE device_id = $4) AS device,
       coalesce(extract(epoch FROM min(at) FILTER (WHERE device_id IS NULL AND email = $1)
                                 + make_interval(secs => $3) - now()), 0)
           AS account_retry_after,
       coalesce(extract(epoch FROM min(at) FILTER (WHERE device_id IS NULL
                                                     AND address = $2::inet)
                                 + make_interval(secs => $3) - now()), 0)
           AS address_retry_after,
       coalesce(extract(epoch FROM min(at) FILTER (WHERE device_id = $4)
                                 + make_interval(secs => $3) - now()), 0)
           AS device_retry_after
FROM sign_in_failures
WHERE at > now() - make_interval(secs => $3)
  AND (email = $1 OR address = $2::inet OR device_id = $4);

-- name: record_sign_in_failure
-- A sign-in attempt, counted as failed until it succeeds; $3 the known
-- device it was made with, or null.
INSERT INTO sign_in_failures (email, address, device_id) VALUES ($1, $2::inet, $3)
RETURNING id;

-- name: forget_sign_in_attempt
DELETE FROM sign_in_failures WHERE id = $1;

-- name: clear_sign_in_failures
-- A stranger's sign-in to account $1 worked: strangers' failures for it go
-- (a known device's stay its own).
DELETE FROM sign_in_failures WHERE email = $1 AND device_id IS NULL;

-- name: trusted_device
-- The device known to account $2 that one of the cookie's tokens (their
-- digests $1) names, if it has been used within $3 days.
SELECT d.id, d.token_sha256 FROM trusted_devices d JOIN users u ON u.id = d.user_id
WHERE d.token_sha256 = ANY ($1::bytea[]) AND u.email = $2
  AND d.last_used_at > now() - make_interval(days => $3)
LIMIT 1;

-- name: trusted_device_used
-- A sign-in with known device $1 worked: its failures are forgotten, and
-- its days counted from now.
WITH cleared AS (DELETE FROM sign_in_failures WHERE device_id = $1)
UPDATE trusted_devices SET last_used_at = now() WHERE id = $1;

-- name: trusted_device_add
-- A device account $1 has just signed in from; its devices unused for $3
-- days go.
WITH stale AS (
    DELETE FROM trusted_devices
    WHERE user_id = $1 AND last_used_at <= now() - make_interval(days => $3)
)
INSERT INTO trusted_devices (user_id, token_sha256) VALUES ($1, $2);

-- name: trusted_devices_revoke
-- All of account $1's devices: its password has changed.
DELETE FROM trusted_devices WHERE user_id = $1;

-- name: audit
INSERT INTO audit_log (actor_id, actor, action, authority_id, detail, address)
VALUES ($1, $2, $3, $4, $5, $6::inet);

-- name: audit_recent
-- The newest audit entries first, $1 at a time, older than entry $2 (null: the newest).
SELECT l.id, l.at, l.actor, l.action, a.slug AS authority, l.detail, host(l.address) AS address
FROM audit_log l LEFT JOIN authorities a ON a.id = l.authority_id
WHERE $2::bigint IS NULL OR l.id < $2
ORDER BY l.id DESC
LIMIT $1;
