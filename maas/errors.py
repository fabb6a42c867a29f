"""The one place that turns domain errors into HTTP problem+json responses (RFC 9457)."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import asyncpg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap, Scope

from feeds.model import FeedError
from routing.errors import RoutingError

PROBLEM = "application/problem+json"
REQUEST_ID = "x-request-id"
RETRY_AFTER_DATABASE_S = 5  # a restarting PostgreSQL or a failover takes seconds, not minutes
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # what a proxy's id looks like; anything else is replaced
_log = logging.getLogger("maas.errors")


class MaasError(Exception):
    """The root of the service's errors; the message says what to do."""


class NotFound(MaasError):
    """Unknown, or not visible to the caller (both answer 404, so nothing leaks)."""


class Conflict(MaasError):
    """The request is valid but the current state does not allow it (409)."""

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.extra = extra


class Invalid(MaasError):
    """Well-formed but unusable input (422)."""


class Forbidden(MaasError):
    """The caller may see this, but not change it (403): an agency writing for another agency's feed."""


class DatabaseUnavailable(MaasError):
    """The database cannot be reached at the moment (503 with Retry-After); nothing was changed."""


class RateLimited(MaasError):
    """The caller spent a budget of requests (429 with Retry-After)."""

    def __init__(self, message: str, retry_after_s: int, budget: str) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.budget = budget


# What a database outage looks like to the service: a connection that failed, was lost or refused (too many
# connections, a server starting or shutting down). A connection that cannot be made at all is
# DatabaseUnavailable (maas/db/database.py).
DATABASE_DOWN: tuple[type[Exception], ...] = (
    DatabaseUnavailable,
    asyncpg.PostgresConnectionError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    # asyncpg's protocol caught between a server's goodbye (the FATAL of a terminated backend) and the socket's
    # close, when the next query starts on that connection ("cannot switch to state ...").
    asyncpg.InternalClientError,
    ConnectionError,
    TimeoutError,  # also asyncio's: a pool acquire that timed out
)

# What a request is refused with: nothing has changed when one of these is raised.
REFUSALS = (NotFound, Conflict, Invalid, Forbidden)


def problem(status: int, title: str, detail: str, **extra: Any) -> Response[dict[str, Any]]:
    return Response(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra},
        status_code=status,
        media_type=PROBLEM,
    )


def request_id(scope: Scope) -> str:
    """The id of this request: a sane `X-Request-ID` it came with, else a new one (the same for the whole request)."""
    state = scope.setdefault("state", {})
    known = state.get("maas_request_id")
    if isinstance(known, str):
        return known
    given = next((value for name, value in scope.get("headers", ()) if name == REQUEST_ID.encode()), b"")
    text = given.decode("latin-1")
    rid = text if _SANE_REQUEST_ID.fullmatch(text) else uuid.uuid4().hex
    state["maas_request_id"] = rid
    return rid


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """A bug: its traceback goes to the log under the request id, the caller gets only the id."""
    rid = request_id(request.scope)
    _log.error("request %s: %s %s failed", rid, request.method, request.url.path, exc_info=exc)
    return problem(500, "Internal Server Error", f"an unexpected error (request id {rid})", request_id=rid)


def _database_down(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    rid = request_id(request.scope)
    _log.warning("request %s: %s %s: the database is unavailable: %r", rid, request.method, request.url.path, exc)
    response = problem(
        503,
        "Service Unavailable",
        f"the database cannot be reached at the moment; try again in {RETRY_AFTER_DATABASE_S} s",
        request_id=rid,
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_DATABASE_S)
    return response


def _rate_limited(request: Request[Any, Any, Any], exc: RateLimited) -> Response[dict[str, Any]]:
    response = problem(429, "Too Many Requests", str(exc), budget=exc.budget)
    response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if exc.status_code >= 500 and exc.status_code != 503:
        return _unexpected(request, exc)
    extra = {"errors": exc.extra} if isinstance(getattr(exc, "extra", None), (list, dict)) and exc.extra else {}
    title = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        409: "Conflict",
        413: "Payload Too Large",
        415: "Unsupported Media Type",
        429: "Too Many Requests",
    }.get(exc.status_code, "Error")
    response = problem(exc.status_code, title, str(exc.detail), **extra)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _as_sent(request: Request[Any, Any, Any], error: Any) -> Any:
    """A field error keyed by the parameter's name on the wire (`from`), not the handler's (`after`)."""
    if not isinstance(error, dict) or getattr(error.get("source"), "value", error.get("source")) != "query":
        return error
    parameter = request.route_handler.parsed_fn_signature.parameters.get(str(error.get("key")))
    wire = getattr(getattr(parameter, "kwarg_definition", None), "name", None)
    return {**error, "key": wire} if isinstance(wire, str) else error


def _malformed(request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    """A 400 whose detail names each field that does not match the OpenAPI document, and how."""
    fields = [_as_sent(request, e) for e in exc.extra] if isinstance(exc.extra, list) else []
    named = "; ".join(f"{e.get('key') or e.get('source')}: {e.get('message')}" for e in fields if isinstance(e, dict))
    return problem(400, "Bad Request", named or str(exc.detail), **({"errors": fields} if fields else {}))


# Typed as Litestar's map: left to inference, mypy fails to type the merged dict under some hash seeds.
HANDLERS: ExceptionHandlersMap = {
    Exception: _unexpected,
    **dict.fromkeys(DATABASE_DOWN, _database_down),
    RateLimited: _rate_limited,
    HTTPException: _http,
    ValidationException: _malformed,
    # A row the database's CHECK constraints refuse (migration 0027 backs the wire bounds).
    asyncpg.CheckViolationError: lambda request, exc: problem(
        422, "Unprocessable Content", f"refused by the database: {exc}"
    ),
    NotFound: lambda request, exc: problem(404, "Not Found", str(exc)),
    Conflict: lambda request, exc: problem(409, "Conflict", str(exc), **exc.extra),
    Invalid: lambda request, exc: problem(422, "Unprocessable Content", str(exc)),
    Forbidden: lambda request, exc: problem(403, "Forbidden", str(exc)),
    # A feed that cannot be read (a GTFS-Realtime message that is not one) is the caller's input.
    FeedError: lambda request, exc: problem(422, "Unprocessable Content", str(exc)),
    # What routing refuses (a plan request, a ride off the roads) is the caller's input.
    RoutingError: lambda request, exc: problem(422, "Unprocessable Content", str(exc)),
    # A key taken by a concurrent request that the service did not turn into a Conflict of its own.
    asyncpg.UniqueViolationError: lambda request, exc: problem(
        409, "Conflict", f"{exc.table_name or 'a row'}: {exc.detail or 'a unique value is taken'}"
    ),
}
