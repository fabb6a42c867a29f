"""Headers every response carries (request id, no sniffing, no referrer, CSP, HSTS), and who the client is
when trusted proxies stand in front of the service."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence

from litestar.config.cors import CORSConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from maas.errors import REQUEST_ID, request_id
from maas.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Nothing of the API is a page: no script, style, frame or form of it may load anywhere.
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The OpenAPI pages under /schema (ReDoc, Swagger UI, Stoplight Elements, RapiDoc, Scalar) load their scripts,
# styles, fonts and the Litestar badge from these CDNs, use inline scripts and styles, fetch the document from
# here and start web workers from blobs (ReDoc); nothing else.
DOCS_CDNS = "https://cdn.jsdelivr.net https://unpkg.com https://cdn.redoc.ly"
DOCS_CSP = (
    f"default-src 'none'; script-src 'self' 'unsafe-inline' {DOCS_CDNS}; "
    f"style-src 'self' 'unsafe-inline' {DOCS_CDNS} https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com data:; img-src 'self' data: https://cdn.jsdelivr.net https://cdn.redoc.ly; "
    "connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# The console (/console): its own scripts and styles only (no inline script, no eval), pictures from itself
# and data: URLs, calls and its WebSocket to this origin only, and no frame may hold it.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HSTS = "max-age=31536000; includeSubDomains"


def trusted_networks(settings: Settings) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(text) for text in settings.trusted_proxies)


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def client_address(scope: Scope, trusted: Sequence[Network]) -> str:
    """The socket peer, or, when that is a trusted proxy, the nearest address in X-Forwarded-For that is not one
    (a client can write anything at the left end of the header, so it is read from the right)."""
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if not trusted or not _trusted(peer, trusted):
        return peer
    forwarded = _header(scope, b"x-forwarded-for")
    if forwarded is None:
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def over_tls(scope: Scope, trusted: Sequence[Network]) -> bool:
    """The request came over https: to this process, or to a trusted proxy that says so (X-Forwarded-Proto)."""
    if scope.get("scheme") in ("https", "wss"):
        return True
    client = scope.get("client")
    if client and _trusted(client[0], trusted):
        proto = _header(scope, b"x-forwarded-proto") or ""
        return proto.split(",")[0].strip().lower() == "https"
    return False


def _policy(path: str, content_type: str) -> str:
    if path == "/console" or path.startswith("/console/"):
        return CONSOLE_CSP
    if content_type.startswith("text/html") and (path == "/schema" or path.startswith("/schema/")):
        return DOCS_CSP
    return STRICT_CSP


def hardening_headers(settings: Settings) -> Callable[[Message, Scope], Awaitable[None]]:
    """A `before_send` hook adding the headers to every HTTP response, errors and 404s of unknown paths included."""
    trusted = trusted_networks(settings)

    async def before_send(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        headers[REQUEST_ID] = request_id(scope)
        headers["x-content-type-options"] = "nosniff"
        headers["referrer-policy"] = "no-referrer"
        headers["x-frame-options"] = "DENY"
        headers["content-security-policy"] = _policy(scope["path"], headers.get("content-type") or "")
        if settings.hsts or over_tls(scope, trusted):
            headers["strict-transport-security"] = HSTS

    return before_send


def cors(settings: Settings) -> CORSConfig | None:
    """Browsers on the configured app origins may call the API with a bearer token; no origin may by default."""
    if not settings.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["authorization", "content-type", REQUEST_ID],
        expose_headers=[REQUEST_ID, "retry-after"],
        max_age=600,
    )
