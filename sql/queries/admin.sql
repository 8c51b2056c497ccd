-- name: admin_authorities
SELECT a.id, a.slug, a.name, a.answer_seconds, a.languages, a.max_queue_length, a.time_zone,
       (SELECT rc.in_hours_pence_per_minute FROM rate_cards rc
        WHERE rc.authority_id = a.id
          AND rc.effective_from <= (now() AT TIME ZONE a.time_zone)::date
        ORDER BY rc.effective_from DESC LIMIT 1) AS in_hours_rate
FROM authorities a ORDER BY a.name;

-- name: admin_authority
SELECT a.*, (SELECT count(*) FROM calls c WHERE c.authority_id = a.id) AS calls
FROM authorities a WHERE a.slug = $1;

-- name: admin_authority_insert
INSERT INTO authorities (slug, name, answer_seconds, languages, opening_hours, time_zone,
                         nation, closed_on_bank_holidays, max_queue_length,
                         service_level_target_percent)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (slug) DO NOTHING
RETURNING id;

-- name: admin_authority_update
-- Returns the settings as they were before the change, for the audit log.
WITH before AS (
    SELECT name, answer_seconds, languages, opening_hours, time_zone, nation,
           closed_on_bank_holidays, max_queue_length, service_level_target_percent
    FROM authorities WHERE slug = $1 FOR UPDATE
)
UPDATE authorities a
SET name = $2, answer_seconds = $3, languages = $4, opening_hours = $5, time_zone = $6,
    nation = $7, closed_on_bank_holidays = $8, max_queue_length = $9,
    service_level_target_percent = $10
FROM before
WHERE a.slug = $1
RETURNING a.id, to_jsonb(before) AS before;

-- name: admin_closures
SELECT id, first_day, last_day, reason FROM authority_closures
WHERE authority_id = $1 AND last_day >= current_date - 1
ORDER BY first_day;

-- name: admin_closure_insert
INSERT INTO authority_closures (authority_id, first_day, last_day, reason)
VALUES ($1, $2, $3, $4) RETURNING id;

-- name: admin_closure_delete
DELETE FROM authority_closures WHERE id = $1 AND authority_id = $2
RETURNING first_day, last_day, reason;

-- name: admin_interpreters
SELECT u.id, u.display_name, u.email, p.languages, p.specialisms, p.register_body,
       p.category, p.registration_number, p.registration_expires
FROM users u JOIN interpreters p ON p.user_id = u.id
ORDER BY u.display_name, u.id;

-- name: admin_interpreter
SELECT u.id, u.display_name, u.email, p.languages, p.specialisms, p.register_body,
       p.category, p.registration_number, p.registration_expires
FROM users u JOIN interpreters p ON p.user_id = u.id
WHERE u.id = $1;

-- name: admin_interpreter_update
WITH before AS (
    SELECT languages, specialisms, register_body, category, registration_number,
           registration_expires
    FROM interpreters WHERE user_id = $1 FOR UPDATE
)
UPDATE interpreters p
SET languages = $2, specialisms = $3, register_body = $4, category = $5,
    registration_number = $6, registration_expires = $7
FROM before
WHERE p.user_id = $1
RETURNING to_jsonb(before) AS before;

-- name: specialisms_all
SELECT code, name, trainee_allowed FROM specialisms ORDER BY name;

-- name: admin_users
SELECT u.id, u.display_name, u.email, u.role, a.slug AS authority, a.name AS authority_name,
       (SELECT max(s.expires_at) > now() FROM sessions s WHERE s.user_id = u.id) AS signed_in
FROM users u LEFT JOIN authorities a ON a.id = u.authority_id
ORDER BY u.display_name, u.id;

-- name: admin_user
SELECT u.id, u.display_name, u.email, u.role, a.slug AS authority
FROM users u LEFT JOIN authorities a ON a.id = u.authority_id
WHERE u.id = $1;

-- name: admin_user_insert
-- A new account with no usable password: it gets one through a one-time link.
INSERT INTO users (email, display_name, role, authority_id, password_hash)
VALUES ($1, $2, $3, (SELECT id FROM authorities WHERE slug = $4), $5)
ON CONFLICT (email) DO NOTHING
RETURNING id;

-- name: admin_user_update
WITH before AS (
    SELECT u.display_name, u.role, a.slug AS authority
    FROM users u LEFT JOIN authorities a ON a.id = u.authority_id
    WHERE u.id = $1 FOR UPDATE OF u
)
UPDATE users u
SET display_name = $2, role = $3, authority_id = (SELECT id FROM authorities WHERE slug = $4)
FROM before
WHERE u.id = $1
RETURNING to_jsonb(before) AS before;

-- name: interpreter_profile_ensure
INSERT INTO interpreters (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING;

-- name: sessions_revoke
DELETE FROM sessions WHERE user_id = $1;

-- name: password_link_insert
-- A new link for the user; any earlier one not yet used stops working (it
-- may have gone to the wrong person, which is why a new one is made).
WITH earlier AS (
    UPDATE password_links SET used_at = now()
    WHERE user_id = $2 AND used_at IS NULL
)
INSERT INTO password_links (token_sha256, user_id, issued_by, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4));

-- name: password_link_find
SELECT l.user_id, u.email, u.display_name, l.expires_at, l.used_at,
       l.expires_at > now() AND l.used_at IS NULL AS usable
FROM password_links l JOIN users u ON u.id = l.user_id
WHERE l.token_sha256 = $1;

-- name: password_link_use
-- Spends the link (once: a second use finds no row) and sets the password.
WITH spent AS (
    UPDATE password_links SET used_at = now()
    WHERE token_sha256 = $1 AND used_at IS NULL AND expires_at > now()
    RETURNING user_id
),
others AS (
    UPDATE password_links l SET used_at = now()
    FROM spent WHERE l.user_id = spent.user_id AND l.used_at IS NULL AND l.token_sha256 <> $1
)
UPDATE users u SET password_hash = $2 FROM spent WHERE u.id = spent.user_id
RETURNING u.id, u.email, u.display_name, u.role, u.authority_id;

-- name: admin_rate_cards
SELECT rc.*, EXISTS (SELECT 1 FROM ledger l WHERE l.rate_card_id = rc.id) AS used
FROM rate_cards rc WHERE rc.authority_id = $1 ORDER BY rc.effective_from;

-- name: admin_rate_card_insert
INSERT INTO rate_cards (authority_id, effective_from, in_hours_pence_per_minute,
                        out_of_hours_pence_per_minute, bank_holiday_pence_per_minute,
                        billing_increment_seconds, minimum_charge_pence,
                        monthly_standing_charge_pence, vat_basis_points, in_hours_days,
                        in_hours_start, in_hours_end, technical_grace_seconds, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (authority_id, effective_from) DO NOTHING
RETURNING id;

-- name: admin_rate_card_delete
DELETE FROM rate_cards WHERE id = $1 AND authority_id = $2
RETURNING effective_from, in_hours_pence_per_minute, out_of_hours_pence_per_minute,
          bank_holiday_pence_per_minute, billing_increment_seconds;

-- name: admin_cost_centres
SELECT code, name, active FROM cost_centres WHERE authority_id = $1 ORDER BY code;

-- name: admin_cost_centre_insert
INSERT INTO cost_centres (authority_id, code, name) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING
RETURNING code;

-- name: admin_cost_centre_toggle
UPDATE cost_centres SET active = NOT active WHERE authority_id = $1 AND code = $2
RETURNING active;

-- name: admin_answered_since
SELECT EXISTS (SELECT 1 FROM calls WHERE authority_id = $1 AND answered_at >= $2);
