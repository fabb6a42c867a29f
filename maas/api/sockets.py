"""WebSocket plumbing shared by the live endpoints: who is connecting, and pushing a subscription out.

Browsers cannot set an Authorization header on a WebSocket, so the WebSocket routes are left
out of the JWT middleware and check the bearer token themselves: from the header when there is
one, else from the `token` query parameter (which ends up in access logs: keep tokens short-lived).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
from litestar import WebSocket
from litestar.exceptions import NotAuthorizedException, WebSocketDisconnect
from litestar.security.jwt import Token

from maas.api.deps import services_of
from maas.db.users import find_user
from maas.model import User
from maas.realtime import Subscription

# Close codes in the private range 4000-4999, mirroring the HTTP statuses.
UNAUTHORIZED = 4401
FORBIDDEN = 4403
NOT_FOUND = 4404
CONFLICT = 4409


async def socket_user(socket: WebSocket[Any, Any, Any]) -> User | None:
    """The user of the bearer token in the Authorization header or the `token` query parameter."""
    header = socket.headers.get("authorization", "")
    encoded = header.partition(" ")[2] if header.lower().startswith("bearer ") else socket.query_params.get("token")
    if not encoded:
        return None
    try:
        token = Token.decode(encoded, services_of(socket.app).settings.jwt_secret, "HS256")
        user_id = uuid.UUID(token.sub)
    except (NotAuthorizedException, jwt.PyJWTError, ValueError):
        return None
    async with services_of(socket.app).db.pool.acquire() as conn:
        return await find_user(conn, user_id)


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
    """Send `first`, then what `render` makes of each message (None: nothing), until the client leaves."""

    async def client_left() -> None:
        try:
            while (await socket.receive())["type"] != "websocket.disconnect":
                pass  # clients have nothing to say; reading notices when they go
        except WebSocketDisconnect:
            pass

    left = asyncio.ensure_future(client_left())
    try:
        if first is not None:
            await socket.send_json(first)
        while True:
            message = asyncio.ensure_future(subscription.get())
            done, _ = await asyncio.wait({message, left}, return_when=asyncio.FIRST_COMPLETED)
            if left in done:
                message.cancel()
                return
            out = await render(message.result())
            if out is not None:
                await socket.send_json(out)
    except WebSocketDisconnect:
        return
    finally:
        left.cancel()
