-- name: identity_providers_listed
SELECT p.id, p.name, p.issuer, p.client_id, a.slug AS authority, a.name AS authority_name
FROM identity_providers p LEFT JOIN authorities a ON a.id = p.authority_id
ORDER BY p.name, p.id;

-- name: identity_provider
SELECT id, authority_id, name, issuer, client_id, client_secret
FROM identity_providers WHERE id = $1;

-- name: identity_provider_insert
INSERT INTO identity_providers (authority_id, name, issuer, client_id, client_secret)
VALUES ((SELECT id FROM authorities WHERE slug = $1), $2, $3, $4, $5)
RETURNING id;

-- name: identity_provider_delete
DELETE FROM identity_providers WHERE id = $1 RETURNING name, issuer;

-- name: oidc_login_begin
INSERT INTO oidc_logins (state_sha256, provider_id, nonce, code_verifier, next_path)
VALUES ($1, $2, $3, $4, $5);

-- name: oidc_login_finish
-- Takes (once) a sign-in begun in the last ten minutes (older ones are
-- cleared by the hourly job, privacy.purge_forever).
DELETE FROM oidc_logins
WHERE state_sha256 = $1 AND created_at >= now() - interval '10 minutes'
RETURNING provider_id, nonce, code_verifier, next_path;

-- name: oidc_logins_expire
-- Sign-ins begun and never finished, after their ten minutes.
DELETE FROM oidc_logins WHERE created_at < now() - interval '10 minutes';
