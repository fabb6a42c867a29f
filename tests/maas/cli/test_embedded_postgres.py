"""The embedded PostgreSQL stops with the `maas` command that started it, and a command started while
another one runs it uses that server and leaves it running (real processes, a real pgserver)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from maas.db import embedded


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh MAAS_DATA_DIR; a server a failed test leaves there is stopped afterwards."""
    yield tmp_path
    for process in _postmasters(tmp_path):
        process.send_signal(signal.SIGQUIT)  # immediate shutdown, the test has already failed
        process.wait(10)


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MAAS_DATABASE_URL"}
    return {**env, "MAAS_DATA_DIR": str(data_dir), "MAAS_JWT_SECRET": "embedded-postgres-tests-secret-0123456789"}


def _maas(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maas.cli", *args],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _postmasters(data_dir: Path) -> list[psutil.Process]:
    """Running postgres servers whose PGDATA is the embedded one of `data_dir`."""
    folder = str(embedded.server_folder(data_dir))
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if process.info["status"] != psutil.STATUS_ZOMBIE and "-D" in cmdline and folder in cmdline:
            found.append(process)
    return found


def _assert_stopped(data_dir: Path, postmaster: psutil.Process | None = None) -> None:
    assert _postmasters(data_dir) == [], "no postgres process is left on the data folder"
    if postmaster is not None:
        # Its helpers (checkpointer, walwriter ...) are its children: gone with it.
        assert not postmaster.is_running() or postmaster.status() == psutil.STATUS_ZOMBIE
    assert embedded.read_users(data_dir) == []


def _the_postmaster(data_dir: Path) -> psutil.Process:
    running = _postmasters(data_dir)
    assert len(running) == 1, "one server for the folder, never a second one"
    return running[0]


class _Serve:
    """`maas serve` without a network in the background, until it is signalled."""

    def __init__(self, data_dir: Path, workers: int) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.log = data_dir / "serve.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "maas.cli", "serve", "--port", str(port), "--workers", str(workers)],
                env=_env(data_dir),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert self.process.poll() is None and time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.2)

    def end(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(60)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def test_short_commands_stop_the_server_they_started(data_dir: Path) -> None:
    first = _maas(data_dir, "user", "create", "Ada", "--role", "admin", "--json")
    assert first.returncode == 0, first.stderr
    _assert_stopped(data_dir)
    user_id = json.loads(first.stdout)["user"]["id"]
    second = _maas(data_dir, "user", "token", user_id)
    assert second.returncode == 0, second.stderr  # the same database, started again
    _assert_stopped(data_dir)
    # A command that fails after using the database lets go of the server as well.
    unknown = _maas(data_dir, "user", "token", "00000000-0000-4000-8000-000000000000")
    assert unknown.returncode == 2 and "no user" in unknown.stderr
    _assert_stopped(data_dir)


@pytest.mark.parametrize(("workers", "signum"), [(1, signal.SIGTERM), (2, signal.SIGINT)])
def test_a_command_uses_the_server_a_running_one_started_and_leaves_it_running(
    data_dir: Path, workers: int, signum: int
) -> None:
    serve = _Serve(data_dir, workers)
    try:
        postmaster = _the_postmaster(data_dir)
        created = _maas(data_dir, "user", "create", "Grace", "--role", "operator")
        assert created.returncode == 0, created.stderr
        assert _the_postmaster(data_dir).pid == postmaster.pid, "the running server was used and left running"
        assert serve.process.pid in {u.pid for u in embedded.read_users(data_dir)}
        assert serve.end(signum) in {0, 128 + signum, -signum}, serve.log.read_text()[-3000:]
    finally:
        serve.kill()
    _assert_stopped(data_dir, postmaster)


def test_a_user_killed_without_leaving_does_not_keep_the_server_running(data_dir: Path) -> None:
    serve = _Serve(data_dir, 1)
    try:
        postmaster = _the_postmaster(data_dir)
    finally:
        serve.kill()  # SIGKILL: no exit handler runs, the server stays up and the user stays listed
    assert _the_postmaster(data_dir).pid == postmaster.pid
    assert [u.pid for u in embedded.read_users(data_dir)] == [serve.process.pid]
    created = _maas(data_dir, "user", "create", "Linus", "--role", "rider")
    assert created.returncode == 0, created.stderr
    _assert_stopped(data_dir, postmaster)


def test_demo_without_serving_stops_the_server_it_started(data_dir: Path) -> None:
    # The demo network is built once into the user's cache and shared with other runs.
    demo = _maas(data_dir, "demo", "--no-serve", "--json")
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert set(json.loads(demo.stdout)["tokens"]) >= {"admin", "rider"}
    _assert_stopped(data_dir)
