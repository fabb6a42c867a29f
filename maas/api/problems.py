"""What every operation can answer besides success, in the OpenAPI document (problem+json, RFC 9457),
and the request bodies the API reads: JSON only, never nested past what a request needs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from litestar import Litestar, Request
from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin  # how Litestar types Structs
from litestar.connection import ASGIConnection
from litestar.exceptions import ClientException, HTTPException
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.plugins import OpenAPISchemaPlugin, ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute
from litestar.typing import FieldDefinition

from maas.auth import PUBLIC
from maas.errors import PROBLEM

# Why an operation answers each status; an operation documents those that apply to it.
REASONS = {
    400: "Malformed: the body, a parameter or a header does not match this document",
    401: "No valid bearer token",
    403: "The caller's role may not do this",
    404: "Unknown, or not the caller's",
    409: "The current state does not allow it",
    413: "The body is too large",
    415: "The body is not JSON (Content-Type: application/json)",
    422: "Well-formed but unusable: the message says why",
    429: "Too many requests: wait for Retry-After",
    503: "The database or the network is unavailable: try again later",
}
TIME_OF_DAY = r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"  # HH:MM:SS, a time of day without offset
UNLIMITED = ("/health", "/ready", "/metrics")  # what the rate limit leaves out (maas.app)


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """An error answer (RFC 9457); a refusal may carry more members, such as alternatives."""

    type: str
    title: str
    status: int
    detail: str


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """The responses= of a route handler for these statuses, each a problem+json."""
    return {
        s: ResponseSpec(data_container=Problem, media_type=PROBLEM, description=REASONS[s], generate_examples=False)
        for s in statuses
    }


def _public(route: HTTPRoute, handler: HTTPRouteHandler) -> bool:
    return bool(handler.opt.get("exclude_from_auth")) or any(route.path.startswith(p) for p in PUBLIC)


def _statuses(route: HTTPRoute, handler: HTTPRouteHandler) -> set[int]:
    """The statuses that apply to every operation of this kind: authentication, roles, input, limits."""
    found: set[int] = set()
    public = _public(route, handler)
    if not public:
        found |= {401, 403, 422, 503}  # a token's role, or what the caller's account may do (DELETE /me)
    if [g for g in handler.resolve_guards() if g is not single_query_values]:
        found |= {403, 404, 422}  # a guarded operation acts on the caller's data
    if not route.path.startswith(UNLIMITED):
        found.add(429)
    parameters = handler.parsed_fn_signature.parameters
    if "data" in parameters:
        found |= {400, 413, 415, 422}
    if route.path_parameters:
        found |= {400, 404}
    if any(p.is_parameter_field for p in parameters.values()):
        found.add(400)  # query parameters and headers
    if handler.http_methods & {"POST", "PUT", "PATCH", "DELETE"} and not public:
        found.add(409)
    return found


class ClosedStructs(OpenAPISchemaPlugin):
    """Structs that refuse unknown fields (forbid_unknown_fields) say so: additionalProperties false."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return (
            not field_definition.is_union
            and field_definition.is_subclass_of(msgspec.Struct)
            and bool(field_definition.type_.__struct_config__.forbid_unknown_fields)
        )

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = StructSchemaPlugin().to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False
        # Litestar documents a time of day as a duration ("P1D"); the wire takes "HH:MM:SS".
        for field in msgspec.structs.fields(field_definition.type_):
            if field.type is dt.time and schema.properties and isinstance(schema.properties.get(field.name), Schema):
                schema.properties[field.name] = Schema(
                    type=OpenAPIType.STRING, pattern=TIME_OF_DAY, default=field.default.isoformat()
                )
        return schema


class ProblemResponses(ReceiveRoutePlugin):
    """Documents on each operation the problem answers it can give; a handler's own responses= win."""

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            if handler.include_in_schema is False:
                continue
            handler.responses = {**problems(*sorted(_statuses(route, handler))), **(handler.responses or {})}
            if _public(route, handler):
                handler.security = [{}]  # no token needed: overrides the bearer requirement of the document


def _documented_queries(app: Litestar) -> dict[int, frozenset[str]]:
    """The query parameters the OpenAPI document gives each operation, by its handler's function."""
    paths = app.openapi_schema.to_schema()["paths"]
    known: dict[int, frozenset[str]] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                operation = paths.get(route.path_format, {}).get(method.lower())
                if operation is not None:
                    names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
                    known[id(handler.fn)] = frozenset(names)
    return known


async def single_query_values(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The app's guard: a query parameter the operation does not take, or given twice, is refused
    (400) rather than ignored or read as one of its values."""
    params = connection.query_params
    if not params:
        return
    state = connection.app.state
    if _QUERIES not in state:
        state[_QUERIES] = _documented_queries(connection.app)
    known = state[_QUERIES].get(id(handler.fn))  # the handler a guard gets is a copy of the route's
    unknown = sorted(set(params) - known) if known is not None else []
    if unknown:
        taken = ", ".join(sorted(known or ())) or "none"
        raise ClientException(f"unknown query parameter {', '.join(map(repr, unknown))}; this operation takes: {taken}")
    repeated = sorted(k for k in set(params) if len(params.getall(k)) > 1)
    if repeated:
        raise ClientException(f"give each query parameter once: {', '.join(repeated)} came more than once")


_QUERIES = "maas.documented_queries"


JSON_TYPES = ("application/json",)


class JsonRequest(Request[Any, Any, Any]):
    """A request whose JSON body is refused with a problem, not a 500, when it is sent as another
    media type (415) or nested deeper than the decoder can follow (400)."""

    async def json(self) -> Any:
        media_type = self.content_type[0].lower()
        if media_type and media_type not in JSON_TYPES and not media_type.endswith("+json"):
            raise HTTPException(status_code=415, detail=f"send JSON as application/json, not {media_type}")
        try:
            return await super().json()
        except RecursionError:
            raise ClientException("the JSON body is nested too deeply") from None
