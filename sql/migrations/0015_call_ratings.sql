-- After a call the caller may rate it, by picture, once. The key that allows
-- it is sent to the caller's page with the end of the call and kept hashed.
ALTER TABLE calls ADD COLUMN rating_key_sha256 bytea;

CREATE TABLE call_ratings (
    call_id  uuid PRIMARY KEY REFERENCES calls (id),
    rating   smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    at       timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON call_ratings TO signvideo_authority_reader;
ALTER TABLE call_ratings ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_call_ratings ON call_ratings FOR SELECT TO signvideo_authority_reader
    USING (EXISTS (SELECT 1 FROM calls c WHERE c.id = call_id));
