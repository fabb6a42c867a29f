"""Request counters per budget and caller, one row per one-minute window (migration 0028)."""

from __future__ import annotations

from maas.db import Connection

# One statement per request: counts the hit and returns the window's count so far.
HIT = """
INSERT INTO rate_limit_hits (key, window_start, hits) VALUES ($1, $2, 1)
ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limit_hits.hits + 1
RETURNING hits
"""
PRUNE = "DELETE FROM rate_limit_hits WHERE window_start < $1"


async def hit(conn: Connection, key: str, window: int) -> int:
    """Count one request of `key` in minute `window`; returns the window's count including it."""
    hits = await conn.fetchval(HIT, key, window)
    assert isinstance(hits, int)
    return hits


async def prune(conn: Connection, before_window: int) -> None:
    """Forget the windows before `before_window` (their budgets are spent or renewed)."""
    await conn.execute(PRUNE, before_window)
