-- The call's quality record: what each side's browser measured of the video
-- it received (never any content), a sample every few seconds.
CREATE TABLE call_quality (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id        uuid NOT NULL REFERENCES calls (id),
    side           text NOT NULL CHECK (side IN ('caller', 'interpreter')),
    at             timestamptz NOT NULL DEFAULT now(),
    frames_per_second  real CHECK (frames_per_second BETWEEN 0 AND 240),
    width          integer CHECK (width BETWEEN 0 AND 10000),
    height         integer CHECK (height BETWEEN 0 AND 10000),
    round_trip_ms  real CHECK (round_trip_ms BETWEEN 0 AND 60000),
    packet_loss_percent real CHECK (packet_loss_percent BETWEEN 0 AND 100),
    warning        text CHECK (warning IN ('low_frame_rate', 'unstable'))
);
CREATE INDEX call_quality_by_call ON call_quality (call_id, at);
CREATE TRIGGER call_quality_append_only BEFORE UPDATE OR DELETE ON call_quality
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
GRANT SELECT ON call_quality TO signvideo_authority_reader;
ALTER TABLE call_quality ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_call_quality ON call_quality FOR SELECT TO signvideo_authority_reader
    USING (EXISTS (SELECT 1 FROM calls c WHERE c.id = call_id));
