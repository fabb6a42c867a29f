"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import logging
from typing import Literal

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from maas.db.database import Database
from maas.served import Serving

log = logging.getLogger(__name__)


class HealthOut(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["ok"]


class ReadyOut(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["ok", "unavailable"]
    network: bool  # a network is served
    database: bool  # the database answers
    # why it does not, as the kind of failure: the message (host, database name) goes to the log only,
    # since /ready answers without a token
    database_error: str | msgspec.UnsetType = msgspec.UNSET


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
        log.warning("not ready: the database does not answer: %s", exc)
        database, error = False, type(exc).__name__
    ok = database and network
    body = ReadyOut(status="ok" if ok else "unavailable", network=network, database=database, database_error=error)
    return Response(body, status_code=200 if ok else 503)
