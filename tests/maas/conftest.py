"""A real PostgreSQL for the service tests: the server of MAAS_DATABASE_URL when set (a fresh
database per test session), else an embedded one (pgserver) in a temporary folder."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from litestar.testing import TestClient

from maas.app import create_app
from maas.db import embedded
from maas.db.database import embedded_url
from maas.db.users import create_user
from maas.model import User
from maas.sessions import issue_token
from maas.settings import Settings, SettingsOverrides

# Tests send many requests a minute from one user and one address; tests of the limits set their own.
RAISED_LIMITS: SettingsOverrides = {
    "rate_limit_per_minute": 1_000_000,
    "rate_limit_booking_per_minute": 1_000_000,
    "rate_limit_sign_in_per_minute": 1_000_000,
    "rate_limit_upload_per_minute": 1_000_000,
}
RAISED_LIMITS_ENV = {f"MAAS_{name.upper()}": str(value) for name, value in RAISED_LIMITS.items()}


def _with_database(url: str, name: str) -> str:
    """The same server, another database (also for socket URLs with ?host=/path)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def logged_by(logger_name: str) -> Iterator[list[logging.LogRecord]]:
    """The records `logger_name` logs meanwhile (pytest's own log capture is off in some runs)."""
    handler = _Records()
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the server of `server_url`, dropped afterwards; yields its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(server_url, name)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def own_database(settings: Settings, prefix: str, network_dir: Path, data_dir: Path) -> Iterator[Settings]:
    """Settings of a service on a fresh database of its own (on the session's server), serving
    `network_dir`: for a module whose tests need to know every bus and booking."""
    assert settings.database_url is not None
    with fresh_database(settings.database_url, prefix) as url:
        yield Settings.from_env(
            {},
            database_url=url,
            network_dir=network_dir,
            data_dir=data_dir,
            jwt_secret=secrets.token_urlsafe(32),
            **RAISED_LIMITS,
        )


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("MAAS_DATABASE_URL")
    if given:
        with fresh_database(given, "maas_test") as url:
            yield url
        return
    # The embedded server stops when the session's fixtures are torn down (also after Ctrl-C or
    # SIGTERM, see tests/conftest.py), not at interpreter exit: no process a test run starts outlives it.
    data_dir = tmp_path_factory.mktemp("pg")
    try:
        with fresh_database(embedded_url(data_dir), "maas_test") as url:
            yield url
    finally:
        embedded.leave(data_dir)


@pytest.fixture(scope="session")
def settings(database_url: str, network_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings.from_env(
        {},
        database_url=database_url,
        network_dir=network_dir,
        data_dir=tmp_path_factory.mktemp("maas-data"),
        jwt_secret=secrets.token_urlsafe(32),
        **RAISED_LIMITS,
    )


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


class Users:
    """Creates users straight in the database (as `maas user create` does) and hands out their headers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def make(self, role: str, name: str | None = None, agency: str | None = None) -> tuple[User, dict[str, str]]:
        async def work() -> tuple[User, str]:
            conn = await asyncpg.connect(self.settings.database_url)
            try:
                user = await create_user(
                    conn,
                    name or f"{role}-{uuid.uuid4().hex[:6]}",
                    role,
                    agency=agency or ("vvs" if role == "agency" else None),
                )
                return user, await issue_token(conn, self.settings, user)
            finally:
                await conn.close()

        user, token = asyncio.run(work())
        return user, {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def users(settings: Settings, client: TestClient) -> Users:
    return Users(settings)  # `client` first: its start-up applies the migrations


@pytest.fixture(scope="session")
def server(settings: Settings, client: TestClient) -> Iterator[str]:
    """`maas serve` with two worker processes on the test database; yields its base URL."""
    from maas.bench.server import running_server

    env = {
        **os.environ,
        "MAAS_DATABASE_URL": settings.database_url or "",
        "MAAS_JWT_SECRET": settings.jwt_secret,
        "MAAS_NETWORK_DIR": str(settings.network_dir),
        "MAAS_DATA_DIR": str(settings.data_dir),
        **RAISED_LIMITS_ENV,
    }
    with running_server(env, workers=2, timeout_s=60) as url:
        yield url


def execute(settings: Settings, sql: str, *args: object) -> None:
    """Run one SQL statement on the test database."""

    async def run() -> None:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture
def no_stored_realtime(settings: Settings, client: TestClient) -> Iterator[None]:
    """The test starts and leaves without stored GTFS-Realtime messages, so that other tests plan on the
    timetable (`client` first: its start-up applies the migrations)."""
    execute(settings, "DELETE FROM gtfs_rt_messages")
    yield
    execute(settings, "DELETE FROM gtfs_rt_messages")
