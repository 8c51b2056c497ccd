-- Tokens for an authority's finance systems to read its usage through the
-- API. The token itself is shown once, when made; only its hash is kept,
-- with the first characters to tell tokens apart.
CREATE TABLE api_tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    authority_id  bigint NOT NULL REFERENCES authorities (id),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_sha256  bytea NOT NULL UNIQUE,
    shown_prefix  text NOT NULL,
    scopes        text[] NOT NULL CHECK (scopes <@ '{usage:read}'::text[] AND cardinality(scopes) > 0),
    created_by    bigint REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    revoked_by    bigint REFERENCES users (id)
);
CREATE INDEX api_tokens_by_authority ON api_tokens (authority_id, created_at);

GRANT SELECT ON api_tokens TO signvideo_authority_reader;
ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_tokens ON api_tokens FOR SELECT TO signvideo_authority_reader
    USING (authority_id = reader_authority());
