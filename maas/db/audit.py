"""The audit log: every operator and admin action, who, what, on what, when."""

from __future__ import annotations

import uuid

import msgspec

from maas.db import Connection

INSERT = "INSERT INTO audit_log (actor, action, subject, details) VALUES ($1, $2, $3, $4::jsonb)"
LIST = "SELECT id, actor, action, subject, details, at FROM audit_log ORDER BY id DESC LIMIT $1"

_encode = msgspec.json.Encoder().encode


async def record(
    conn: Connection,
    actor: uuid.UUID | None,  # None: the service itself (a scheduled re-optimisation)
    action: str,
    subject: str | None,
    details: dict[str, object] | None = None,
) -> None:
    await conn.execute(INSERT, actor, action, subject, _encode(details or {}).decode())


async def list_entries(conn: Connection, limit: int = 100) -> list[dict[str, object]]:
    return [
        {
            "id": r["id"],
            "actor": r["actor"],
            "action": r["action"],
            "subject": r["subject"],
            "details": msgspec.json.decode(r["details"]),
            "at": r["at"],
        }
        for r in await conn.fetch(LIST, limit)
    ]
