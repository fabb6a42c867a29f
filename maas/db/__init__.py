"""asyncpg repositories, one module per aggregate, and the SQL migrations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

# What a repository function takes: a connection of its own or one lent by the pool.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


def returned(row: asyncpg.Record | None) -> asyncpg.Record:
    """The row of a statement that returns one by construction (INSERT ... RETURNING, a one-row
    aggregate, an UPDATE of a row the caller holds); LookupError if it did not."""
    if row is None:
        raise LookupError("the statement returned no row")
    return row


def like_pattern(text: str) -> str:
    """`text` matched literally by LIKE ... ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def matched(
    conn: Connection, page: Sequence[asyncpg.Record], count: str, args: Sequence[Any], offset: int
) -> int:
    """How many rows a paged search matches: the page's `total` column (count(*) OVER ()), or the
    `count` query's answer when the page lies past the last match."""
    if page:
        return int(page[0]["total"])
    return int(await conn.fetchval(count, *args)) if offset else 0
