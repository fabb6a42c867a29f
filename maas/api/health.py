"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from typing import Literal

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from maas.db.database import Database
from maas.served import Serving


class HealthOut(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["ok"]


class ReadyOut(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["ok", "unavailable"]
    network: bool  # a network is served
    database: bool  # the database answers
    database_error: str | msgspec.UnsetType = msgspec.UNSET  # why it does not


@get("/health", exclude_from_auth=True)
async def health() -> HealthOut:
    """The process answers."""
    return HealthOut(status="ok")


@get(
    "/ready",
    exclude_from_auth=True,
    responses={503: ResponseSpec(ReadyOut, description="The database does not answer or no network is served")},
)
async def ready(db: NamedDependency[Database], serving: NamedDependency[Serving]) -> Response[ReadyOut]:
    """The database answers and the network is loaded (503 otherwise)."""
    network = serving.current is not None
    error: str | msgspec.UnsetType = msgspec.UNSET
    try:
        async with db.pool.acquire(timeout=2) as conn:
            database = await conn.fetchval("SELECT 1") == 1
    except Exception as exc:  # noqa: BLE001 - any failure means not ready, and says why
        database, error = False, str(exc)
    ok = database and network
    body = ReadyOut(status="ok" if ok else "unavailable", network=network, database=database, database_error=error)
    return Response(body, status_code=200 if ok else 503)
