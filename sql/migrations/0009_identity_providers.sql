-- OpenID Connect sign-in for staff: identity providers, each the operator's
-- (for the service's own staff) or one authority's (for its staff only).
CREATE TABLE identity_providers (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    authority_id   bigint REFERENCES authorities (id),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    issuer         text NOT NULL CHECK (issuer ~ '^https?://'),
    client_id      text NOT NULL CHECK (length(client_id) BETWEEN 1 AND 200),
    -- Needed to call the provider's token endpoint, so kept as given.
    client_secret  text NOT NULL CHECK (length(client_secret) BETWEEN 1 AND 500),
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- A sign-in in progress: what the callback checks, for ten minutes, once.
-- In the database so that any server process can finish it.
CREATE TABLE oidc_logins (
    state_sha256   bytea PRIMARY KEY,
    provider_id    bigint NOT NULL REFERENCES identity_providers (id) ON DELETE CASCADE,
    nonce          text NOT NULL,
    code_verifier  text NOT NULL,
    next_path      text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX oidc_logins_by_age ON oidc_logins (created_at);
