"""The `signvideo` command as a person runs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import asyncpg

from signvideo.demo import DEMO_LOGINS


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
    for command in ("serve", "migrate", "demo"):
        result = run([command, "--help"], clean_env())
        assert result.returncode == 0
        assert "SIGNVIDEO_PORT" in result.stdout or command == "migrate"
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
