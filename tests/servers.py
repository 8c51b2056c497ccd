"""A real signvideo server in a subprocess, for tests that need whole processes
(browsers talking to it, two servers on one database with one killed) and for
the benchmarks in bench/."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as error:
        error.close()
        return False
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class ServerProcess:
    base_url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def url(self, path: str) -> str:
        return self.base_url + path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def kill(self) -> None:
        """SIGKILL: the process gets no chance to say goodbye."""
        self.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.process.wait, 10)


def _start(
    database_url: str, workdir: Path, command: str, env: dict[str, str] | None
) -> ServerProcess:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "server.log"
    data_dir = workdir / "data"
    data_dir.mkdir(exist_ok=True)
    full_env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SIGNVIDEO_DATA": str(data_dir),
        # Every caller of the tests and benchmarks comes from 127.0.0.1; the
        # join limits have a test of their own.
        "SIGNVIDEO_JOINS_PER_ADDRESS": "100000",
        "SIGNVIDEO_JOINS_PER_AUTHORITY": "100000",
        **(env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "signvideo",
                command,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return ServerProcess(f"http://127.0.0.1:{port}", log_path, process)


def _wait_until_healthy(server: ServerProcess) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not _healthy(server.url("/healthz")):
        if server.process.poll() is not None:
            raise RuntimeError(
                f"signvideo exited with {server.process.returncode}:\n{server.log()}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"signvideo not healthy after {STARTUP_TIMEOUT_S} s:\n{server.log()}"
            )
        time.sleep(0.1)


def _stop(server: ServerProcess, command: str, quiet: bool) -> None:
    process = server.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if not quiet:
        print(f"--- signvideo {command} on {server.base_url} (exit {process.returncode}) ---")
        print(server.log())


@asynccontextmanager
async def running_server(
    database_url: str,
    workdir: Path,
    *,
    command: str = "serve",
    env: dict[str, str] | None = None,
    quiet: bool = False,
) -> AsyncIterator[ServerProcess]:
    """`python -m signvideo <command>` on a free port, healthy before it is handed
    over; stopped afterwards, and its output printed (pytest shows it when the
    test fails)."""
    server = _start(database_url, workdir, command, env)
    try:
        await asyncio.to_thread(_wait_until_healthy, server)
        yield server
    finally:
        await asyncio.to_thread(_stop, server, command, quiet)


@contextmanager
def running_server_sync(
    database_url: str, workdir: Path, *, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    """running_server for synchronous tests (schemathesis drives requests itself)."""
    server = _start(database_url, workdir, "serve", env)
    try:
        _wait_until_healthy(server)
        yield server
    finally:
        _stop(server, "serve", quiet=False)
