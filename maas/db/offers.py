"""A quote's offers, kept under their ids until they expire."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec

from maas.db import Connection

# Expired offers and itineraries are kept this long, so that booking one says "expired", not "unknown".
EXPIRED_KEPT = dt.timedelta(days=1)

SAVE = """
INSERT INTO offers (id, created_by, wish, offer, expires_at)
SELECT o.id, $1, $2::jsonb, o.offer::jsonb, $3
FROM unnest($4::uuid[], $5::text[]) AS o (id, offer)
"""
GET = "SELECT id, created_by, wish::text, offer::text, created_at, expires_at FROM offers WHERE id = $1"
FORGET = "DELETE FROM offers WHERE expires_at < $1"


class StoredOffer(msgspec.Struct, frozen=True, kw_only=True):
    """An offer as kept: its JSON parts stay encoded (the booking service decodes them)."""

    id: uuid.UUID
    created_by: uuid.UUID
    wish: str
    offer: str
    created_at: dt.datetime
    expires_at: dt.datetime


async def save_offers(
    conn: Connection, created_by: uuid.UUID, wish: bytes, expires_at: dt.datetime, offers: list[tuple[uuid.UUID, bytes]]
) -> None:
    """Keep the offers of one quote (id, offer JSON) in one round trip."""
    await conn.execute(
        SAVE, created_by, wish.decode(), expires_at, [i for i, _ in offers], [o.decode() for _, o in offers]
    )


async def find_offer(conn: Connection, offer_id: uuid.UUID) -> StoredOffer | None:
    row = await conn.fetchrow(GET, offer_id)
    return None if row is None else StoredOffer(**dict(row.items()))


async def forget_offers(conn: Connection, before: dt.datetime) -> None:
    await conn.execute(FORGET, before)
