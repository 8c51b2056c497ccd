"""The demo authority and accounts that `signvideo demo` creates once."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from signvideo.access import AUTHORITY_ROLES
from signvideo.auth import hash_password
from signvideo.hours import ALWAYS_OPEN


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str
    display_name: str


DEMO_SLUG = "demo"
DEMO_LOGINS = (
    DemoLogin("interpreter", "interpreter@demo.example", "interpret-demo", "Sam Interpreter"),
    DemoLogin("authority_finance", "finance@demo.example", "finance-demo", "Fran Finance"),
    DemoLogin("operator_admin", "admin@demo.example", "admin-demo", "Ada Administrator"),
)


async def seed(con: asyncpg.Connection) -> bool:
    """Create the demo authority and accounts; False if they were already there."""
    async with con.transaction():
        # Open round the clock, so that the demo works whenever it is tried.
        authority_id = await con.fetchval(
            """INSERT INTO authorities (slug, name, answer_seconds, opening_hours,
                                        closed_on_bank_holidays)
               VALUES ($1, 'Demo Borough Council', 60, $2, false)
               ON CONFLICT (slug) DO NOTHING RETURNING id""",
            DEMO_SLUG,
            ALWAYS_OPEN,
        )
        if authority_id is None:
            return False
        await con.execute(
            """INSERT INTO rate_cards (authority_id, effective_from, in_hours_pence_per_minute,
                                      out_of_hours_pence_per_minute,
                                      bank_holiday_pence_per_minute, billing_increment_seconds,
                                      minimum_charge_pence)
               VALUES ($1, '2000-01-01', 150, 150, 150, 60, 0)""",
            authority_id,
        )
        await con.executemany(
            "INSERT INTO cost_centres (authority_id, code, name) VALUES ($1, $2, $3)",
            [
                (authority_id, "ASC", "Adult social care"),
                (authority_id, "HOU", "Housing"),
                (authority_id, "REV", "Council tax and benefits"),
            ],
        )
        for login in DEMO_LOGINS:
            user_id = await con.fetchval(
                """INSERT INTO users (email, display_name, role, authority_id, password_hash)
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING RETURNING id""",
                login.email,
                login.display_name,
                login.role,
                authority_id if login.role in AUTHORITY_ROLES else None,
                hash_password(login.password),
            )
            if user_id is not None and login.role == "interpreter":
                await con.execute(
                    """INSERT INTO interpreters (user_id, languages, specialisms,
                                                 registration_number)
                       VALUES ($1, '{BSL}', '{health,legal,safeguarding}', 'DEMO-0001')""",
                    user_id,
                )
    return True
