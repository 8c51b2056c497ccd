"""The `signvideo` command: serve, migrate, demo."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from typing import Any

import asyncpg
from aiohttp import web

from signvideo import demo
from signvideo.app import create_app
from signvideo.config import SETTINGS, Config, ConfigError
from signvideo.db import MigrationError, init_connection, migrate, start_embedded

log = logging.getLogger("signvideo")

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
    return parser


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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides: dict[str, Any] = {
        k: v for k, v in vars(args).items() if k != "command" and v is not None
    }
    try:
        config = Config.load(overrides)
    except ConfigError as err:
        print(f"signvideo: bad setting: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )

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
    if args.command == "demo":
        _print_demo(config, seeded)
    web.run_app(create_app(config), host=config.host, port=config.port, print=print)
    del embedded  # kept referenced until here so the embedded server stays up
    return 0
