-- Every server process looks, once a second, for hearing parties whose
-- dropped connection is past the grace period and for handover offers past
-- their time (presence.sweep, handover.expire). Both tables keep every row
-- for good; these partial indexes hold only the few rows those looks want.
CREATE INDEX call_guests_gone ON call_guests (gone_at)
    WHERE gone_at IS NOT NULL AND left_at IS NULL;
CREATE INDEX call_handovers_offered ON call_handovers (offer_expires_at)
    WHERE state = 'offered';
