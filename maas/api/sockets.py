"""WebSocket plumbing shared by the live endpoints: who is connecting, and pushing a subscription out.

Browsers cannot set an Authorization header on a WebSocket, so the WebSocket routes are left
out of the JWT middleware and check the caller themselves: a bearer token in the Authorization
header when there is one, else a one-time ticket (`?ticket=`, from POST /sessions/socket-ticket,
good for one connection within 30 s), else a token in the `token` query parameter (discouraged: a
URL is easily copied; `maas serve` redacts it from its logs). A socket stays tied to the session it
was opened with: `push` closes it with 4401 when that session expires or is revoked and with 4403
when its user's role changes or the user is deleted, within seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from litestar import WebSocket
from litestar.exceptions import NotAuthorizedException, WebSocketDisconnect

from maas.api.deps import services_of
from maas.auth import ENDED, bearer_token, decode, session_of
from maas.model import Session, User
from maas.realtime import Subscription

# Close codes in the private range 4000-4999, mirroring the HTTP statuses.
UNAUTHORIZED = 4401
FORBIDDEN = 4403
NOT_FOUND = 4404
CONFLICT = 4409
SESSION_CHECK_S = 2.0  # how often an open socket looks at its session (itself cached for up to 3 s)


async def socket_user(socket: WebSocket[Any, Any, Any]) -> User | None:
    """The user of the socket's bearer token, ticket or `token` parameter (None: no valid one); the
    socket remembers the session, so that `push` can close it when the session ends."""
    try:
        session, user = await _socket_session(socket)
    except NotAuthorizedException:
        return None
    socket.scope["auth"] = session
    socket.scope["user"] = user
    return user


async def _socket_session(socket: WebSocket[Any, Any, Any]) -> tuple[Session, User]:
    header = socket.headers.get("authorization")
    if header is not None:
        return await session_of(socket.app, decode(socket.app, bearer_token(header)))
    ticket = socket.query_params.get("ticket")
    if ticket:
        sessions = services_of(socket.app).users.sessions
        session_id = await sessions.take_ticket(ticket)
        if session_id is None:
            raise NotAuthorizedException("this ticket is unknown, used or expired")
        checked = await sessions.check(session_id)
        if checked.verdict != "valid" or checked.session is None or checked.user is None:
            raise NotAuthorizedException(ENDED.get(checked.verdict, "no session"))
        return checked.session, checked.user
    token = socket.query_params.get("token")
    if not token:
        raise NotAuthorizedException("no token")
    return await session_of(socket.app, decode(socket.app, token))


async def _session_ends(socket: WebSocket[Any, Any, Any]) -> tuple[int, str]:
    """Waits until the socket's session ends or its user's rights change: the close code and reason."""
    session = socket.scope.get("auth")
    if not isinstance(session, Session):
        await asyncio.Event().wait()  # a socket without a session (none of ours) is not watched
    assert isinstance(session, Session)
    sessions = services_of(socket.app).users.sessions
    while True:
        until_expiry_s = (session.expires_at - dt.datetime.now(dt.UTC)).total_seconds()
        await asyncio.sleep(max(0.0, min(SESSION_CHECK_S, until_expiry_s)))
        try:
            checked = await sessions.check(session.id)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            continue  # the database is away: the socket stays until its session can be checked again
        if checked.verdict == "role_changed":
            return FORBIDDEN, "your role has changed: sign in again"
        if checked.verdict == "gone":
            return FORBIDDEN, "your account no longer exists"
        if checked.verdict in ("expired", "revoked"):
            return UNAUTHORIZED, f"session {checked.verdict}: sign in again"


async def refuse(socket: WebSocket[Any, Any, Any], code: int, reason: str) -> None:
    """Refuse the handshake (the client sees the connection closed with `code`)."""
    await socket.accept()
    await socket.close(code=code, reason=reason)


async def push(
    socket: WebSocket[Any, Any, Any],
    subscription: Subscription,
    first: dict[str, Any] | None,
    render: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]],
) -> None:
    """Send `first`, then what `render` makes of each message (None: nothing), until the client leaves
    or the socket's session ends (then the socket is closed with 4401 or 4403)."""

    async def client_left() -> None:
        try:
            while (await socket.receive())["type"] != "websocket.disconnect":
                pass  # clients have nothing to say; reading notices when they go
        except WebSocketDisconnect:
            pass

    left = asyncio.ensure_future(client_left())
    ended = asyncio.ensure_future(_session_ends(socket))
    try:
        if first is not None:
            await socket.send_json(first)
        while True:
            message = asyncio.ensure_future(subscription.get())
            done, _ = await asyncio.wait({message, left, ended}, return_when=asyncio.FIRST_COMPLETED)
            if left in done or ended in done:
                message.cancel()
                if ended in done and left not in done:
                    code, reason = ended.result()
                    await socket.close(code=code, reason=reason)
                return
            out = await render(message.result())
            if out is not None:
                await socket.send_json(out)
    except WebSocketDisconnect:
        return
    finally:
        left.cancel()
        ended.cancel()
