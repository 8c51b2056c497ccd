"""The `signvideo` command: serve, migrate, demo, export, add-admin."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import re
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import asyncpg
from aiohttp import web
from tqdm import tqdm

from signvideo import access, admin, audit, demo, exports, forms
from signvideo.admin import PASSWORD_LINK_HOURS
from signvideo.app import create_app
from signvideo.config import SETTINGS, Config, ConfigError
from signvideo.db import MigrationError, Q, init_connection, migrate, start_embedded

log = logging.getLogger("signvideo")
T = TypeVar("T")

SERVE_SETTINGS = {s.name for s in SETTINGS}
DB_SETTINGS = {"database_url", "data_dir", "log_level"}


def _add_settings(parser: argparse.ArgumentParser, names: set[str]) -> None:
    for setting in SETTINGS:
        if setting.name not in names:
            continue
        default = "unset" if setting.default is None else repr(setting.default)
        parser.add_argument(
            f"--{setting.name.replace('_', '-')}",
            dest=setting.name,
            default=None,
            metavar=setting.name.upper(),
            help=f"{setting.help} (env {setting.env}, default {default})",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signvideo",
        description="Rapid-access sign-language video interpreting, shared by many public bodies.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the web service")
    _add_settings(serve, SERVE_SETTINGS)
    mig = commands.add_parser("migrate", help="apply database migrations and exit")
    _add_settings(mig, DB_SETTINGS)
    dem = commands.add_parser(
        "demo",
        help="migrate, create a demo authority and accounts (once), print the logins and serve",
    )
    _add_settings(dem, SERVE_SETTINGS)
    exp = commands.add_parser(
        "export",
        help="write an authority's usage for a billing month or a range of days",
        description="Write one authority's usage (the columns of docs/exports.md) to a file "
        "or standard output. A progress bar is shown when this runs in a terminal. Exit "
        "status: 0 written, 2 bad arguments, 3 no such authority, 1 anything else.",
    )
    exp.add_argument("--authority", required=True, metavar="SLUG", help="its short name")
    exp.add_argument("--month", metavar="YYYY-MM", help="a billing month, like 2026-11")
    exp.add_argument("--from", dest="first_day", metavar="YYYY-MM-DD", help="first day")
    exp.add_argument("--to", dest="last_day", metavar="YYYY-MM-DD", help="last day (included)")
    exp.add_argument("--format", choices=exports.FORMATS, default="csv", help="default csv")
    exp.add_argument(
        "--output", "-o", metavar="FILE", help="where to write it (default: standard output)"
    )
    _add_settings(exp, DB_SETTINGS)
    adm = commands.add_parser(
        "add-admin",
        help="make an operator administrator's account, or a new link for one, and print "
        "the link to set its password",
        description="For the first administrator of a new installation, or one who has lost "
        "their password: prints a one-time link, good for "
        f"{PASSWORD_LINK_HOURS} hours, to choose a password (an earlier link stops working). "
        "Exit status: 0 done, 2 bad arguments, 3 the address belongs to an account that is "
        "not an operator administrator's, 1 anything else.",
    )
    adm.add_argument("--email", required=True, help="their email address: how they sign in")
    adm.add_argument("--name", help="their name as colleagues see it (a new account only)")
    adm.add_argument(
        "--site",
        metavar="URL",
        help="the address people open, like https://signvideo.example.org "
        "(default: http://HOST:PORT from the settings)",
    )
    _add_settings(adm, DB_SETTINGS)
    return parser


async def _add_admin(dsn: str, email: str, name: str | None) -> tuple[str, bool]:
    """An operator administrator's account for `email` (made if there is none)
    and a new one-time link for it: the link's token, and whether the
    account is new."""
    con = await asyncpg.connect(dsn)
    try:
        await init_connection(con)
        async with con.transaction():
            found = await con.fetchrow(Q["user_by_email"], email)
            if found is not None and found["role"] != access.OPERATOR_ADMIN:
                role = access.ROLE_NAMES.get(found["role"], found["role"])
                raise CommandFailed(
                    f"{email} already has an account, as {role}; an operator administrator "
                    "can change its role at /admin/users.",
                    3,
                )
            made = found is None
            if found is None:
                user_id = await admin.add_account(
                    con, email, name or email.split("@")[0], access.OPERATOR_ADMIN, None
                )
                if user_id is None:
                    raise CommandFailed(
                        f"{email} was being added elsewhere at the same moment; run this "
                        "again for a link.",
                        1,
                    )
                await audit.record(
                    con,
                    None,
                    "user.create",
                    actor="command line",
                    detail={"email": email, "role": access.OPERATOR_ADMIN, "authority": None},
                )
            else:
                user_id = found["id"]
            token = await admin.new_password_link(con, user_id, None)
            await audit.record(
                con, None, "password_link.issue", actor="command line", detail={"for": email}
            )
        return token, made
    finally:
        await con.close()


EXPORT_ARGUMENTS = {"authority", "month", "first_day", "last_day", "format", "output"}
ADD_ADMIN_ARGUMENTS = {"email", "name", "site"}


class CommandFailed(Exception):
    """Why a command could not do its work, and its exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _run_command(work: Coroutine[Any, Any, T], failing: str) -> T | int:
    """Run a command's work; on failure, say why and give its exit status
    (a command's result is never an int)."""
    try:
        return asyncio.run(work)
    except CommandFailed as err:
        print(f"signvideo: {err}", file=sys.stderr)
        return err.status
    except (OSError, asyncpg.PostgresError) as err:
        print(f"signvideo: {failing}: {err}", file=sys.stderr)
        return 1


async def _export(dsn: str, args: argparse.Namespace) -> str:
    """Write the export; returns what was written, for the closing line."""
    query = {
        key: value
        for key, value in (("month", args.month), ("from", args.first_day), ("to", args.last_day))
        if value
    }
    con = await asyncpg.connect(dsn)
    try:
        await init_connection(con)
        authority = await con.fetchrow(Q["authority_by_slug"], args.authority)
        if authority is None:
            raise CommandFailed(f"there is no authority called {args.authority!r}", 3)
        try:
            sel = exports.selection(authority, query)
        except exports.SelectionError as err:
            raise CommandFailed(str(err), 2) from None
        async with con.transaction(readonly=True, isolation="repeatable_read"):
            try:
                await exports.check_size(con, sel, args.format)
            except exports.TooManyLines as err:
                raise CommandFailed(str(err), 2) from None
            total = (await exports.totals(con, sel))["lines"]
            bar = None
            if sys.stderr.isatty():
                bar = tqdm(
                    total=total, unit=" lines", file=sys.stderr, desc=sel.filename(args.format)
                )
            target = args.output or "standard output"
            # A file appears whole or not at all: a half-written export must
            # never be taken for a month's usage.
            partial = f"{args.output}.part" if args.output else None
            sink = open(partial, "wb") if partial else sys.stdout.buffer  # noqa: SIM115
            try:

                async def write(data: bytes) -> None:
                    sink.write(data)

                await exports.export(con, sel, args.format, write, bar.update if bar else None)
                sink.flush()
                if partial:
                    sink.close()
                    os.replace(partial, args.output)
            finally:
                if bar is not None:
                    bar.close()
                if partial:
                    sink.close()
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(partial)
        await audit.record(
            con,
            None,
            "export.usage_cli",
            actor="command line",
            authority_id=authority["id"],
            detail={**sel.described, "format": args.format},
        )
        return f"{total:,} lines for {authority['slug']} to {target}"
    finally:
        await con.close()


async def _prepare_database(dsn: str, seed_demo: bool) -> bool:
    con = await asyncpg.connect(dsn)
    try:
        await init_connection(con)
        applied = await migrate(con)
        if applied:
            print(f"Applied migrations: {', '.join(applied)}")
        return await demo.seed(con) if seed_demo else False
    finally:
        await con.close()


def _print_demo(config: Config, seeded: bool) -> None:
    base = f"http://{config.host}:{config.port}"
    print("SignVideo demo" + (" (demo data created)" if seeded else " (demo data already there)"))
    print(f"  Caller page:          {base}/call/{demo.DEMO_SLUG}")
    print(f"  Interpreter console:  {base}/console")
    print(f"  Finance export:       {base}/finance")
    print(f"  Administration:       {base}/admin")
    print(f"  Metrics:              {base}/metrics")
    for login in demo.DEMO_LOGINS:
        print(f"  {login.role:<18} sign in as {login.email} / {login.password}")
    sys.stdout.flush()


def _admin_arguments(config: Config, args: argparse.Namespace) -> tuple[str, str] | str:
    """add-admin's email and site, normalised; or what is wrong with them."""
    email = args.email.strip().lower()
    if len(email) > admin.EMAIL_FIELD.max_length or not forms.is_email(email):
        return f"{args.email!r} is not an email address"
    longest = admin.NAME_FIELD.max_length
    if args.name is not None and not 1 <= len(args.name.strip()) <= longest:
        return f"--name must be 1 to {longest} characters"
    # A server listening everywhere is reached, on its own machine, at localhost.
    host = "localhost" if config.host in ("0.0.0.0", "::") else config.host
    site = (args.site or f"http://{host}:{config.port}").rstrip("/")
    if not re.fullmatch(r"https?://[^/\s]+", site):
        return f"--site must be like https://signvideo.example.org, not {site!r}"
    return email, site


def _print_admin_link(config: Config, email: str, site: str, name: str | None) -> int:
    assert config.database_url is not None
    done = _run_command(_add_admin(config.database_url, email, name), "cannot use the database")
    if isinstance(done, int):
        return done
    token, made = done
    print(f"{'Made' if made else 'Found'} the operator administrator {email}.")
    print(f"Give them this link, which works once, for {PASSWORD_LINK_HOURS} hours, to choose")
    print("a password (any earlier link for them has stopped working):")
    print(f"{site}/password/{token}")
    return 0


def fewer_full_collections() -> None:
    """A full pass of Python's cyclic garbage collector walks every object
    the process holds, about 114 for each waiting caller's socket: up to
    0.79 s with 10,000 callers on this project's benchmark machine, during
    which nobody is sent anything. By default one comes after every 10
    passes over the middle generation (if the old one has grown by a
    quarter): 15 while 10,000 callers joined; after every 100, three. A
    socket's objects are freed as it closes, without the collector
    (signaling.py), so little is left for a full pass to find.
    bench/README.md has the figures. (A Python whose collector has no third
    threshold, 0, is left as it is.)"""
    young, middle, old = gc.get_threshold()
    if old:
        gc.set_threshold(young, middle, 100)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides: dict[str, Any] = {
        k: v
        for k, v in vars(args).items()
        if k != "command"
        and k not in EXPORT_ARGUMENTS
        and k not in ADD_ADMIN_ARGUMENTS
        and v is not None
    }
    if (
        args.command == "export"
        and args.format == "xlsx"
        and not args.output
        and sys.stdout.isatty()
    ):
        print("signvideo: an XLSX file needs --output FILE", file=sys.stderr)
        return 2
    try:
        config = Config.load(overrides)
    except ConfigError as err:
        print(f"signvideo: bad setting: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    admin_args = ("", "")
    if args.command == "add-admin":
        # Checked before any database is started or migrated.
        checked = _admin_arguments(config, args)
        if isinstance(checked, str):
            print(f"signvideo: {checked}", file=sys.stderr)
            return 2
        admin_args = checked

    embedded = None
    if config.database_url is None:
        try:
            embedded, uri = start_embedded(config.data_dir)
        except Exception as err:  # pgserver raises plain exceptions of several kinds
            print(
                f"signvideo: could not start the embedded PostgreSQL in {config.data_dir}: {err}",
                file=sys.stderr,
            )
            return 1
        print(f"Using the embedded PostgreSQL kept in {config.data_dir.resolve() / 'pgdata'}")
        config = dataclasses.replace(config, database_url=uri)
    assert config.database_url is not None

    if args.command == "export":
        written = _run_command(_export(config.database_url, args), "the export failed")
        if isinstance(written, int):
            return written
        print(f"Wrote {written}.", file=sys.stderr)
        return 0

    try:
        seeded = asyncio.run(_prepare_database(config.database_url, args.command == "demo"))
    except MigrationError as err:
        print(f"signvideo: {err}", file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError) as err:
        print(f"signvideo: cannot use the database: {err}", file=sys.stderr)
        return 1

    if args.command == "migrate":
        print("The database is up to date.")
        return 0
    if args.command == "add-admin":
        return _print_admin_link(config, *admin_args, args.name and args.name.strip())
    if args.command == "demo":
        _print_demo(config, seeded)
    fewer_full_collections()
    web.run_app(create_app(config), host=config.host, port=config.port, print=print)
    del embedded  # kept referenced until here so the embedded server stays up
    return 0
