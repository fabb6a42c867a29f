"""asyncpg repositories, one module per aggregate, and the SQL migrations."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

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
