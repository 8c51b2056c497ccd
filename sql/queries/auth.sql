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
-- Failed sign-ins in the last $3 seconds for account $1 and from place $2
-- (an address, or an IPv6 /64), and for each the seconds until the oldest
-- of them leaves the window.
SELECT count(*) FILTER (WHERE email = $1) AS account,
       count(*) FILTER (WHERE address = $2::inet) AS address,
       coalesce(extract(epoch FROM min(at) FILTER (WHERE email = $1)
                                 + make_interval(secs => $3) - now()), 0)
           AS account_retry_after,
       coalesce(extract(epoch FROM min(at) FILTER (WHERE address = $2::inet)
                                 + make_interval(secs => $3) - now()), 0)
           AS address_retry_after
FROM sign_in_failures
WHERE at > now() - make_interval(secs => $3)
  AND (email = $1 OR address = $2::inet);

-- name: record_sign_in_failure
-- A sign-in attempt, counted as failed until it succeeds.
INSERT INTO sign_in_failures (email, address) VALUES ($1, $2::inet) RETURNING id;

-- name: forget_sign_in_attempt
DELETE FROM sign_in_failures WHERE id = $1;

-- name: clear_sign_in_failures
DELETE FROM sign_in_failures WHERE email = $1;

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
