"""Sessions: staff sign in and out, admins revoke, token lifetimes are bounded, a role change or a
deleted user ends every session, failed sign-ins are limited; open sockets close when their session
ends (4401) or their user's rights change (4403); one-time socket tickets."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import jwt
import pytest
from click.testing import CliRunner
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient
from litestar.testing.websocket_test_session import WebSocketTestSession

from maas.cli import main
from maas.sessions import SESSION_CACHE_S
from maas.settings import Settings
from tests.maas.conftest import Users, execute

PASSWORD = "a long enough passphrase"


def fetch(settings: Settings, sql: str, *args: object) -> Any:
    """One value from the test database."""

    async def run() -> Any:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture
def no_attempts(settings: Settings, client: TestClient) -> Iterator[None]:
    """Every TestClient request comes from one address: the test starts and leaves without failed
    sign-ins of it, so that the per-address limit of one test does not refuse another's."""
    execute(settings, "DELETE FROM sign_in_attempts")
    yield
    execute(settings, "DELETE FROM sign_in_attempts")


def staff(client: TestClient, users: Users, role: str = "operator") -> tuple[str, str, dict[str, str]]:
    """A staff user with a login and password set by an admin: (user id, login, the admin's headers)."""
    user, _ = users.make(role)
    _, admin = users.make("admin")
    login = f"{role}-{uuid.uuid4().hex[:8]}"
    response = client.put(
        f"/admin/users/{user.id}/password", headers=admin, json={"login": login, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"user_id": str(user.id), "login": login}
    return str(user.id), login, admin


def sign_in(client: TestClient, login: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/sessions", json={"login": login, "password": password})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def closed_with(socket: WebSocketTestSession, within_s: float = 20.0) -> int:
    """The close code of a socket that closes within `within_s` (messages before are skipped)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            socket.receive_json(timeout=within_s)
        except WebSocketDisconnect as closed:
            return closed.code
    raise AssertionError("the socket stayed open")


def test_an_operator_signs_in_lists_sessions_and_logs_out(client: TestClient, users: Users, no_attempts: None) -> None:
    _, login, _ = staff(client, users)
    laptop = sign_in(client, login.upper())  # logins are not case-sensitive
    phone = sign_in(client, login)
    assert client.get("/vehicles", headers=laptop).status_code == 200
    mine = client.get("/sessions", headers=laptop).json()
    assert len(mine) == 2 and [s["current"] for s in mine] == [False, True]
    assert {s["issued_by"] for s in mine} == {"sign_in"} and {s["role"] for s in mine} == {"operator"}
    # Ending the phone's session from the laptop, then logging out on the laptop.
    phone_session = mine[0]["id"]
    ended = client.delete(f"/sessions/{phone_session}", headers=laptop)
    assert ended.status_code == 200 and ended.json()["revoked_reason"] == "logout"
    refused = client.get("/vehicles", headers=phone)
    assert refused.status_code == 401 and "ended" in refused.json()["detail"]
    assert client.delete(f"/sessions/{phone_session}", headers=laptop).status_code == 404
    assert client.delete("/sessions/current", headers=laptop).json()["revoked_reason"] == "logout"
    assert client.get("/vehicles", headers=laptop).status_code == 401
    assert client.delete("/sessions/current", headers=laptop).status_code == 401


def test_wrong_passwords_unknown_logins_and_riders_do_not_sign_in(
    client: TestClient, users: Users, settings: Settings, no_attempts: None
) -> None:
    user_id, login, admin = staff(client, users)
    for body in ({"login": login, "password": "not the password"}, {"login": "nobody-here", "password": PASSWORD}):
        refused = client.post("/sessions", json=body)
        assert refused.status_code == 401 and refused.json()["detail"] == "wrong login or password"
    rider, _ = users.make("rider")
    no_password = client.put(
        f"/admin/users/{rider.id}/password", headers=admin, json={"login": "r1", "password": PASSWORD}
    )
    assert no_password.status_code == 422 and "tokens the service issues" in no_password.json()["detail"]
    short = client.put(f"/admin/users/{user_id}/password", headers=admin, json={"password": "short"})
    assert short.status_code == 422 and "12 characters" in short.json()["detail"]
    other_id, _, _ = staff(client, users)
    taken = client.put(f"/admin/users/{other_id}/password", headers=admin, json={"login": login, "password": PASSWORD})
    assert taken.status_code == 409
    # The hash is argon2id, and the audit names the login but holds no password.
    assert fetch(settings, "SELECT password_hash FROM credentials WHERE login = $1", login).startswith("$argon2id$")
    audit = client.get("/audit", headers=admin, params={"limit": 20}).json()
    assert any(e["action"] == "set_password" and e["details"] == {"login": login} for e in audit)
    assert PASSWORD not in str(audit)


def test_failed_sign_ins_are_limited_per_login_and_per_address(
    client: TestClient, users: Users, settings: Settings, no_attempts: None
) -> None:
    _, login, _ = staff(client, users)
    for _ in range(settings.sign_in_max_failures):
        assert client.post("/sessions", json={"login": login, "password": "guess"}).status_code == 401
    # Now even the right password waits, and says how long.
    locked = client.post("/sessions", json={"login": login, "password": PASSWORD})
    assert locked.status_code == 429, locked.text
    assert 1 <= int(locked.headers["retry-after"]) <= settings.sign_in_window_s
    assert locked.headers["content-type"].startswith("application/problem+json")
    # Another login from the same address still signs in ...
    _, other, _ = staff(client, users)
    sign_in(client, other)
    # ... until the address has failed four times the limit, whatever the logins (unknown ones too).
    for k in range(3 * settings.sign_in_max_failures):
        assert client.post("/sessions", json={"login": f"guess-{k}", "password": "guess"}).status_code == 401
    refused = client.post("/sessions", json={"login": other, "password": PASSWORD})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    # Once the window has passed (here: the attempts are moved back beyond it), the login signs in again.
    execute(
        settings, "UPDATE sign_in_attempts SET at = at - make_interval(secs => $1)", float(settings.sign_in_window_s)
    )
    sign_in(client, login)


def test_token_lifetimes_are_bounded_and_a_refusal_issues_and_audits_nothing(
    client: TestClient, users: Users, settings: Settings
) -> None:
    """Defect 2/5: a negative or 3,000-year token lifetime was taken, and audited though never issued."""
    _, admin = users.make("admin")
    rider, _ = users.make("rider")
    for ttl_s in (-5, 0, settings.token_max_ttl_s + 1, 3000 * 365 * 86400):
        refused = client.post("/admin/tokens", headers=admin, json={"user_id": str(rider.id), "ttl_s": ttl_s})
        assert refused.status_code in (400, 422), (ttl_s, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    count = "SELECT count(*) FROM {} WHERE {} = $1"
    assert fetch(settings, count.format("audit_log", "subject"), str(rider.id)) == 0
    assert fetch(settings, count.format("sessions", "user_id"), rider.id) == 1  # the one users.make issued
    month = client.post(
        "/admin/tokens", headers=admin, json={"user_id": str(rider.id), "ttl_s": settings.token_max_ttl_s}
    )
    assert month.status_code == 201
    claims = jwt.decode(month.json()["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == pytest.approx(settings.token_max_ttl_s, abs=5)
    short = client.post("/admin/tokens", headers=admin, json={"user_id": str(rider.id), "ttl_s": 1})
    headers = {"Authorization": f"Bearer {short.json()['token']}"}
    time.sleep(1.5)
    expired = client.get("/bookings", headers=headers)
    assert expired.status_code == 401, expired.text
    assert fetch(settings, count.format("audit_log", "subject"), str(rider.id)) == 2


def test_an_admin_revokes_every_session_of_a_user(client: TestClient, users: Users, settings: Settings) -> None:
    _, admin = users.make("admin")
    rider, first = users.make("rider")
    second = {
        "Authorization": "Bearer "
        + client.post("/admin/tokens", headers=admin, json={"user_id": str(rider.id)}).json()["token"]
    }
    listed = client.get(f"/admin/users/{rider.id}/sessions", headers=admin).json()
    assert [s["issued_by"] for s in listed] == ["admin", "cli"]
    revoked = client.delete(f"/admin/users/{rider.id}/sessions", headers=admin)
    assert revoked.status_code == 200 and revoked.json() == {"revoked": 2}
    for headers in (first, second):
        assert client.get("/bookings", headers=headers).status_code == 401
    assert client.get(f"/admin/users/{rider.id}/sessions", headers=admin).json() == []
    assert client.delete(f"/admin/users/{uuid.uuid4()}/sessions", headers=admin).status_code == 404
    assert any(e["action"] == "revoke_sessions" for e in client.get("/audit", headers=admin).json())
    # A new token works again.
    fresh = client.post("/admin/tokens", headers=admin, json={"user_id": str(rider.id)}).json()["token"]
    assert client.get("/bookings", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_a_role_change_or_a_deleted_user_ends_their_sessions(
    client: TestClient, users: Users, settings: Settings
) -> None:
    _, admin = users.make("admin")
    operator, headers = users.make("operator")
    demoted = client.put(f"/admin/users/{operator.id}/role", headers=admin, json={"role": "rider"})
    assert demoted.status_code == 200 and demoted.json()["role"] == "rider"
    refused = client.get("/bookings", headers=headers)  # a rider may list bookings, but not with this token
    assert refused.status_code == 401 and "role" in refused.json()["detail"]
    # Whatever changes the role: the database ends the sessions (another process's cache expires within seconds).
    rider, rider_headers = users.make("rider")
    execute(settings, "UPDATE users SET role = 'driver' WHERE id = $1", rider.id)
    assert fetch(settings, "SELECT revoked_reason FROM sessions WHERE user_id = $1", rider.id) == "role_changed"
    gone, gone_headers = users.make("rider")
    execute(settings, "DELETE FROM users WHERE id = $1", gone.id)
    time.sleep(SESSION_CACHE_S + 0.5)  # no request of this process has seen these sessions change
    assert client.get("/bookings", headers=rider_headers).status_code == 401
    assert client.get("/bookings", headers=gone_headers).status_code == 401


def test_a_token_without_a_session_is_refused(client: TestClient, users: Users, settings: Settings) -> None:
    """Tokens issued before sessions existed, or forged with the secret but no session row."""
    rider, _ = users.make("rider")
    for jti in (None, str(uuid.uuid4())):
        claims = {"sub": str(rider.id), "exp": int(time.time()) + 600, "iat": int(time.time()), "extras": {}}
        token = jwt.encode({**claims, **({"jti": jti} if jti else {})}, settings.jwt_secret, algorithm="HS256")
        assert client.get("/bookings", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_the_cli_sets_passwords_from_stdin_only(client: TestClient, settings: Settings, no_attempts: None) -> None:
    env = {"MAAS_DATABASE_URL": settings.database_url or "", "MAAS_JWT_SECRET": settings.jwt_secret}
    login = f"ada-{uuid.uuid4().hex[:6]}"
    created = CliRunner().invoke(
        main,
        ["user", "create", "Ada", "--role", "admin", "--login", login, "--password-stdin", "--json"],
        input=PASSWORD + "\n",
        env=env,
    )
    assert created.exit_code == 0, created.output
    headers = sign_in(client, login)
    assert client.get("/admin/users", headers=headers).status_code == 200
    user_id = next(u["id"] for u in client.get("/admin/users", headers=headers).json() if u["name"] == "Ada")
    changed = CliRunner().invoke(
        main, ["user", "password", user_id, "--password-stdin"], input="another passphrase!\n", env=env
    )
    assert changed.exit_code == 0, changed.output
    time.sleep(SESSION_CACHE_S + 0.5)  # another process ended the sessions: this one sees it within seconds
    assert client.get("/admin/users", headers=headers).status_code == 401  # a new password ends the sessions
    sign_in(client, login, "another passphrase!")
    assert "--password" not in CliRunner().invoke(main, ["user", "password", "--help"]).output.replace(
        "--password-stdin", ""
    )


# Open sockets (defect 4).


def ticket(client: TestClient, headers: dict[str, str]) -> str:
    response = client.post("/sessions/socket-ticket", headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["ticket"])


def test_a_socket_closes_when_its_token_expires(client: TestClient, users: Users) -> None:
    """Defect 4: a socket kept streaming after its token expired."""
    operator, _ = users.make("operator")
    _, admin = users.make("admin")
    token = client.post("/admin/tokens", headers=admin, json={"user_id": str(operator.id), "ttl_s": 3}).json()["token"]
    with client.websocket_connect(f"/ws/fleet?token={token}") as socket:
        assert socket.receive_json(timeout=10)["type"] == "snapshot"
        assert closed_with(socket) == 4401


def test_a_socket_closes_on_logout_and_on_revocation(client: TestClient, users: Users) -> None:
    _, login, admin = staff(client, users)
    headers = sign_in(client, login)
    with client.websocket_connect("/ws/fleet", headers=headers) as socket:
        assert socket.receive_json(timeout=10)["type"] == "snapshot"
        assert client.delete("/sessions/current", headers=headers).status_code == 200
        assert closed_with(socket) == 4401
    operator, headers = users.make("operator")
    with client.websocket_connect(f"/ws/fleet?ticket={ticket(client, headers)}") as socket:
        assert socket.receive_json(timeout=10)["type"] == "snapshot"
        assert client.delete(f"/admin/users/{operator.id}/sessions", headers=admin).status_code == 200
        assert closed_with(socket) == 4401


def test_a_socket_closes_when_its_user_is_demoted_or_deleted(
    client: TestClient, users: Users, settings: Settings
) -> None:
    """Defect 4: a socket kept streaming after its user was demoted or deleted."""
    _, admin = users.make("admin")
    operator, headers = users.make("operator")
    with client.websocket_connect("/ws/fleet", headers=headers) as socket:
        assert socket.receive_json(timeout=10)["type"] == "snapshot"
        assert client.put(f"/admin/users/{operator.id}/role", headers=admin, json={"role": "rider"}).status_code == 200
        assert closed_with(socket) == 4403
    operator, headers = users.make("operator")
    with client.websocket_connect(f"/ws/fleet?token={headers['Authorization'].split()[1]}") as socket:
        assert socket.receive_json(timeout=10)["type"] == "snapshot"
        execute(settings, "DELETE FROM users WHERE id = $1", operator.id)  # as the privacy erasure does
        assert closed_with(socket) == 4403


def test_a_socket_ticket_is_good_for_one_connection(client: TestClient, users: Users, settings: Settings) -> None:
    _, headers = users.make("operator")
    once = ticket(client, headers)
    with client.websocket_connect(f"/ws/fleet?ticket={once}") as socket:
        assert socket.receive_json(timeout=10)["type"] == "snapshot"
    for url in (f"/ws/fleet?ticket={once}", "/ws/fleet?ticket=made-up"):
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(url) as socket:
            socket.receive_json(timeout=10)
        assert refused.value.code == 4401
    late = ticket(client, headers)
    execute(settings, "UPDATE socket_tickets SET expires_at = now() - interval '1 second'")
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(f"/ws/fleet?ticket={late}") as socket:
        socket.receive_json(timeout=10)
    assert refused.value.code == 4401
    # A ticket carries its session's rights: a rider's ticket does not open the fleet.
    _, rider = users.make("rider")
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(f"/ws/fleet?ticket={ticket(client, rider)}") as socket,
    ):
        socket.receive_json(timeout=10)
    assert refused.value.code == 4403
