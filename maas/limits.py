"""Rate limits per authenticated user (per client address when anonymous), with their own budgets for booking,
sign-in and upload, counted in PostgreSQL so that they hold across every worker process of the database."""

from __future__ import annotations

import logging
import math
import time
from typing import Literal

import jwt
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from maas.api.deps import services_of
from maas.db import rate_limits
from maas.errors import DATABASE_DOWN, RateLimited
from maas.hardening import client_address, trusted_networks
from maas.settings import Settings

Budget = Literal["booking", "sign-in", "upload", "default"]
WINDOW_S = 60
PRUNE_EVERY_S = 60.0
# Requests with a budget of their own, by method and path; every other request spends the default budget.
BUDGETS: dict[tuple[str, str], Budget] = {
    ("POST", "/quotes"): "booking",
    ("POST", "/bookings"): "booking",
    ("POST", "/operator/bookings"): "booking",  # phone bookings
    ("POST", "/journeys"): "booking",
    ("POST", "/operator/journeys"): "booking",  # journeys booked for phone callers
    ("POST", "/sessions"): "sign-in",
    ("POST", "/feeds"): "upload",
}
UNLIMITED = frozenset({"/health", "/ready", "/metrics"})
_log = logging.getLogger("maas.limits")


def budget_of(method: str, path: str) -> Budget:
    return BUDGETS.get((method, path.rstrip("/") or "/"), "default")


def _unlimited(scope: Scope) -> bool:
    """Probes and metrics: an orchestrator or a scraper must always get through."""
    return scope["path"].rstrip("/") in UNLIMITED


class RateLimits(ASGIMiddleware):
    """Counts each request against its budget for its caller in the current minute; over the budget it answers
    429 with Retry-After (the seconds until the minute ends). Probes and metrics are never limited."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, settings: Settings) -> None:
        self.should_bypass_for_scope = _unlimited
        self.secret = settings.jwt_secret
        self.trusted = trusted_networks(settings)
        self.limits: dict[Budget, int] = {
            "booking": settings.rate_limit_booking_per_minute,
            "sign-in": settings.rate_limit_sign_in_per_minute,
            "upload": settings.rate_limit_upload_per_minute,
            "default": settings.rate_limit_per_minute,
        }
        self.pruned_at = 0.0  # per process: each prunes now and then, any of them suffices

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        method = scope["method"] if scope["type"] == ScopeType.HTTP else "GET"  # `scopes` lets only HTTP in
        budget = budget_of(method, scope["path"])
        caller = self.caller(scope)
        now = time.time()
        window = int(now // WINDOW_S)
        hits = await self.count(scope, f"{budget} {caller}", window)
        limit = self.limits[budget]
        if hits is not None and hits > limit:
            retry_after = max(1, math.ceil((window + 1) * WINDOW_S - now))
            who = "user" if caller.startswith("user ") else "client address"
            raise RateLimited(
                f"too many {budget} requests: at most {limit} a minute for each {who}; try again in {retry_after} s",
                retry_after_s=retry_after,
                budget=budget,
            )
        await next_app(scope, receive, send)

    def caller(self, scope: Scope) -> str:
        """`user <id>` for a request with a bearer token signed by this service, else `address <client>`."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and token:
                    try:
                        subject = jwt.decode(token.strip(), self.secret, algorithms=["HS256"]).get("sub")
                    except jwt.PyJWTError:
                        break
                    if isinstance(subject, str) and len(subject) <= 64:
                        return f"user {subject}"
                break
        return f"address {client_address(scope, self.trusted)[:64]}"

    async def count(self, scope: Scope, key: str, window: int) -> int | None:
        """The requests of `key` in `window` including this one; None when the database cannot count them (the
        request goes on: what it needs from the database answers 503 on its own)."""
        pool = services_of(scope["litestar_app"]).db.pool
        try:
            async with pool.acquire() as conn:
                hits = await rate_limits.hit(conn, key, window)
                if time.monotonic() - self.pruned_at > PRUNE_EVERY_S:
                    self.pruned_at = time.monotonic()
                    await rate_limits.prune(conn, window - 1)
        except DATABASE_DOWN as exc:
            _log.debug("rate limits not counted: %r", exc)
            return None
        return hits
