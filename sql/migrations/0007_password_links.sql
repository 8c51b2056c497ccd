-- One-time links, issued by an administrator, to set or reset a password.
-- Only a hash of the link's secret is kept; a link works once, until it expires.
CREATE TABLE password_links (
    token_sha256  bytea PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_by     bigint REFERENCES users (id),
    issued_at     timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);
CREATE INDEX password_links_by_user ON password_links (user_id);
