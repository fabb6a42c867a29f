"""Start `maas serve` in a child process and wait until it is ready (benchmarks and tests use it)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping

import httpx

from maas.errors import MaasError


class ServeError(MaasError):
    """The server did not become ready; the message carries the end of its error output."""


@contextlib.contextmanager
def running_server(env: Mapping[str, str], workers: int, timeout_s: float = 120.0) -> Iterator[str]:
    """`maas serve` on a free loopback port with `env` and `workers` processes; yields its base URL
    once GET /ready answers 200, and stops it afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The server's log goes to a file, not a pipe: nobody reads a pipe while the server runs, and a
    # full one would stall the server on its next warning.
    log = tempfile.NamedTemporaryFile(prefix="maas-serve-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "maas.cli", "serve", "--port", str(port), "--workers", str(workers)],
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise ServeError(f"maas serve did not become ready: {_tail(log.name)}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        told = _tail(log.name, 20000)
        if any(word in told for word in ("ERROR", "WARNING", "CRITICAL", "Traceback")):
            print(f"maas serve (port {port}) said:\n{told}", file=sys.stderr)
        os.unlink(log.name)


def _tail(path: str, size: int = 2000) -> str:
    with open(path, "rb") as f:
        return f.read().decode(errors="replace")[-size:]
