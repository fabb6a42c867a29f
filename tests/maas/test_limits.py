"""Oversized requests and request floods get clear problem answers."""

from __future__ import annotations

import msgspec
from litestar.testing import TestClient

from maas.app import create_app
from maas.settings import Settings
from tests.maas.conftest import Users


def test_oversized_bodies_get_413_and_floods_get_429(settings: Settings, users: Users) -> None:
    tight = msgspec.structs.replace(settings, max_body_bytes=2000, rate_limit_per_minute=8)
    _, rider = users.make("rider")
    with TestClient(create_app(tight)) as client:
        big = client.post(
            "/quotes", headers={**rider, "content-type": "application/json"}, content=b'{"x": "' + b"a" * 5000 + b'"}'
        )
        assert big.status_code == 413
        statuses = [client.get("/bookings", headers=rider).status_code for _ in range(12)]
        assert 429 in statuses and statuses[0] == 200
        limited = client.get("/bookings", headers=rider)
        assert limited.status_code == 429 and limited.headers["content-type"].startswith("application/problem+json")
        assert client.get("/health").status_code == 200  # probes are never limited
