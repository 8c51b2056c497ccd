-- Billing: effective-dated rate cards, an append-only ledger (charges for
-- calls, monthly standing charges, credit lines), monthly invoices that never
-- change once issued, and cost centres a call can carry.

-- What an authority pays, from a local date on. The card in force on the
-- local date a call is answered prices the whole call.
CREATE TABLE rate_cards (
    id                             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    authority_id                   bigint NOT NULL REFERENCES authorities (id),
    effective_from                 date NOT NULL,
    in_hours_pence_per_minute      integer NOT NULL CHECK (in_hours_pence_per_minute >= 0),
    out_of_hours_pence_per_minute  integer NOT NULL CHECK (out_of_hours_pence_per_minute >= 0),
    bank_holiday_pence_per_minute  integer NOT NULL CHECK (bank_holiday_pence_per_minute >= 0),
    billing_increment_seconds      integer NOT NULL
                                   CHECK (billing_increment_seconds BETWEEN 1 AND 3600),
    minimum_charge_pence           integer NOT NULL DEFAULT 0 CHECK (minimum_charge_pence >= 0),
    monthly_standing_charge_pence  integer NOT NULL DEFAULT 0
                                   CHECK (monthly_standing_charge_pence >= 0),
    -- VAT in hundredths of a per cent: 2000 is 20 %.
    vat_basis_points               integer NOT NULL DEFAULT 2000
                                   CHECK (vat_basis_points BETWEEN 0 AND 10000),
    -- In-hours: these ISO weekdays (1 Monday .. 7 Sunday), from start to end,
    -- local time; bank holidays of the authority's nation have their own rate.
    in_hours_days                  smallint[] NOT NULL DEFAULT '{1,2,3,4,5}'
                                   CHECK (in_hours_days <@ '{1,2,3,4,5,6,7}'::smallint[]),
    in_hours_start                 time NOT NULL DEFAULT '09:00',
    in_hours_end                   time NOT NULL DEFAULT '17:00',
    -- A call that fails for technical reasons within this many seconds of
    -- being answered is not charged.
    technical_grace_seconds        integer NOT NULL DEFAULT 10
                                   CHECK (technical_grace_seconds BETWEEN 0 AND 300),
    created_at                     timestamptz NOT NULL DEFAULT now(),
    created_by                     bigint REFERENCES users (id),
    UNIQUE (authority_id, effective_from),
    CHECK (in_hours_end > in_hours_start)
);
-- A card is never edited: add a new one from a later date. A card no call
-- has used yet may be deleted (the ledger's reference refuses the rest).
CREATE TRIGGER rate_cards_unchanging BEFORE UPDATE ON rate_cards
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

INSERT INTO rate_cards (authority_id, effective_from, in_hours_pence_per_minute,
                        out_of_hours_pence_per_minute, bank_holiday_pence_per_minute,
                        billing_increment_seconds, minimum_charge_pence, vat_basis_points)
SELECT id, '2000-01-01', rate_pence_per_minute, rate_pence_per_minute, rate_pence_per_minute,
       least(billing_increment_seconds, 3600), minimum_charge_pence, 2000
FROM authorities;

ALTER TABLE authorities
    DROP COLUMN rate_pence_per_minute,
    DROP COLUMN billing_increment_seconds,
    DROP COLUMN minimum_charge_pence,
    -- The share of calls promised to be answered inside the window.
    ADD COLUMN service_level_target_percent integer NOT NULL DEFAULT 90
        CHECK (service_level_target_percent BETWEEN 1 AND 100);

-- Departments or cost centres an authority recharges to.
CREATE TABLE cost_centres (
    authority_id  bigint NOT NULL REFERENCES authorities (id),
    code          text NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    active        boolean NOT NULL DEFAULT true,
    PRIMARY KEY (authority_id, code)
);
ALTER TABLE calls
    ADD COLUMN cost_centre text,
    ADD CONSTRAINT calls_cost_centre FOREIGN KEY (authority_id, cost_centre)
        REFERENCES cost_centres (authority_id, code);

-- Invoices: one an authority a month, numbered in sequence per authority.
-- Issuing one closes its month; what it says never changes.
CREATE TABLE invoices (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    authority_id  bigint NOT NULL REFERENCES authorities (id),
    month         date NOT NULL CHECK (extract(day FROM month) = 1),
    number        integer NOT NULL CHECK (number > 0),
    issued_at     timestamptz NOT NULL DEFAULT now(),
    issued_by     bigint REFERENCES users (id),
    net_pence     bigint NOT NULL,
    vat_pence     bigint NOT NULL,
    gross_pence   bigint NOT NULL CHECK (gross_pence = net_pence + vat_pence),
    lines         jsonb NOT NULL,
    UNIQUE (authority_id, month),
    UNIQUE (authority_id, number)
);
CREATE TRIGGER invoices_append_only BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- The ledger: every line that adds to or takes from what an authority owes.
-- A call's line is written when it ends (zero for a call never answered, so
-- that every call is rated exactly once); a correction is a credit line.
CREATE TABLE ledger (
    id                         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    authority_id               bigint NOT NULL REFERENCES authorities (id),
    kind                       text NOT NULL CHECK (kind IN ('call', 'standing_charge', 'credit')),
    call_id                    uuid REFERENCES calls (id),
    -- The month whose invoice carries the line: the month of service, or
    -- the next open month if that one's invoice was already issued.
    billing_month              date NOT NULL CHECK (extract(day FROM billing_month) = 1),
    -- When the service was given: the answer (or, unanswered, the joining);
    -- a credit's own time; a standing charge's month.
    service_at                 timestamptz NOT NULL,
    -- A call's times as its event log has them, which its charge was
    -- worked out from: joined the queue, answered (service_at), ended.
    queued_at                  timestamptz,
    ended_at                   timestamptz,
    rate_card_id               bigint REFERENCES rate_cards (id),
    rate_band                  text CHECK (rate_band IN ('in_hours', 'out_of_hours', 'bank_holiday')),
    rate_pence_per_minute      integer,
    billing_increment_seconds  integer,
    minimum_charge_pence       integer,
    billable_seconds           integer NOT NULL DEFAULT 0 CHECK (billable_seconds >= 0),
    charged_seconds            integer NOT NULL DEFAULT 0 CHECK (charged_seconds >= 0),
    net_pence                  bigint NOT NULL,
    vat_basis_points           integer NOT NULL CHECK (vat_basis_points BETWEEN 0 AND 10000),
    -- Set by the database from the net and the rate (half away from zero),
    -- so that a full credit cancels its charge to the penny.
    vat_pence                  bigint NOT NULL DEFAULT 0,
    zero_rated_reason          text,
    credit_for                 bigint REFERENCES ledger (id),
    reason                     text,
    author_id                  bigint REFERENCES users (id),
    -- The author's name as it was, for exports read by an authority's staff.
    author_name                text,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'call' OR call_id IS NOT NULL),
    CHECK (kind = 'credit' OR net_pence >= 0),
    CHECK (kind <> 'credit' OR (net_pence < 0 AND author_id IS NOT NULL
                                AND length(btrim(coalesce(reason, ''))) > 0))
);
CREATE UNIQUE INDEX ledger_one_line_per_call ON ledger (call_id) WHERE kind = 'call';
CREATE UNIQUE INDEX ledger_one_standing_charge ON ledger (authority_id, billing_month)
    WHERE kind = 'standing_charge';
CREATE INDEX ledger_by_month ON ledger (authority_id, billing_month, id);
CREATE INDEX ledger_by_service ON ledger (authority_id, service_at);
CREATE INDEX ledger_credits ON ledger (credit_for) WHERE credit_for IS NOT NULL;
-- Service-level reports read calls' lines by when they joined the queue.
CREATE INDEX ledger_calls_by_queue ON ledger (queued_at, authority_id) WHERE kind = 'call';

-- Ended calls by end, for catching up on any a failure left unrated.
CREATE INDEX calls_ended ON calls (ended_at) WHERE state = 'ended';

CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Every line lands in an open month, and a credit never takes back more than
-- its line charged. The authority's row is share-locked first, so a line
-- written while its month is being closed waits and then moves on.
-- VAT on a line, to the nearest penny, halves away from zero, so that a
-- full credit cancels its charge's VAT to the penny.
CREATE FUNCTION vat_on(net_pence bigint, vat_basis_points integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT round(net_pence::numeric * vat_basis_points / 10000)::bigint
$$;

CREATE FUNCTION ledger_line_checks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    credited bigint;
    charged  bigint;
BEGIN
    PERFORM 1 FROM authorities WHERE id = NEW.authority_id FOR SHARE;
    WHILE EXISTS (SELECT 1 FROM invoices
                  WHERE authority_id = NEW.authority_id AND month = NEW.billing_month) LOOP
        NEW.billing_month := (NEW.billing_month + interval '1 month')::date;
    END LOOP;
    NEW.vat_pence := vat_on(NEW.net_pence, NEW.vat_basis_points);
    IF NEW.credit_for IS NOT NULL THEN
        -- FOR UPDATE: two credits for one line at once take turns, and the
        -- second sees the first's amount below.
        SELECT net_pence INTO charged FROM ledger
        WHERE id = NEW.credit_for AND authority_id = NEW.authority_id AND kind <> 'credit'
        FOR UPDATE;
        IF charged IS NULL THEN
            RAISE EXCEPTION 'a credit must be for a charge of the same authority'
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        SELECT coalesce(sum(-net_pence), 0) INTO credited FROM ledger
        WHERE credit_for = NEW.credit_for;
        IF credited - NEW.net_pence > charged THEN
            RAISE EXCEPTION 'credits of % p would exceed the % p charged',
                credited - NEW.net_pence, charged
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ledger_line_checks BEFORE INSERT ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_line_checks();

-- What the walking skeleton charged moves into the ledger.
INSERT INTO ledger (authority_id, kind, call_id, billing_month, service_at, rate_card_id,
                    queued_at, ended_at, rate_band, rate_pence_per_minute,
                    billing_increment_seconds, minimum_charge_pence, billable_seconds,
                    charged_seconds, net_pence, vat_basis_points, created_at)
SELECT ch.authority_id, 'call', ch.call_id,
       date_trunc('month', c.answered_at AT TIME ZONE a.time_zone)::date,
       c.answered_at, rc.id, c.queued_at, c.ended_at, 'in_hours', ch.rate_pence_per_minute,
       ch.billing_increment_seconds, ch.minimum_charge_pence, ch.billable_seconds,
       ch.billable_seconds, ch.charge_pence, rc.vat_basis_points, ch.created_at
FROM charges ch
JOIN calls c ON c.id = ch.call_id
JOIN authorities a ON a.id = ch.authority_id
JOIN rate_cards rc ON rc.authority_id = ch.authority_id AND rc.effective_from = '2000-01-01';
-- Calls that ended unanswered before: their zero lines, so that every ended
-- call has one and service-level reports count them.
INSERT INTO ledger (authority_id, kind, call_id, billing_month, service_at, queued_at, ended_at,
                    net_pence, vat_basis_points, zero_rated_reason, created_at)
SELECT c.authority_id, 'call', c.id,
       date_trunc('month', c.queued_at AT TIME ZONE a.time_zone)::date,
       c.queued_at, c.queued_at, c.ended_at, 0, 0, 'not_answered', c.ended_at
FROM calls c
JOIN authorities a ON a.id = c.authority_id
WHERE c.state = 'ended' AND c.answered_at IS NULL;
DROP TABLE charges;

-- An authority's staff read their own, as with calls (migration 0006).
GRANT SELECT ON rate_cards, cost_centres, invoices, ledger TO signvideo_authority_reader;
ALTER TABLE rate_cards ENABLE ROW LEVEL SECURITY;
ALTER TABLE cost_centres ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;
ALTER TABLE ledger ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rate_cards ON rate_cards FOR SELECT TO signvideo_authority_reader
    USING (authority_id = reader_authority());
CREATE POLICY own_cost_centres ON cost_centres FOR SELECT TO signvideo_authority_reader
    USING (authority_id = reader_authority());
CREATE POLICY own_invoices ON invoices FOR SELECT TO signvideo_authority_reader
    USING (authority_id = reader_authority());
CREATE POLICY own_ledger ON ledger FOR SELECT TO signvideo_authority_reader
    USING (authority_id = reader_authority());

-- Free text as an export shows it: on one line, and never starting with a
-- character a spreadsheet would take for a formula.
CREATE FUNCTION export_text(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN t ~ '^[=+@-]' THEN '''' ELSE '' END || translate(t, E'\r\n\t', '   ')
$$;
GRANT EXECUTE ON FUNCTION export_text(text) TO signvideo_authority_reader;

-- An authority's cost centres offered now, as [{"code", "name"}], by name.
CREATE FUNCTION cost_centres_offered(authority bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('code', code, 'name', name) ORDER BY name),
                    '[]'::jsonb)
    FROM cost_centres WHERE authority_id = authority AND active
$$;
