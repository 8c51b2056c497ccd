"""The `signvideo` command as a person runs it."""

from __future__ import annotations

import asyncio
import csv
import fcntl
import io
import json
import os
import pty
import re
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from signvideo.demo import DEMO_LOGINS
from tests.integration.billing_data import at, ended_call
from tests.integration.conftest import form_token


def run(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "signvideo", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SIGNVIDEO_") and k != "DATABASE_URL"
    }
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_every_command_has_help() -> None:
    for command in ("serve", "migrate", "demo", "export", "add-admin"):
        result = run([command, "--help"], clean_env())
        assert result.returncode == 0
        assert "SIGNVIDEO_PORT" in result.stdout or command not in ("serve", "demo")
        assert "DATABASE_URL" in result.stdout


def test_bad_setting_is_refused_with_its_name() -> None:
    result = run(["serve"], clean_env(SIGNVIDEO_PORT="eighty"))
    assert result.returncode == 2
    assert "SIGNVIDEO_PORT='eighty'" in result.stderr
    result = run(["serve", "--offer-timeout", "0"], clean_env())
    assert result.returncode == 2
    assert "--offer-timeout" in result.stderr


def test_migrate_starts_and_keeps_an_embedded_database(tmp_path: Path) -> None:
    env = clean_env(SIGNVIDEO_DATA=str(tmp_path / "data"))
    first = run(["migrate"], env)
    assert first.returncode == 0, first.stderr
    assert "0001_init" in first.stdout
    assert (tmp_path / "data" / "pgdata" / "PG_VERSION").exists()
    again = run(["migrate"], env)
    assert again.returncode == 0, again.stderr
    assert "Applied" not in again.stdout
    assert "up to date" in again.stdout


def start_demo(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "signvideo", "demo", "--port", str(port)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"demo did not start: {process.communicate()[0]}")


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=20)
    return output


async def test_demo_seeds_once_and_serves(database_url: str) -> None:
    env = clean_env(DATABASE_URL=database_url)
    port = free_port()
    first = stop(start_demo(env, port))
    assert "demo data created" in first
    assert "interpreter@demo.example / interpret-demo" in first
    assert f"http://127.0.0.1:{port}/call/demo" in first
    second = stop(start_demo(env, port))
    assert "demo data already there" in second
    con = await asyncpg.connect(database_url)
    try:
        assert await con.fetchval("SELECT count(*) FROM authorities") == 1
        assert await con.fetchval("SELECT count(*) FROM users") == len(DEMO_LOGINS)
    finally:
        await con.close()


async def november_calls(pool: asyncpg.Pool) -> None:
    await ended_call(pool, "demo", at("2026-11-02 10:00:00"), at("2026-11-02 10:00:10"),
                     at("2026-11-02 10:02:00"))  # fmt: skip
    await ended_call(pool, "demo", at("2026-11-03 10:00:00"), None, at("2026-11-03 10:00:20"),
                     "caller_left")  # fmt: skip


async def test_export_writes_a_month_to_a_file(
    database_url: str, pool: asyncpg.Pool, seeded: None, tmp_path: Path
) -> None:
    await november_calls(pool)
    env = clean_env(DATABASE_URL=database_url)
    target = tmp_path / "november.csv"
    args = ["export", "--authority", "demo", "--month", "2026-11", "--output", str(target)]
    result = await asyncio.to_thread(run, args, env)
    assert result.returncode == 0, result.stderr
    assert "Wrote 2 lines for demo" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["november.csv"]  # no .part left
    rows = list(csv.DictReader(io.StringIO(target.read_text(), newline="")))
    assert [r["net_pence"] for r in rows] == ["300", "0"]
    # JSON to standard output, and an XLSX file.
    result = await asyncio.to_thread(run, [*args[:5], "--format", "json"], env)
    assert json.loads(result.stdout)["totals"]["net_pence"] == 300
    book = tmp_path / "november.xlsx"
    result = await asyncio.to_thread(run, [*args[:5], "--format", "xlsx", "-o", str(book)], env)
    assert result.returncode == 0, result.stderr
    assert book.read_bytes()[:2] == b"PK"  # a zip, as XLSX files are
    assert (
        await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'export.usage_cli'") == 3
    )


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["--authority", "atlantis", "--month", "2026-11"], 3, "no authority called 'atlantis'"),
        (["--authority", "demo", "--month", "November"], 2, "is not a month"),
        (["--authority", "demo", "--from", "2026-11-02"], 2, "Enter a 'to' date"),
        (["--authority", "demo", "--month", "2026-11", "--from", "2026-11-01"], 2, "not both"),
        (["--authority", "demo", "--month", "2026-11", "--format", "pdf"], 2, "invalid choice"),
    ],
)
async def test_export_refuses_bad_arguments_with_the_reason(
    database_url: str, seeded: None, args: list[str], status: int, says: str
) -> None:
    result = await asyncio.to_thread(run, ["export", *args], clean_env(DATABASE_URL=database_url))
    assert result.returncode == status
    assert says in result.stderr


async def test_export_shows_progress_in_a_terminal(
    database_url: str, pool: asyncpg.Pool, seeded: None, tmp_path: Path
) -> None:
    """With a terminal on standard error, a progress bar counts the lines;
    through a pipe (above), there is none."""
    await november_calls(pool)
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    target = tmp_path / "november.csv"

    def export() -> tuple[int, bytes]:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "signvideo",
                "export",
                "--authority",
                "demo",
                "--month",
                "2026-11",
                "-o",
                str(target),
            ],
            env=clean_env(DATABASE_URL=database_url),
            stdout=subprocess.DEVNULL,
            stderr=terminal,
        )
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break  # the terminal closed with the process
            if not chunk:
                break
            shown += chunk
        return process.wait(timeout=60), shown

    status, shown = await asyncio.to_thread(export)
    os.close(controller)
    assert status == 0
    assert b"100%" in shown and b"2/2" in shown, shown


async def test_add_admin_makes_an_administrator_who_sets_a_password_through_the_link(
    database_url: str, pool: asyncpg.Pool, client: TestClient[Any, Any]
) -> None:
    """A new installation's first administrator: `add-admin` makes the
    account and prints a one-time link; run again, it makes a new link (the
    first stops working); the link sets the password, and /admin opens."""
    env = clean_env(DATABASE_URL=database_url)
    args = ["add-admin", "--email", " Root@Example.org", "--name", "Rhian Root"]
    made = await asyncio.to_thread(run, [*args, "--site", "https://sv.example.org/"], env)
    assert made.returncode == 0, made.stderr
    assert "Made the operator administrator root@example.org" in made.stdout
    first = re.search(r"^https://sv\.example\.org(/password/\S+)$", made.stdout, re.MULTILINE)
    assert first, made.stdout
    account = await pool.fetchrow(
        "SELECT role, display_name FROM users WHERE email = 'root@example.org'"
    )
    assert (account["role"], account["display_name"]) == ("operator_admin", "Rhian Root")

    again = await asyncio.to_thread(run, args[:3], env)
    assert again.returncode == 0 and "Found the operator administrator" in again.stdout
    second = re.search(r"^http://127\.0\.0\.1:8080(/password/\S+)$", again.stdout, re.MULTILINE)
    assert second, again.stdout
    assert (await client.get(first.group(1))).status == 410
    path = second.group(1)
    token = await form_token(client, path)
    chosen = "a long pass phrase"
    done = await client.post(
        path,
        data={"password": chosen, "confirm": chosen, "csrf_token": token},
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"] == "/admin"
    assert (await client.get("/admin", allow_redirects=False)).status == 200
    actions = await pool.fetch(
        "SELECT action FROM audit_log WHERE actor = 'command line' ORDER BY id"
    )
    assert [a["action"] for a in actions] == [
        "user.create",
        "password_link.issue",
        "password_link.issue",
    ]


@pytest.mark.parametrize(
    ("email", "status", "says"),
    [
        ("interpreter@demo.example", 3, "already has an account, as interpreter"),
        ("not an address", 2, "is not an email address"),
    ],
)
async def test_add_admin_refuses_with_the_reason(
    database_url: str, pool: asyncpg.Pool, seeded: None, email: str, status: int, says: str
) -> None:
    env = clean_env(DATABASE_URL=database_url)
    result = await asyncio.to_thread(run, ["add-admin", "--email", email], env)
    assert (result.returncode, result.stdout) == (status, "")
    assert says in result.stderr
    assert await pool.fetchval("SELECT count(*) FROM password_links") == 0
    assert await pool.fetchval("SELECT role FROM users WHERE email = $1", email) in (
        None,
        "interpreter",
    )


def test_add_admin_checks_its_arguments_before_starting_a_database(tmp_path: Path) -> None:
    env = clean_env(SIGNVIDEO_DATA=str(tmp_path))
    for args, says in [
        (["--email", "root@example.org", "--name", "R" * 101], "--name must be 1 to 100"),
        (["--email", "x" * 250 + "@example.org"], "is not an email address"),
        (["--email", "root@example.org", "--site", "signvideo.example.org"], "--site must be"),
    ]:
        result = run(["add-admin", *args], env)
        assert (result.returncode, result.stdout) == (2, ""), result.stderr
        assert says in result.stderr
    assert list(tmp_path.iterdir()) == []  # no embedded database was made
