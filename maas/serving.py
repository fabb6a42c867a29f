"""Start `maas serve` in a child process and wait until it is ready (benchmarks and tests use it)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping

import httpx


class ServeError(Exception):
    """The server did not become ready; the message carries the end of its error output."""


@contextlib.contextmanager
def running_server(env: Mapping[str, str], workers: int, timeout_s: float = 120.0) -> Iterator[str]:
    """`maas serve` on a free loopback port with `env` and `workers` processes; yields its base URL
    once GET /ready answers 200, and stops it afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "maas.cli", "serve", "--port", str(port), "--workers",
                                str(workers)], env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
                raise ServeError(f"maas serve did not become ready: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stderr.close()
