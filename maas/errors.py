"""The one place that turns domain errors into HTTP problem+json responses (RFC 9457)."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from feeds.model import FeedError
from routing.errors import RoutingError

PROBLEM = "application/problem+json"


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


# What a request is refused with: nothing has changed when one of these is raised.
REFUSALS = (NotFound, Conflict, Invalid, Forbidden)


def problem(status: int, title: str, detail: str, **extra: Any) -> Response[dict[str, Any]]:
    return Response(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra},
        status_code=status,
        media_type=PROBLEM,
    )


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
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


def _malformed(request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    """A 400 whose detail names each field that does not match the OpenAPI document, and how."""
    fields = exc.extra if isinstance(exc.extra, list) else []
    named = "; ".join(f"{e.get('key') or e.get('source')}: {e.get('message')}" for e in fields if isinstance(e, dict))
    return problem(400, "Bad Request", named or str(exc.detail), **({"errors": fields} if fields else {}))


HANDLERS = {
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
