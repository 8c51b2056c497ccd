"""The demo authority and accounts that `signvideo demo` creates once."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from signvideo.auth import hash_password


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str
    display_name: str


DEMO_SLUG = "demo"
DEMO_LOGINS = (
    DemoLogin("interpreter", "interpreter@demo.example", "interpret-demo", "Sam Interpreter"),
    DemoLogin("finance", "finance@demo.example", "finance-demo", "Fran Finance"),
)


async def seed(con: asyncpg.Connection) -> bool:
    """Create the demo authority and accounts; False if they were already there."""
    async with con.transaction():
        authority_id = await con.fetchval(
            """INSERT INTO authorities (slug, name, answer_seconds, rate_pence_per_minute,
                                        billing_increment_seconds)
               VALUES ($1, 'Demo Borough Council', 60, 150, 60)
               ON CONFLICT (slug) DO NOTHING RETURNING id""",
            DEMO_SLUG,
        )
        if authority_id is None:
            return False
        for login in DEMO_LOGINS:
            await con.execute(
                """INSERT INTO users (email, display_name, role, authority_id, password_hash)
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING""",
                login.email,
                login.display_name,
                login.role,
                authority_id if login.role == "finance" else None,
                hash_password(login.password),
            )
    return True
