-- A way to reach the caller if the call is cut off, given only if they
-- choose; wiped after the retention period (SIGNVIDEO_CONTACT_RETENTION_DAYS)
-- by a job in every server process (privacy.purge_contacts). Never in the
-- event log, which is kept.
ALTER TABLE calls ADD COLUMN caller_contact text CHECK (length(caller_contact) <= 200);
CREATE INDEX calls_with_contact ON calls (queued_at) WHERE caller_contact IS NOT NULL;
