-- name: api_token_use
-- The live token with this hash, marked as used now.
UPDATE api_tokens t SET last_used_at = now()
FROM authorities a
WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL AND a.id = t.authority_id
RETURNING t.id, t.authority_id, a.slug AS authority, t.name, t.shown_prefix, t.scopes;

-- name: api_tokens_listed
-- The tokens this connection may see (row-level security for an authority's staff).
SELECT t.id, a.slug AS authority, a.name AS authority_name, t.name, t.shown_prefix,
       t.scopes, t.created_at, t.last_used_at, t.revoked_at
FROM api_tokens t
JOIN authorities a ON a.id = t.authority_id
ORDER BY t.revoked_at IS NOT NULL, t.created_at DESC;

-- name: api_token_insert
INSERT INTO api_tokens (authority_id, name, token_sha256, shown_prefix, scopes, created_by)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id;

-- name: api_token_revoke
-- Only a token of authority $2 (null: any), and only once.
UPDATE api_tokens SET revoked_at = now(), revoked_by = $3
WHERE id = $1 AND ($2::bigint IS NULL OR authority_id = $2) AND revoked_at IS NULL
RETURNING authority_id, name, shown_prefix;
