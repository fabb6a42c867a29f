"""The PostgreSQL connection pool, the embedded server when no URL is set, and migrations at start-up."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg

from maas.background import bounded
from maas.db import Connection, locks
from maas.errors import DatabaseUnavailable, MaasError
from maas.settings import Settings

CONNECT_TIMEOUT_S = 10


class DatabaseError(MaasError):
    """The database cannot be reached or prepared; the message says what to do."""


def migrations() -> list[tuple[int, str, str]]:
    """(number, name, SQL) of every migration in maas/db/migrations, in order."""
    found = []
    for entry in resources.files("maas.db").joinpath("migrations").iterdir():
        name = entry.name
        if name.endswith(".sql"):
            number, _, rest = name.partition("_")
            found.append((int(number), rest.removesuffix(".sql"), entry.read_text()))
    found.sort()
    for (a, name_a, _), (b, name_b, _) in itertools.pairwise(found):
        if a == b:
            raise DatabaseError(
                f"two migrations are numbered {a:04d} ({name_a}, {name_b}): "
                "renumber the newer one to the next free number"
            )
    return found


async def migrate(conn: Connection) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction; returns their names."""
    applied: list[str] = []
    async with locks.holding(conn, locks.MIGRATIONS):
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " number integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["number"] for r in await conn.fetch("SELECT number FROM schema_migrations")}
        for number, name, sql in migrations():
            if number in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (number, name) VALUES ($1, $2)", number, name)
            applied.append(f"{number:04d}_{name}")
    return applied


def embedded_url(data_dir: Path) -> str:
    """Start the embedded PostgreSQL of `data_dir`, or use the one another `maas` process runs there,
    and return its URL; it stops when the last process using it exits (maas/db/embedded.py)."""
    from maas.db import embedded

    try:
        with warnings.catch_warnings():
            # pgserver asks platformdirs for a runtime folder at import; without XDG_RUNTIME_DIR
            # (containers, CI) that warns although the fallback works.
            warnings.simplefilter("ignore")
            import pgserver  # noqa: F401  (imported here so that the warning is silenced once)
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise DatabaseError("MAAS_DATABASE_URL is unset and pgserver is not installed") from exc
    try:
        return embedded.join(data_dir)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DatabaseError(
            f"cannot start the embedded PostgreSQL in {embedded.server_folder(data_dir)} "
            f"(its log is {embedded.server_folder(data_dir) / 'log'}): {exc}"
        ) from exc


class Database:
    """One asyncpg pool for the process."""

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self.pool = pool
        self.url = url

    @classmethod
    async def open(cls, settings: Settings, min_size: int = 2, max_size: int = 20) -> Database:
        url = settings.database_url
        if url is None:
            url = await asyncio.to_thread(embedded_url, settings.data_dir)
        try:
            pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, connect=_connect)
        except (OSError, asyncpg.PostgresError, DatabaseUnavailable) as exc:
            raise DatabaseError(f"cannot connect to PostgreSQL at {_redacted(url)}: {exc}") from exc
        async with pool.acquire() as conn:
            await migrate(conn)
        return cls(pool, url)

    async def close(self) -> None:
        """Close the pool; connections still held after a bound are closed by force."""
        await bounded(self.pool.close(), "the database pool", self.pool.terminate)


async def _connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    """asyncpg.connect for the pool, where any failure to connect (refused, unknown or closed database, too many
    connections, a server starting or stopping) means the database is unavailable, not that a request is wrong."""
    # A server that does not answer at all (a host gone, packets dropped) is unavailable after seconds, not after
    # asyncpg's default minute with the request waiting.
    kwargs.setdefault("timeout", CONNECT_TIMEOUT_S)
    try:
        return await asyncpg.connect(*args, **kwargs)
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc


def _redacted(url: str) -> str:
    """The URL without its password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
