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
