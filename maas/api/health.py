"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency

from maas.db.database import Database
from maas.served import Serving


@get("/health", exclude_from_auth=True)
async def health() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@get("/ready", exclude_from_auth=True)
async def ready(db: NamedDependency[Database], serving: NamedDependency[Serving]) -> Response[dict[str, Any]]:
    """The database answers and the network is loaded (503 otherwise)."""
    checks: dict[str, Any] = {"network": serving.current is not None}
    try:
        async with db.pool.acquire(timeout=2) as conn:
            checks["database"] = await conn.fetchval("SELECT 1") == 1
    except Exception as exc:  # noqa: BLE001 - any failure means not ready, and says why
        checks["database"] = False
        checks["database_error"] = str(exc)
    ok = checks["database"] and checks["network"]
    return Response({"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503)
