"""Every endpoint × every role: what a role may not do answers 403 or 404, never data; nothing
but the probes, the API description and signing in answers without a token; only `Bearer` tokens count."""

from __future__ import annotations

import uuid

import pytest
from litestar.routes import HTTPRoute, WebSocketRoute
from litestar.testing import TestClient

from maas.model import ROLES
from tests.maas.conftest import Users

PUBLIC = {("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics")}
# The console's page and files: public, as a sign-in page must be; every call they make needs a token.
CONSOLE = {("GET", "/console"), ("GET", "/console/{file_path:path}")}
SIGN_IN = ("POST", "/sessions")  # no token needed: a login and a password
LOG_OUT = ("DELETE", "/sessions/current")  # ends the token it is sent with: tried last
ERASE = ("DELETE", "/me")  # erases the user it is sent by: tried with a user of its own
STAFF = {"operator", "admin"}
RIDERS = {"rider", "operator", "admin"}
ALLOWED: dict[tuple[str, str], set[str]] = {
    ("POST", "/quotes"): RIDERS,
    ("POST", "/bookings"): {"rider"},
    ("GET", "/bookings"): RIDERS,
    ("GET", "/bookings/{booking_id:uuid}"): RIDERS,
    ("POST", "/bookings/{booking_id:uuid}/cancel"): RIDERS,
    ("GET", "/bookings/{booking_id:uuid}/vehicle"): RIDERS,
    ("POST", "/journeys"): {"rider"},
    ("GET", "/journeys"): RIDERS,
    ("GET", "/journeys/{journey_id:uuid}"): RIDERS,
    ("POST", "/journeys/{journey_id:uuid}/cancel"): RIDERS,
    ("POST", "/operator/bookings"): STAFF,
    ("POST", "/operator/journeys"): STAFF,
    ("POST", "/operator/bookings/{booking_id:uuid}/reassign"): STAFF,
    ("POST", "/vehicles"): STAFF,
    ("GET", "/vehicles"): STAFF,
    ("POST", "/shifts"): STAFF,
    ("GET", "/shifts"): STAFF,
    ("GET", "/fleet/live"): STAFF,
    ("GET", "/fleet/plans"): STAFF,
    ("GET", "/fleet/reoptimizations"): STAFF,
    ("POST", "/fleet/reoptimizations"): STAFF,
    ("GET", "/alerts"): STAFF,
    ("GET", "/alerts/{alert_id:uuid}"): STAFF,
    ("POST", "/alerts/{alert_id:uuid}/acknowledge"): STAFF,
    ("POST", "/alerts/{alert_id:uuid}/resolve"): STAFF,
    ("GET", "/audit"): STAFF,
    ("PUT", "/service-area"): STAFF,
    ("GET", "/service-area"): set(ROLES),
    ("PUT", "/service"): STAFF,
    ("GET", "/service"): set(ROLES),
    ("POST", "/admin/users"): {"admin"},
    ("GET", "/admin/users"): {"admin"},
    ("POST", "/admin/tokens"): {"admin"},
    ("PUT", "/admin/users/{user_id:uuid}/role"): {"admin"},
    ("PUT", "/admin/users/{user_id:uuid}/password"): {"admin"},
    ("GET", "/admin/users/{user_id:uuid}/sessions"): {"admin"},
    ("DELETE", "/admin/users/{user_id:uuid}/sessions"): {"admin"},
    ("GET", "/sessions"): set(ROLES),
    ("DELETE", "/sessions/{session_id:uuid}"): set(ROLES),
    ("POST", "/sessions/socket-ticket"): set(ROLES),
    ("GET", "/me/export"): set(ROLES),
    ERASE: {"rider"},
    ("POST", "/operator/callers/erase"): STAFF,
    LOG_OUT: set(ROLES),
    ("POST", "/feeds"): {"agency", "admin"},
    ("GET", "/feeds"): {"agency", "admin"},
    ("GET", "/feeds/{version_id:uuid}"): {"agency", "admin"},
    ("DELETE", "/feeds/{version_id:uuid}"): {"agency", "admin"},
    ("POST", "/feeds/{version_id:uuid}/publish"): {"agency", "admin"},
    ("GET", "/networks"): {"agency", "operator", "admin"},
    ("POST", "/networks/{network_id:int}/activate"): STAFF,
    ("GET", "/plan"): RIDERS,
    ("GET", "/places"): RIDERS,
    ("GET", "/map/streets"): STAFF,
    ("GET", "/map/stops"): STAFF,
    ("POST", "/realtime/gtfs-rt/{feed_id:str}"): {"agency", "operator", "admin"},
    ("GET", "/transit/vehicles"): set(ROLES),
    ("GET", "/driver/shifts"): {"driver"},
    ("POST", "/driver/shifts/{shift_id:uuid}/sign-in"): {"driver"},
    ("POST", "/driver/shifts/{shift_id:uuid}/sign-out"): {"driver"},
    ("GET", "/driver/plan"): {"driver"},
    ("POST", "/driver/positions"): {"driver"},
    ("POST", "/driver/events"): {"driver"},
}
SOCKETS = {"/ws/fleet": STAFF, "/ws/driver": {"driver"}, "/ws/bookings/{booking_id:uuid}": RIDERS}


def _endpoints(client: TestClient) -> set[tuple[str, str]]:
    found = set()
    for route in client.app.routes:
        if isinstance(route, HTTPRoute) and not route.path.startswith("/schema"):
            for handler in route.route_handlers:
                found |= {(m, route.path) for m in handler.http_methods if m not in ("OPTIONS", "HEAD")}
    return found


def _url(path: str) -> str:
    return (
        path.replace("{booking_id:uuid}", str(uuid.uuid4()))
        .replace("{version_id:uuid}", str(uuid.uuid4()))
        .replace("{shift_id:uuid}", str(uuid.uuid4()))
        .replace("{journey_id:uuid}", str(uuid.uuid4()))
        .replace("{user_id:uuid}", str(uuid.uuid4()))
        .replace("{session_id:uuid}", str(uuid.uuid4()))
        .replace("{alert_id:uuid}", str(uuid.uuid4()))
        .replace("{network_id:int}", "999999")
        .replace("{feed_id:str}", "no-such-feed")
    )


def test_every_endpoint_is_in_the_matrix(client: TestClient) -> None:
    assert _endpoints(client) == set(ALLOWED) | PUBLIC | CONSOLE | {SIGN_IN}
    sockets = {r.path for r in client.app.routes if isinstance(r, WebSocketRoute)}
    assert sockets == set(SOCKETS)


@pytest.mark.parametrize("role", [*ROLES, None], ids=lambda r: r or "anonymous")
def test_every_role_on_every_endpoint(client: TestClient, users: Users, role: str | None) -> None:
    headers = users.make(role)[1] if role else {}
    for (method, path), allowed in sorted(ALLOWED.items(), key=lambda item: item[0] == LOG_OUT):
        body = {} if method in ("POST", "PUT") else None
        sent = users.make(role)[1] if role and (method, path) == ERASE else headers
        response = client.request(method, _url(path), headers=sent, json=body)
        if role is None:
            assert response.status_code == 401, (method, path, response.status_code)
        elif role in allowed:
            assert response.status_code not in (401, 403), (role, method, path, response.text)
        else:
            assert response.status_code in (403, 404), (role, method, path, response.status_code)
            assert response.headers["content-type"].startswith("application/problem+json")
    for method, path in PUBLIC:
        assert client.request(method, path, headers=headers).status_code == 200
    for path in ("/console/", "/console/app.js"):
        assert client.get(path, headers=headers).status_code == 200
    signing_in = client.post("/sessions", headers=headers, json={})
    assert signing_in.status_code == 400 and signing_in.headers["content-type"].startswith("application/problem+json")
    if role is not None:  # logged out above
        assert client.get("/sessions", headers=headers).status_code == 401


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_bearer_scheme_in_any_case(client: TestClient, users: Users, scheme: str) -> None:
    token = users.make("operator")[1]["Authorization"].split()[1]
    assert client.get("/vehicles", headers={"Authorization": f"{scheme} {token}"}).status_code == 200


@pytest.mark.parametrize("header", ["Basic {token}", "Token {token}", "{token}", "Bearer", "Bearer  "])
def test_another_scheme_is_refused_with_a_reason(client: TestClient, users: Users, header: str) -> None:
    """Defect 10: `Basic <jwt>` was taken as a bearer token."""
    from litestar.exceptions import WebSocketDisconnect

    token = users.make("operator")[1]["Authorization"].split()[1]
    sent = {"Authorization": header.format(token=token)}
    refused = client.get("/vehicles", headers=sent)
    assert refused.status_code == 401, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "Bearer" in refused.json()["detail"]
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws/fleet", headers=sent) as socket:
        socket.receive_json(timeout=5)
    assert closed.value.code == 4401


@pytest.mark.parametrize("role", [*ROLES, None], ids=lambda r: r or "anonymous")
def test_every_role_on_every_socket(client: TestClient, users: Users, role: str | None) -> None:
    """A role that may not listen is closed with 4401 (no token) or 4403 (wrong role); a role that
    may is let in (an unknown booking still closes with 4404)."""
    from litestar.exceptions import WebSocketDisconnect

    token = users.make(role)[1]["Authorization"].split()[1] if role else None
    for path, allowed in SOCKETS.items():
        url = _url(path) + (f"?token={token}" if token else "")
        code = None
        try:
            with client.websocket_connect(url) as socket:
                message = socket.receive(timeout=2)
                if message.get("type") == "websocket.close":
                    code = message["code"]
        except WebSocketDisconnect as closed:
            code = closed.code
        except Exception:  # noqa: BLE001 - nothing arrived in time: the socket stayed open
            code = None
        if role is None:
            assert code == 4401, (path, code)
        elif role not in allowed:
            assert code == 4403, (role, path, code)
        else:
            assert code in (None, 4404, 4409) and code != 4403, (role, path, code)
