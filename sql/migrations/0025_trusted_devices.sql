-- Browsers that have signed in to an account: each carries a cookie naming
-- its device, and failed sign-ins made with it count for that device alone,
-- not against the account.
--
-- Until now five wrong passwords for an account, from anywhere, refused
-- every sign-in to it for a quarter of an hour. Anyone who knew an
-- interpreter's email address could keep them out for good, and with every
-- interpreter's, take the service down at the start of a shift (sessions
-- last 12 hours). Now the account's limit, and the address's, apply only
-- to browsers it has not been signed in from; a known device has a limit
-- of its own, and is refused for the rest of the window when it reaches
-- it. (OWASP, "Slow Down Online Guessing Attacks with Device Cookies".)
-- One browser can be known to a few accounts (a shared workstation).
CREATE TABLE trusted_devices (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_sha256 bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trusted_devices_by_user ON trusted_devices (user_id);

-- The known device a failed sign-in was made with; null for any other.
-- A device forgotten (a new password) leaves its failures counted against
-- the account, as a stranger's.
ALTER TABLE sign_in_failures
    ADD COLUMN device_id bigint REFERENCES trusted_devices (id) ON DELETE SET NULL;
CREATE INDEX sign_in_failures_by_device ON sign_in_failures (device_id, at)
    WHERE device_id IS NOT NULL;
