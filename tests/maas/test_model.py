"""The Literal types of maas.model list exactly the values the database's CHECK constraints allow."""

from __future__ import annotations

import asyncio
import re
from typing import Any, get_args

import asyncpg
import pytest
from litestar.testing import TestClient

from maas.model import BookingStatus, FeedStatus, NetworkStatus, RealtimeKind, Role
from maas.settings import Settings

CHECKS_OF_COLUMN = """
SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (c.conkey)
WHERE c.contype = 'c' AND t.relname = $1 AND a.attname = $2
"""


async def _checks(url: str, table: str, column: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [r[0] for r in await conn.fetch(CHECKS_OF_COLUMN, table, column)]
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("table", "column", "literal"),
    [
        ("users", "role", Role),
        ("bookings", "status", BookingStatus),
        ("feed_versions", "status", FeedStatus),
        ("networks", "status", NetworkStatus),
        ("gtfs_rt_messages", "kind", RealtimeKind),
    ],
)
def test_literal_types_match_the_check_constraints(
    settings: Settings, client: TestClient, table: str, column: str, literal: Any
) -> None:
    # `client` first: its start-up applies the migrations.
    assert settings.database_url is not None
    # The CHECK that lists the column's values (others may tie the column to another one).
    checks = [c for c in asyncio.run(_checks(settings.database_url, table, column)) if "ANY (ARRAY[" in c]
    assert len(checks) == 1, f"{table}.{column}: expected one CHECK constraint listing its values, found {checks}"
    allowed = re.findall(r"'([^']*)'::text", checks[0])
    assert sorted(allowed) == sorted(get_args(literal)), f"{table}.{column}: {checks[0]}"
    assert len(allowed) == len(set(allowed))
