"""A real coturn for tests: `turnserver` (Debian's coturn, which .ci/run
installs) on loopback, checking credentials by the TURN REST scheme with a
secret made for the test."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Turn:
    url: str
    secret: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def running_turn(folder: Path) -> Iterator[Turn]:
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.fail("coturn's turnserver is not installed (.ci/run installs it with apt-get)")
    port = _free_udp_port()
    # A relay port range of its own, well away from the listening port.
    low = 50000 + (port % 100) * 100
    secret = secrets.token_urlsafe(24)
    config = folder / "turnserver.conf"
    config.write_text(
        "\n".join(
            [
                "listening-ip=127.0.0.1",
                "relay-ip=127.0.0.1",
                f"listening-port={port}",
                f"min-port={low}",
                f"max-port={low + 99}",
                "allow-loopback-peers",
                "no-tls",
                "no-dtls",
                "no-cli",
                "no-tcp-relay",
                "fingerprint",
                "use-auth-secret",
                f"static-auth-secret={secret}",
                "realm=signvideo.test",
                f"userdb={folder / 'turndb'}",
                f"pidfile={folder / 'turnserver.pid'}",
                "log-file=stdout",
                "simple-log",
                "verbose",
            ]
        )
        + "\n"
    )
    log_path = folder / "turnserver.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([binary, "-c", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while "Total General servers" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"turnserver did not start:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.05)
        yield Turn(f"turn:127.0.0.1:{port}?transport=udp", secret, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
