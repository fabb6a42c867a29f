"""A real `maas serve` with two worker processes: a logout holds in every worker within seconds,
failed sign-ins are counted across workers, and no token or ticket reaches its log (defect 6)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from websockets.sync.client import connect

from maas.sessions import SESSION_CACHE_S
from maas.settings import Settings
from tests.maas.conftest import Users, execute


@pytest.fixture(scope="module")
def served(
    settings: Settings, client: TestClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """`maas serve --workers 2` on the test database, its whole output in a file: (base URL, log file)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("serve-log") / "maas-serve.log"
    env = {
        **os.environ,
        "MAAS_DATABASE_URL": settings.database_url or "",
        "MAAS_JWT_SECRET": settings.jwt_secret,
        "MAAS_NETWORK_DIR": str(settings.network_dir),
        "MAAS_DATA_DIR": str(settings.data_dir),
    }
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "maas.cli", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 90
            while not _ready(url):
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.3)
            yield url, log
        finally:
            process.terminate()
            process.wait(timeout=30)


def _ready(url: str) -> bool:
    with contextlib.suppress(httpx.TransportError):
        return httpx.get(f"{url}/ready", timeout=1).status_code == 200
    return False


def test_no_token_or_ticket_is_logged(served: tuple[str, Path], users: Users) -> None:
    """Defect 6: uvicorn's access log printed socket URLs with ?token= in full."""
    url, log = served
    _, headers = users.make("operator")
    token = headers["Authorization"].split()[1]
    ws = url.replace("http://", "ws://")
    with connect(f"{ws}/ws/fleet?token={token}") as fleet:
        assert '"snapshot"' in str(fleet.recv(timeout=10))
    ticket = httpx.post(f"{url}/sessions/socket-ticket", headers=headers).json()["ticket"]
    with connect(f"{ws}/ws/fleet?ticket={ticket}") as fleet:
        assert '"snapshot"' in str(fleet.recv(timeout=10))
    # A token in an HTTP query string, and one sent with the wrong scheme.
    # (an HTTP operation takes no token parameter: refused, and logged like any request)
    assert httpx.get(f"{url}/vehicles", params={"token": token}, headers=headers).status_code == 400
    assert httpx.get(f"{url}/vehicles", headers={"Authorization": f"Basic {token}"}).status_code == 401
    time.sleep(0.5)  # the workers write their lines as they go
    told = log.read_text()
    assert "/ws/fleet?token=[redacted]" in told and "/ws/fleet?ticket=[redacted]" in told, told[-3000:]
    assert "/vehicles?token=[redacted]" in told
    assert token not in told and token.split(".")[2] not in told and ticket not in told


def test_a_logout_holds_in_every_worker_within_seconds(served: tuple[str, Path], users: Users) -> None:
    url, _ = served
    _, headers = users.make("operator")
    with httpx.Client(base_url=url, headers=headers) as http:
        # Fresh connections spread over both workers, and each caches the session as valid.
        assert {httpx.get(f"{url}/vehicles", headers=headers).status_code for _ in range(20)} == {200}
        assert http.delete("/sessions/current").status_code == 200
    time.sleep(SESSION_CACHE_S + 0.5)
    assert {httpx.get(f"{url}/vehicles", headers=headers).status_code for _ in range(20)} == {401}


def test_a_burst_of_wrong_passwords_over_both_workers_gets_the_limit_and_no_more(
    served: tuple[str, Path], users: Users, settings: Settings
) -> None:
    url, _ = served
    user, _ = users.make("operator")
    _, admin = users.make("admin")
    login = f"burst-{uuid.uuid4().hex[:6]}"
    body = {"login": login, "password": "the right passphrase"}
    assert httpx.put(f"{url}/admin/users/{user.id}/password", headers=admin, json=body).status_code == 200
    tries = 2 * settings.sign_in_max_failures
    try:
        with ThreadPoolExecutor(tries) as pool:
            statuses = list(
                pool.map(
                    lambda _: httpx.post(f"{url}/sessions", json={**body, "password": "wrong"}, timeout=60).status_code,
                    range(tries),
                )
            )
        assert (
            statuses.count(401) <= settings.sign_in_max_failures
            and statuses.count(429) >= tries - settings.sign_in_max_failures
        )
        assert set(statuses) == {401, 429}
        assert httpx.post(f"{url}/sessions", json=body).status_code == 429  # even the right password, for now
    finally:
        execute(settings, "DELETE FROM sign_in_attempts WHERE login = $1", login)
