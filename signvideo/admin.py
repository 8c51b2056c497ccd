"""Pages for the operator administrator: authorities, interpreters, staff
accounts and their roles, one-time links to set a password, and the audit
log. Every change is recorded in the audit log with what it was before."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import asyncpg
from aiohttp import web

from signvideo import access, audit, forms, routing
from signvideo.auth import User, hash_password, token_digest
from signvideo.db import Q
from signvideo.forms import Field
from signvideo.hours import DAY_NAMES, DAYS, NATIONS, HoursError, validate_weekly, zone
from signvideo.keys import POOL
from signvideo.views import render

AUDIT_PAGE = 50
PASSWORD_LINK_HOURS = 72
SLUG_PATTERN = r"[a-z0-9][a-z0-9-]{0,62}"

SIGN_LANGUAGES = (("BSL", "British Sign Language (BSL)"), ("ISL", "Irish Sign Language (ISL)"))
REGISTER_BODIES = (
    ("NRCPD", "NRCPD (National Registers of Communication Professionals)"),
    ("SRLPDC", "SRLPDC (Scottish Register of Language Professionals)"),
)
CATEGORIES = (("registered", "Registered interpreter"), ("trainee", "Trainee interpreter"))
NATION_CHOICES = (
    ("england-and-wales", "England and Wales"),
    ("scotland", "Scotland"),
    ("northern-ireland", "Northern Ireland"),
)
assert {n for n, _ in NATION_CHOICES} == set(NATIONS)


async def _admin(request: web.Request) -> User:
    return await access.require_page(request, access.ADMIN)


async def _link_page(request: web.Request, email: str, link: str | None, new: bool) -> web.Response:
    """The one-time link, shown once: the browser must not keep a copy."""
    page = await render(
        request,
        "admin/link.html",
        {"email": email, "link": link, "hours": PASSWORD_LINK_HOURS, "new": new},
    )
    page.headers["Cache-Control"] = "no-store"
    return page


def _see_other(path: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(path)


# Start page and audit log -----------------------------------------------------


async def index(request: web.Request) -> web.Response:
    await _admin(request)
    return await render(request, "admin/index.html", {})


async def audit_log(request: web.Request) -> web.Response:
    """The newest entries first, a page at a time ("before" an entry id)."""
    await access.require_page(request, access.AUDIT)
    before_text = request.query.get("before")
    before: int | None = None
    if before_text is not None:
        if not before_text.isdigit() or len(before_text) > 18:
            raise web.HTTPBadRequest(
                text=f'"before" must be an entry number, like 120; {before_text[:30]!r} is not.'
            )
        before = int(before_text)
    rows = await request.app[POOL].fetch(Q["audit_recent"], AUDIT_PAGE + 1, before)
    return await render(
        request,
        "admin/audit.html",
        {
            "entries": rows[:AUDIT_PAGE],
            "older": rows[AUDIT_PAGE - 1]["id"] if len(rows) > AUDIT_PAGE else None,
        },
    )


# Authorities ------------------------------------------------------------------


def authority_fields(new: bool) -> list[Field]:
    fields = [Field("name", "Name", hint="As callers know it, like Leeds City Council.")]
    if new:
        fields.append(
            Field(
                "slug",
                "Short name for links",
                hint="Lower-case letters, numbers and hyphens: "
                "callers' link will be /call/<short name>.",
                pattern=SLUG_PATTERN,
                pattern_words="must be lower-case letters, numbers and hyphens, like leeds",
                max_length=63,
                width="input--medium",
            )
        )
    fields += [
        Field(
            "answer_seconds",
            "Guaranteed answer time in seconds",
            kind="number",
            hint="The authority's promise: callers are answered within this time.",
            minimum=10,
            maximum=3600,
            width="input--short",
        ),
        Field("languages", "Sign languages offered", kind="checkboxes", choices=SIGN_LANGUAGES),
    ]
    for day, name in zip(DAYS, DAY_NAMES, strict=True):
        fields.append(
            Field(
                f"hours_{day}",
                f"{name} opening hours",
                hint="Like 09:00-17:00, or 09:00-12:30, 13:30-17:00. "
                "Leave empty if closed all day.",
                required=False,
                pattern=r"\d\d:\d\d-\d\d:\d\d(\s*,\s*\d\d:\d\d-\d\d:\d\d)*",
                pattern_words="must be times like 09:00-17:00, with a comma between periods",
                width="input--medium",
            )
        )
    fields += [
        Field(
            "time_zone",
            "Time zone",
            hint="The hours are in this time zone, like Europe/London.",
            max_length=60,
            width="input--medium",
        ),
        Field("nation", "Bank holidays of", kind="select", choices=NATION_CHOICES),
        Field(
            "closed_on_bank_holidays",
            "Closed on bank holidays?",
            kind="radios",
            choices=forms.YES_NO,
        ),
        Field(
            "max_queue_length",
            "Most callers waiting at once",
            kind="number",
            hint="When this many are waiting, new callers are told to try again later.",
            minimum=1,
            maximum=100_000,
            width="input--short",
        ),
        Field(
            "service_level_target_percent",
            "Promised service level, per cent",
            kind="number",
            hint="The share of callers to be answered within the guaranteed time, like 90. "
            "Service-level reports measure against it.",
            minimum=1,
            maximum=100,
            width="input--short",
        ),
    ]
    return fields


def _hours_text(periods: list[list[str]]) -> str:
    return ", ".join(f"{opens}-{closes}" for opens, closes in periods)


def _authority_form_values(row: asyncpg.Record) -> dict[str, forms.Value]:
    values: dict[str, forms.Value] = {
        name: row[name]
        for name in (
            "name",
            "answer_seconds",
            "time_zone",
            "nation",
            "closed_on_bank_holidays",
            "max_queue_length",
            "service_level_target_percent",
        )
    }
    values["languages"] = list(row["languages"])
    for day in DAYS:
        values[f"hours_{day}"] = _hours_text(row["opening_hours"].get(day, []))
    return values


def _weekly(form: forms.Form) -> dict[str, list[list[str]]] | None:
    """The opening hours of a checked form, or None with the day's error set."""
    weekly: dict[str, list[list[str]]] = {}
    for day in DAYS:
        text = form.values.get(f"hours_{day}")
        weekly[day] = [
            [part.strip() for part in period.split("-")]
            for period in (str(text).split(",") if text else [])
        ]
    try:
        return validate_weekly(weekly)
    except HoursError as err:
        message = str(err)
        day = next((d for d in DAYS if message.startswith(d)), "mon")
        form.errors.setdefault(f"hours_{day}", f"Check the opening hours: {message}.")
        return None


def _check_time_zone(form: forms.Form) -> None:
    name = form.values.get("time_zone")
    if isinstance(name, str) and name:
        try:
            zone(name)
        except (ValueError, KeyError):
            form.errors["time_zone"] = (
                f"{name!r} is not a time zone we know; use a name like Europe/London."
            )


def _authority_arguments(form: forms.Form, weekly: dict[str, list[list[str]]]) -> list[Any]:
    v = form.values
    return [
        v["name"],
        v["answer_seconds"],
        v["languages"],
        weekly,
        v["time_zone"],
        v["nation"],
        v["closed_on_bank_holidays"],
        v["max_queue_length"],
        v["service_level_target_percent"],
    ]


async def authorities(request: web.Request) -> web.Response:
    await _admin(request)
    rows = await request.app[POOL].fetch(Q["admin_authorities"])
    return await render(request, "admin/authorities.html", {"authorities": rows})


async def authority_new(request: web.Request) -> web.Response:
    user = await _admin(request)
    fields = authority_fields(new=True)
    if request.method == "GET":
        form = forms.Form(
            fields,
            {
                "answer_seconds": 60,
                "languages": ["BSL"],
                "time_zone": "Europe/London",
                "nation": "england-and-wales",
                "closed_on_bank_holidays": True,
                "max_queue_length": 50,
                "service_level_target_percent": 90,
                **{f"hours_{day}": "09:00-17:00" for day in DAYS[:5]},
            },
        )
        return await render(request, "admin/authority.html", {"form": form, "authority": None})
    form = forms.read(fields, await request.post())
    _check_time_zone(form)
    weekly = _weekly(form)
    if form.ok and weekly is not None:
        pool = request.app[POOL]
        async with pool.acquire() as con, con.transaction():
            authority_id = await con.fetchval(
                Q["admin_authority_insert"],
                form.values["slug"],
                *_authority_arguments(form, weekly),
            )
            if authority_id is None:
                form.errors["slug"] = (
                    f"The short name {form.values['slug']!r} is taken; choose another."
                )
            else:
                await audit.record(
                    con,
                    request,
                    "authority.create",
                    user=user,
                    authority_id=authority_id,
                    detail={"slug": form.values["slug"], "name": form.values["name"]},
                )
        if authority_id is not None:
            raise _see_other(f"/admin/authorities/{form.values['slug']}/billing?saved=created")
    return await render(
        request, "admin/authority.html", {"form": form, "authority": None}, status=400
    )


async def _authority_row(request: web.Request) -> asyncpg.Record:
    slug = request.match_info["slug"]
    row = await request.app[POOL].fetchrow(Q["admin_authority"], slug)
    if row is None:
        raise web.HTTPNotFound(text=f"There is no authority called {slug[:63]!r}.")
    return row


async def _authority_page(
    request: web.Request, row: asyncpg.Record, form: forms.Form, status: int = 200, **extra: Any
) -> web.Response:
    closures = await request.app[POOL].fetch(Q["admin_closures"], row["id"])
    saved = {
        "created": "The authority has been set up.",
        "saved": "Your changes have been saved.",
        "closure": "The closure has been added.",
        "removed": "The closure has been removed.",
    }.get(request.query.get("saved", ""))
    context = {
        "form": form,
        "authority": row,
        "closures": closures,
        "closure_form": extra.pop("closure_form", forms.Form(CLOSURE_FIELDS)),
        "saved": saved,
        **extra,
    }
    return await render(request, "admin/authority.html", context, status=status)


async def authority_edit(request: web.Request) -> web.Response:
    user = await _admin(request)
    row = await _authority_row(request)
    fields = authority_fields(new=False)
    if request.method == "GET":
        form = forms.Form(fields, _authority_form_values(row))
        return await _authority_page(request, row, form)
    form = forms.read(fields, await request.post())
    _check_time_zone(form)
    weekly = _weekly(form)
    if not form.ok or weekly is None:
        return await _authority_page(request, row, form, status=400)
    pool = request.app[POOL]
    async with pool.acquire() as con, con.transaction():
        changed = await con.fetchrow(
            Q["admin_authority_update"], row["slug"], *_authority_arguments(form, weekly)
        )
        await audit.record(
            con,
            request,
            "authority.update",
            user=user,
            authority_id=row["id"],
            detail={"before": changed["before"]},
        )
    raise _see_other(f"/admin/authorities/{row['slug']}?saved=saved")


CLOSURE_FIELDS = (
    Field("first_day", "First day closed", kind="date", width="input--date"),
    Field("last_day", "Last day closed", kind="date", width="input--date"),
    Field(
        "reason",
        "Reason callers are shown",
        hint="Like: staff training day. Callers see it with when the service opens again.",
        max_length=200,
    ),
)


async def closure_add(request: web.Request) -> web.Response:
    user = await _admin(request)
    row = await _authority_row(request)
    form = forms.read(CLOSURE_FIELDS, await request.post())
    first, last = form.values.get("first_day"), form.values.get("last_day")
    if isinstance(first, dt.date) and isinstance(last, dt.date) and last < first:
        form.errors["last_day"] = "The last day closed must be on or after the first day."
    if not form.ok:
        edit = forms.Form(authority_fields(new=False), _authority_form_values(row))
        return await _authority_page(request, row, edit, status=400, closure_form=form)
    pool = request.app[POOL]
    async with pool.acquire() as con, con.transaction():
        await con.fetchval(Q["admin_closure_insert"], row["id"], first, last, form.values["reason"])
        await audit.record(
            con,
            request,
            "closure.add",
            user=user,
            authority_id=row["id"],
            detail={
                "first_day": str(first),
                "last_day": str(last),
                "reason": form.values["reason"],
            },
        )
    raise _see_other(f"/admin/authorities/{row['slug']}?saved=closure")


async def closure_remove(request: web.Request) -> web.Response:
    user = await _admin(request)
    row = await _authority_row(request)
    closure = forms.path_id(request, "closure", "There is no such closure.")
    pool = request.app[POOL]
    async with pool.acquire() as con, con.transaction():
        removed = await con.fetchrow(Q["admin_closure_delete"], closure, row["id"])
        if removed is None:
            raise web.HTTPNotFound(text="There is no such closure; it may have been removed.")
        await audit.record(
            con,
            request,
            "closure.remove",
            user=user,
            authority_id=row["id"],
            detail={k: str(v) for k, v in removed.items()},
        )
    raise _see_other(f"/admin/authorities/{row['slug']}?saved=removed")


# Interpreters -----------------------------------------------------------------


async def interpreter_fields(pool: asyncpg.Pool) -> list[Field]:
    specialisms = await pool.fetch(Q["specialisms_all"])
    return [
        Field("languages", "Sign languages", kind="checkboxes", choices=SIGN_LANGUAGES),
        Field(
            "specialisms",
            "Specialisms",
            kind="checkboxes",
            required=False,
            hint="Calls that need one of these go only to interpreters who hold it. "
            "Trainees are never offered criminal-justice or mental-health calls.",
            choices=[(s["code"], s["name"]) for s in specialisms],
        ),
        Field("register_body", "Register", kind="select", choices=REGISTER_BODIES),
        Field("category", "Register category", kind="radios", choices=CATEGORIES),
        Field(
            "registration_number",
            "Registration number",
            required=False,
            max_length=40,
            width="input--medium",
        ),
        Field(
            "registration_expires",
            "Registration expires on",
            kind="date",
            required=False,
            width="input--date",
        ),
    ]


async def interpreters(request: web.Request) -> web.Response:
    await _admin(request)
    rows = await request.app[POOL].fetch(Q["admin_interpreters"])
    return await render(
        request, "admin/interpreters.html", {"interpreters": rows, "today": dt.date.today()}
    )


def _user_id(request: web.Request) -> int:
    return forms.path_id(request, "user", "There is no such account.")


async def interpreter_edit(request: web.Request) -> web.Response:
    user = await _admin(request)
    pool = request.app[POOL]
    row = await pool.fetchrow(Q["admin_interpreter"], _user_id(request))
    if row is None:
        raise web.HTTPNotFound(text="There is no such interpreter.")
    fields = await interpreter_fields(pool)
    if request.method == "GET":
        values: dict[str, forms.Value] = {
            "languages": list(row["languages"]),
            "specialisms": list(row["specialisms"]),
            "register_body": row["register_body"],
            "category": row["category"],
            "registration_number": row["registration_number"],
            "registration_expires": row["registration_expires"],
        }
        form = forms.Form(fields, values)
        saved = "Your changes have been saved." if request.query.get("saved") else None
        return await render(
            request, "admin/interpreter.html", {"form": form, "person": row, "saved": saved}
        )
    form = forms.read(fields, await request.post())
    if not form.ok:
        return await render(
            request, "admin/interpreter.html", {"form": form, "person": row}, status=400
        )
    v = form.values
    async with pool.acquire() as con, con.transaction():
        changed = await con.fetchrow(
            Q["admin_interpreter_update"],
            row["id"],
            v["languages"],
            v["specialisms"],
            v["register_body"],
            v["category"],
            v["registration_number"],
            v["registration_expires"],
        )
        await audit.record(
            con,
            request,
            "interpreter.update",
            user=user,
            detail={"interpreter": row["email"], "before": changed["before"]},
        )
    raise _see_other(f"/admin/interpreters/{row['id']}?saved=1")


# Staff accounts and roles ---------------------------------------------------------


EMAIL_FIELD = Field("email", "Email address", kind="email", max_length=254, autocomplete="off")
NAME_FIELD = Field(
    "display_name", "Name", hint="Shown to callers for interpreters.", max_length=100
)


async def user_fields(pool: asyncpg.Pool, new: bool) -> list[Field]:
    authorities_list = await pool.fetch(Q["admin_authorities"])
    fields = []
    if new:
        fields.append(EMAIL_FIELD)
    fields += [
        NAME_FIELD,
        Field(
            "role",
            "Role",
            kind="radios",
            choices=[
                (access.OPERATOR_ADMIN, "Operator administrator: runs the whole service"),
                (access.SUPERVISOR, "Supervisor: watches queues and service levels"),
                (access.INTERPRETER, "Interpreter: takes calls"),
                (access.AUTHORITY_ADMIN, "Authority administrator: one authority's data"),
                (access.AUTHORITY_FINANCE, "Authority finance: one authority's usage and bills"),
            ],
        ),
        Field(
            "authority",
            "Authority",
            kind="select",
            required=False,
            hint="Only for authority administrators and authority finance.",
            choices=[(a["slug"], a["name"]) for a in authorities_list],
        ),
    ]
    return fields


def _check_role_authority(form: forms.Form) -> None:
    role, authority = form.values.get("role"), form.values.get("authority")
    if role in access.AUTHORITY_ROLES and not authority:
        form.errors["authority"] = "Choose the authority this person works for."
    elif role not in access.AUTHORITY_ROLES and authority:
        form.errors["authority"] = (
            "Only authority administrators and authority finance belong to an authority; "
            "choose None."
        )


async def users(request: web.Request) -> web.Response:
    await _admin(request)
    rows = await request.app[POOL].fetch(Q["admin_users"])
    return await render(
        request, "admin/users.html", {"users": rows, "role_names": access.ROLE_NAMES}
    )


async def add_account(
    con: asyncpg.Connection, email: str, name: str, role: str, authority: str | None
) -> int | None:
    """A new staff account whose password nobody knows (its person sets
    theirs through a link: new_password_link); None if the address has one."""
    user_id: int | None = await con.fetchval(
        Q["admin_user_insert"],
        email,
        name,
        role,
        authority,
        hash_password(secrets.token_urlsafe(32)),
    )
    if user_id is not None and role == access.INTERPRETER:
        await con.execute(Q["interpreter_profile_ensure"], user_id)
    return user_id


async def new_password_link(con: asyncpg.Connection, user_id: int, issued_by: int | None) -> str:
    """A one-time link's token for the account to choose its password, good
    for PASSWORD_LINK_HOURS; any earlier link for it stops working."""
    token = secrets.token_urlsafe(32)
    await con.execute(
        Q["password_link_insert"],
        token_digest(token),
        user_id,
        issued_by,
        PASSWORD_LINK_HOURS * 3600,
    )
    return token


async def _issue_link(
    con: asyncpg.Connection, request: web.Request, by: User, user_id: int, email: str
) -> str:
    token = await new_password_link(con, user_id, by.id)
    await audit.record(con, request, "password_link.issue", user=by, detail={"for": email})
    return f"{request.scheme}://{request.host}/password/{token}"


async def user_new(request: web.Request) -> web.Response:
    by = await _admin(request)
    pool = request.app[POOL]
    fields = await user_fields(pool, new=True)
    if request.method == "GET":
        return await render(
            request, "admin/user.html", {"form": forms.Form(fields), "person": None}
        )
    form = forms.read(fields, await request.post())
    _check_role_authority(form)
    if not form.ok:
        return await render(request, "admin/user.html", {"form": form, "person": None}, status=400)
    v = form.values
    link = None
    async with pool.acquire() as con, con.transaction():
        user_id = await add_account(
            con,
            str(v["email"]),
            str(v["display_name"]),
            str(v["role"]),
            None if v["authority"] is None else str(v["authority"]),
        )
        if user_id is not None:
            await audit.record(
                con,
                request,
                "user.create",
                user=by,
                detail={"email": v["email"], "role": v["role"], "authority": v["authority"]},
            )
            link = await _issue_link(con, request, by, user_id, str(v["email"]))
    if user_id is None:
        form.errors["email"] = f"There is already an account for {v['email']}."
        return await render(request, "admin/user.html", {"form": form, "person": None}, status=400)
    return await _link_page(request, str(v["email"]), link, new=True)


async def _user_row(request: web.Request) -> asyncpg.Record:
    row = await request.app[POOL].fetchrow(Q["admin_user"], _user_id(request))
    if row is None:
        raise web.HTTPNotFound(text="There is no such account.")
    return row


async def user_edit(request: web.Request) -> web.Response:
    by = await _admin(request)
    pool = request.app[POOL]
    row = await _user_row(request)
    fields = await user_fields(pool, new=False)
    if request.method == "GET":
        values: dict[str, forms.Value] = {
            "display_name": row["display_name"],
            "role": row["role"],
            "authority": row["authority"],
        }
        saved = {
            "saved": "Your changes have been saved.",
            "signed_out": "They have been signed out everywhere.",
        }.get(request.query.get("saved", ""))
        return await render(
            request,
            "admin/user.html",
            {"form": forms.Form(fields, values), "person": row, "saved": saved},
        )
    form = forms.read(fields, await request.post())
    _check_role_authority(form)
    if row["id"] == by.id and form.values.get("role") != row["role"]:
        form.errors["role"] = "You cannot change your own role; ask another operator administrator."
    if not form.ok:
        return await render(request, "admin/user.html", {"form": form, "person": row}, status=400)
    v = form.values
    async with pool.acquire() as con, con.transaction():
        changed = await con.fetchrow(
            Q["admin_user_update"], row["id"], v["display_name"], v["role"], v["authority"]
        )
        if v["role"] == access.INTERPRETER:
            await con.execute(Q["interpreter_profile_ensure"], row["id"])
        if v["role"] != row["role"]:
            # What they may do changes now, not when their session runs out.
            await _sign_out_everywhere(con, row["id"])
        await audit.record(
            con,
            request,
            "user.update",
            user=by,
            detail={"email": row["email"], "before": changed["before"]},
        )
    raise _see_other(f"/admin/users/{row['id']}?saved=saved")


async def _sign_out_everywhere(con: asyncpg.Connection, user_id: int) -> None:
    """End their sessions, and close an open console wherever it is (the
    message travels through the mailbox to the process that holds it). The
    browsers they used stay known to the account (auth.DEVICE_COOKIE): if
    someone is guessing their password, they must still be able to sign in."""
    await con.execute(Q["sessions_revoke"], user_id)
    await routing.post(
        con,
        routing.interpreter_key(user_id),
        {"type": "signed_out", "message": "You were signed out by an administrator."},
    )


async def user_link(request: web.Request) -> web.Response:
    """A one-time link for this person to set a new password."""
    by = await _admin(request)
    row = await _user_row(request)
    async with request.app[POOL].acquire() as con, con.transaction():
        link = await _issue_link(con, request, by, row["id"], row["email"])
    return await _link_page(request, row["email"], link, new=False)


async def user_sign_out(request: web.Request) -> web.Response:
    """End every session of this person, at once, wherever they are."""
    by = await _admin(request)
    row = await _user_row(request)
    async with request.app[POOL].acquire() as con, con.transaction():
        await _sign_out_everywhere(con, row["id"])
        await audit.record(con, request, "sessions.revoke", user=by, detail={"for": row["email"]})
    raise _see_other(f"/admin/users/{row['id']}?saved=signed_out")


# Identity providers ---------------------------------------------------------------


async def provider_fields(pool: asyncpg.Pool) -> list[Field]:
    authorities_list = await pool.fetch(Q["admin_authorities"])
    return [
        Field(
            "name",
            "Name people see",
            hint="Like: Leeds City Council staff account.",
            max_length=100,
        ),
        Field(
            "issuer",
            "Issuer URL",
            hint="The provider's issuer, exactly as its discovery document gives it.",
            pattern=r"https://\S+|http://(127\.0\.0\.1|localhost)(:\d+)?(/\S*)?",
            pattern_words="must be a web address starting https:// (http:// only on this "
            "machine, 127.0.0.1)",
            max_length=300,
        ),
        Field("client_id", "Client ID", max_length=200),
        Field("client_secret", "Client secret", kind="password", max_length=500),
        Field(
            "authority",
            "Whose staff sign in with it",
            kind="select",
            required=False,
            hint="Choose None for the shared service's own staff.",
            choices=[(a["slug"], a["name"]) for a in authorities_list],
        ),
    ]


async def providers(request: web.Request) -> web.Response:
    user = await _admin(request)
    pool = request.app[POOL]
    fields = await provider_fields(pool)
    form, status = forms.Form(fields), 200
    if request.method == "POST":
        form = forms.read(fields, await request.post())
        if form.ok:
            v = form.values
            async with pool.acquire() as con, con.transaction():
                provider_id = await con.fetchval(
                    Q["identity_provider_insert"],
                    v["authority"],
                    v["name"],
                    v["issuer"],
                    v["client_id"],
                    v["client_secret"],
                )
                await audit.record(
                    con,
                    request,
                    "identity_provider.add",
                    user=user,
                    detail={"id": provider_id, "name": v["name"], "issuer": v["issuer"]},
                )
            raise _see_other("/admin/identity-providers?saved=1")
        status = 400
    saved = "The identity provider has been added." if request.query.get("saved") else None
    removed = "The identity provider has been removed." if request.query.get("removed") else None
    return await render(
        request,
        "admin/providers.html",
        {
            "form": form,
            "providers": await pool.fetch(Q["identity_providers_listed"]),
            "saved": saved or removed,
            "callback": f"{request.scheme}://{request.host}/login/oidc/callback",
        },
        status=status,
    )


async def provider_remove(request: web.Request) -> web.Response:
    user = await _admin(request)
    provider = forms.path_id(request, "provider", "There is no such identity provider.")
    async with request.app[POOL].acquire() as con, con.transaction():
        row = await con.fetchrow(Q["identity_provider_delete"], provider)
        if row is None:
            raise web.HTTPNotFound(text="There is no such identity provider; it may be gone.")
        await audit.record(con, request, "identity_provider.remove", user=user, detail=dict(row))
    raise _see_other("/admin/identity-providers?removed=1")
