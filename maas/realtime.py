"""Live fan-out across API processes: PostgreSQL LISTEN/NOTIFY between them, asyncio queues inside one.

Writers announce a change in the transaction that makes it: pg_notify is delivered when that
transaction commits and dropped when it rolls back, so nobody hears of a change that did not
happen. Plan and booking changes are announced by triggers (migration 0002), whichever code
path wrote them; position batches by `announce_positions`, once per vehicle and batch.

Each process keeps one dedicated connection that LISTENs on `CHANNEL`, hands every message to
the subscribers of its topics, and keeps each vehicle's latest position in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import asyncpg
import msgspec

from maas.background import bounded, end_tasks
from maas.db import Connection
from maas.db import positions as position_repo
from maas.db.positions import Position
from maas.wire import Timestamp, iso

CHANNEL = "maas_events"
MAX_PAYLOAD_BYTES = 7900  # PostgreSQL refuses payloads of 8000 bytes and more
FLEET = "fleet"  # the topic of every message: what operators watch

log = logging.getLogger(__name__)
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def vehicle_topic(vehicle_id: uuid.UUID | str) -> str:
    return f"vehicle:{vehicle_id}"


def shift_topic(shift_id: uuid.UUID | str) -> str:
    return f"shift:{shift_id}"


def booking_topic(booking_id: uuid.UUID | str) -> str:
    return f"booking:{booking_id}"


def topics_of(message: dict[str, Any]) -> set[str]:
    """The topics a message is delivered to: fleet, and the vehicle, shift and booking it names."""
    topics = {FLEET}
    if message.get("vehicle_id"):
        topics.add(vehicle_topic(message["vehicle_id"]))
    if message.get("shift_id"):
        topics.add(shift_topic(message["shift_id"]))
    if message.get("booking_id"):
        topics.add(booking_topic(message["booking_id"]))
    return topics


def positions_messages(positions: Iterable[Position]) -> list[dict[str, Any]]:
    """One compact message per vehicle: how many positions arrived and the newest of them."""
    newest: dict[uuid.UUID, Position] = {}
    counts: dict[uuid.UUID, int] = {}
    for p in positions:
        counts[p.vehicle_id] = counts.get(p.vehicle_id, 0) + 1
        if p.vehicle_id not in newest or p.at >= newest[p.vehicle_id].at:
            newest[p.vehicle_id] = p
    return [
        {
            "type": "positions",
            "vehicle_id": str(v),
            "count": counts[v],
            "position": msgspec.to_builtins(position_out(p)),
        }
        for v, p in newest.items()
    ]


class PositionOut(msgspec.Struct, frozen=True, kw_only=True):
    """A vehicle's position as riders and operators see it, over HTTP and in socket messages alike."""

    lat: float
    lon: float
    at: Timestamp
    speed_mps: float | None
    heading_deg: float | None


def position_out(p: Position) -> PositionOut:
    return PositionOut(lat=p.lat, lon=p.lon, at=iso(p.at), speed_mps=p.speed_mps, heading_deg=p.heading_deg)


def position_in(vehicle_id: str, data: dict[str, Any]) -> Position:
    return msgspec.convert({**data, "vehicle_id": vehicle_id}, Position)


async def announce(conn: Connection, message: dict[str, Any]) -> None:
    """NOTIFY every process; inside a transaction the message goes out when it commits."""
    payload = _encode(message).decode()
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"a {message.get('type')} message of {len(payload)} bytes is too long to NOTIFY")
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)


async def announce_positions(conn: Connection, positions: Iterable[Position]) -> list[dict[str, Any]]:
    messages = positions_messages(positions)
    for message in messages:
        await announce(conn, message)
    return messages


class Subscription:
    """Messages of some topics, in order; when the reader falls behind the oldest are dropped."""

    def __init__(self, topics: Iterable[str], size: int) -> None:
        self.topics = frozenset(topics)
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=size)
        self.dropped = 0

    def put(self, message: dict[str, Any]) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(message)

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()


class Hub:
    """The process's end of the channel: one LISTEN connection, topic subscribers, latest positions."""

    def __init__(self, url: str, reconnect_s: float = 1.0) -> None:
        self.url = url
        self.reconnect_s = reconnect_s
        self.latest: dict[uuid.UUID, Position] = {}
        self._subscriptions: set[Subscription] = set()
        self._conn: Connection | None = None
        self._closing = False
        self._reconnect: asyncio.Task[None] | None = None
        self.received = 0

    async def start(self) -> None:
        await self._listen()

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self.url)
        await conn.add_listener(CHANNEL, self._on_notify)
        conn.add_termination_listener(self._on_lost)
        self._conn = conn
        # Whatever was announced while nobody listened is in the table.
        for p in await position_repo.list_latest(conn):
            self.note(p)

    def _on_lost(self, _: Connection) -> None:
        if not self._closing and self._reconnect is None:
            self._reconnect = asyncio.get_running_loop().create_task(self._relisten())

    async def _relisten(self) -> None:
        while not self._closing:
            try:
                await self._listen()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("LISTEN %s lost, retrying in %.0f s: %s", CHANNEL, self.reconnect_s, exc)
                await asyncio.sleep(self.reconnect_s)
                continue
            self._reconnect = None
            self.deliver({"type": "resync"})  # subscribers may have missed messages: they re-read
            return

    async def close(self) -> None:
        self._closing = True
        reconnect, self._reconnect = self._reconnect, None
        await end_tasks([reconnect], "LISTEN reconnection")
        if self._conn is not None:
            await bounded(self._conn.close(), "the LISTEN connection", self._conn.terminate)

    def _on_notify(self, _conn: Connection, _pid: int, _channel: str, payload: object) -> None:
        if not isinstance(payload, str):
            return
        try:
            message = _decode(payload)
        except msgspec.DecodeError:
            log.warning("ignored a malformed %s message: %.200s", CHANNEL, payload)
            return
        if isinstance(message, dict):
            self.deliver(message)

    def deliver(self, message: dict[str, Any]) -> None:
        """Hand a message to this process's subscribers (also used for a process's own writes)."""
        self.received += 1
        if message.get("type") == "positions":
            try:
                self.note(position_in(message["vehicle_id"], message["position"]))
            except (KeyError, TypeError, msgspec.ValidationError):
                log.warning("ignored a malformed positions message: %.200s", message)
                return
        topics = topics_of(message) if message.get("type") != "resync" else None
        for subscription in list(self._subscriptions):
            if topics is None or subscription.topics & topics:
                subscription.put(message)

    def note(self, position: Position) -> None:
        """Keep `position` if it is the vehicle's newest."""
        known = self.latest.get(position.vehicle_id)
        if known is None or position.at >= known.at:
            self.latest[position.vehicle_id] = position

    @contextlib.contextmanager
    def subscribe(self, *topics: str, size: int = 256) -> Iterator[Subscription]:
        subscription = Subscription(topics, size)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)


__all__ = [
    "CHANNEL",
    "FLEET",
    "Hub",
    "PositionOut",
    "Subscription",
    "announce",
    "announce_positions",
    "booking_topic",
    "position_out",
    "shift_topic",
    "vehicle_topic",
]
