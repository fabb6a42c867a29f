"""Oversized requests and request floods get clear problem answers; rate limits are per user (per address when
anonymous), have their own budgets for booking, sign-in and upload, and hold across worker processes."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import httpx
import msgspec
import pytest
from litestar.testing import TestClient

from maas.app import create_app
from maas.bench.server import running_server
from maas.limits import budget_of
from maas.settings import Settings
from tests.maas.conftest import Users

DEFAULT_BUDGET = 30
BOOKING_BUDGET = 3
UPLOAD_BUDGET = 2


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
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["budget"] == "default" and "8 a minute" in limited.json()["detail"]
        assert client.get("/health").status_code == 200  # probes are never limited


def test_requests_spend_the_budget_of_their_kind() -> None:
    assert budget_of("POST", "/bookings") == budget_of("POST", "/quotes/") == "booking"
    assert budget_of("POST", "/operator/bookings") == "booking"  # phone bookings
    assert budget_of("POST", "/operator/journeys") == "booking"  # journeys for phone callers
    assert budget_of("POST", "/sessions") == "sign-in"
    assert budget_of("POST", "/feeds") == "upload"
    assert budget_of("GET", "/bookings") == budget_of("POST", "/bookings/1/cancel") == "default"


@pytest.fixture(scope="module")
def tight_server(settings: Settings, client: TestClient) -> Iterator[str]:
    """`maas serve` with two workers, small budgets and this machine as its trusted proxy."""
    env = {
        **os.environ,
        "MAAS_DATABASE_URL": settings.database_url or "",
        "MAAS_JWT_SECRET": settings.jwt_secret,
        "MAAS_NETWORK_DIR": str(settings.network_dir),
        "MAAS_DATA_DIR": str(settings.data_dir),
        "MAAS_RATE_LIMIT_PER_MINUTE": str(DEFAULT_BUDGET),
        "MAAS_RATE_LIMIT_BOOKING_PER_MINUTE": str(BOOKING_BUDGET),
        "MAAS_RATE_LIMIT_UPLOAD_PER_MINUTE": str(UPLOAD_BUDGET),
        "MAAS_TRUSTED_PROXIES": "127.0.0.1",
    }
    with running_server(env, workers=2, timeout_s=60) as url:
        yield url


def _within_one_minute() -> None:
    """Budgets renew on the minute: a test that spends one starts early enough in a minute to end in it."""
    into = time.time() % 60
    if into > 50:
        time.sleep(60.5 - into)


def test_a_budget_holds_across_both_workers(tight_server: str, users: Users) -> None:
    _, rider = users.make("rider")
    _within_one_minute()

    async def flood() -> list[int]:
        # One connection per request, all at once: both worker processes take some of them.
        async def one() -> int:
            async with httpx.AsyncClient(base_url=tight_server, timeout=30) as http:
                return (await http.get("/bookings", headers=rider)).status_code

        return await asyncio.gather(*(one() for _ in range(2 * DEFAULT_BUDGET)))

    statuses = asyncio.run(flood())
    assert statuses.count(200) == DEFAULT_BUDGET and statuses.count(429) == DEFAULT_BUDGET


def test_users_behind_one_address_have_budgets_of_their_own(tight_server: str, users: Users) -> None:
    _, first = users.make("rider")
    _, second = users.make("rider")
    _, agency = users.make("agency")
    _within_one_minute()
    with httpx.Client(base_url=tight_server, timeout=30) as http:
        spent = [http.post("/quotes", headers=first, json={}).status_code for _ in range(BOOKING_BUDGET)]
        assert 429 not in spent  # refused for its body, but counted
        limited = http.post("/quotes", headers=first, json={})
        assert limited.status_code == 429 and limited.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["budget"] == "booking" and "booking" in limited.json()["detail"]
        assert http.post("/bookings", headers=first, json={}).status_code == 429  # the same budget
        assert http.post("/quotes", headers=second, json={}).status_code != 429  # another user
        assert http.get("/bookings", headers=first).status_code == 200  # another budget

        uploads = [http.post("/feeds", headers=agency, content=b"not a zip").status_code for _ in range(3)]
        assert 429 not in uploads[:UPLOAD_BUDGET] and uploads[UPLOAD_BUDGET] == 429


def test_anonymous_callers_are_limited_by_their_address_behind_a_trusted_proxy(tight_server: str) -> None:
    _within_one_minute()
    caller = {"X-Forwarded-For": "203.0.113.7"}
    with httpx.Client(base_url=tight_server, timeout=30) as http:
        spent = [http.get("/bookings", headers=caller).status_code for _ in range(DEFAULT_BUDGET)]
        assert set(spent) == {401}
        assert http.get("/bookings", headers=caller).status_code == 429
        assert http.get("/bookings", headers={**caller, "Authorization": "Bearer forged"}).status_code == 429
        # What the client wrote left of the proxy's entry does not make it someone else.
        assert http.get("/bookings", headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}).status_code == 429
        assert http.get("/bookings", headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 401
        assert http.get("/health", headers=caller).status_code == 200  # probes are never limited
        assert http.get("/ready", headers=caller).status_code == 200


def test_a_served_response_names_no_server_and_carries_the_hardening_headers(tight_server: str) -> None:
    answer = httpx.get(f"{tight_server}/health")
    assert "server" not in answer.headers
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert len(answer.headers["x-request-id"]) >= 16
