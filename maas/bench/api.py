"""`maas bench api`: booking throughput and latency, and position ingest, against a running server."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import statistics
import time
import urllib.parse
import uuid
from pathlib import Path

import httpx
import msgspec
import numpy as np
from rich.console import Console
from rich.table import Table

from maas.errors import MaasError
from routing.network import load_network


class BenchError(MaasError):
    """The server cannot be benchmarked; the message says why."""


KEEP_ALIVE_S = 4.0  # below uvicorn's 5 s keep-alive timeout: an older idle connection is not reused


class HttpConnection:
    """One keep-alive HTTP/1.1 connection that sends pre-encoded requests.

    The timed phases use this instead of httpx: on a machine where the load generator shares the
    cores with the server and PostgreSQL, httpx's per-request work (about a core at 300 requests/s)
    would be measured as the server's. Reference and measured requests go through the same code."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used_at = time.monotonic()

    async def send(self, request: bytes) -> int:
        """Send one whole request; return the status once the whole answer has been read."""
        return (await self.exchange(request))[0]

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send one whole request; (status, body) once the whole answer has been read."""
        # A connection idle for a while may be closed by the server just as the request goes out: a new one.
        idle = time.monotonic() - self.used_at > KEEP_ALIVE_S
        if self.reader is None or self.reader.at_eof() or idle:
            self.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.writer is not None
        self.writer.write(request)
        status_line = await self.reader.readline()
        if not status_line:
            raise BenchError(f"the server at {self.host}:{self.port} closed the connection")
        status = int(status_line.split()[1])
        length, chunked, close = 0, False, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        body = b""
        if chunked:
            chunks = []
            while (size := int((await self.reader.readline()).split(b";")[0], 16)) > 0:
                chunks.append((await self.reader.readexactly(size + 2))[:-2])
            await self.reader.readline()
            body = b"".join(chunks)
        elif length:
            body = await self.reader.readexactly(length)
        if close:
            self.close()
        self.used_at = time.monotonic()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def http_request(url: str, method: str, path: str, headers: dict[str, str], body: object = None) -> bytes:
    """The bytes of one HTTP/1.1 request with a JSON body."""
    host = urllib.parse.urlsplit(url).netloc
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    payload = b""
    if body is not None:
        payload = msgspec.json.encode(body)
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def _timed(url: str, concurrency: int, requests: list[bytes]) -> tuple[float, list[float], list[int]]:
    """Send `requests` over `concurrency` keep-alive connections, one at a time on each:
    (wall seconds, latencies, statuses)."""
    parts = urllib.parse.urlsplit(url)
    calls = len(requests)
    latencies: list[float] = [0.0] * calls
    statuses: list[int] = [0] * calls
    connections = [HttpConnection(parts.hostname or "127.0.0.1", parts.port or 80) for _ in range(concurrency)]
    for connection in connections:  # connect before the clock starts
        connection.reader, connection.writer = await asyncio.open_connection(connection.host, connection.port)
    following = iter(range(calls))

    async def worker(connection: HttpConnection) -> None:
        for k in following:
            start = time.perf_counter()
            statuses[k] = await connection.send(requests[k])
            latencies[k] = time.perf_counter() - start

    began = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in connections))
    finally:
        for connection in connections:
            connection.close()
    return time.perf_counter() - began, latencies, statuses


def stops_of(network_dir: Path) -> list[tuple[float, float]]:
    """Bus stops on the drive graph: where riders of the benchmark get on and off."""
    network = load_network(network_dir)
    drive = network.streets["drive"]
    nodes = sorted({int(n) for n in np.asarray(network.snaps["drive"].node) if n >= 0})
    return [(float(drive.node_lat[n]), float(drive.node_lon[n])) for n in nodes]


async def check_ready(http: httpx.AsyncClient, url: str) -> None:
    if (await http.get("/ready")).status_code != 200:
        raise BenchError(f"{url} is not ready (GET /ready)")


async def make_user(http: httpx.AsyncClient, admin: dict[str, str], role: str) -> tuple[str, dict[str, str]]:
    """A new user of `role` made with the admin's headers: (id, their Authorization header)."""
    response = await http.post("/admin/users", headers=admin, json={"name": f"bench {role}", "role": role})
    if response.status_code != 201:
        raise BenchError(f"cannot create a {role} with the admin token: {response.text}")
    body = response.json()
    return body["user"]["id"], {"Authorization": f"Bearer {body['token']}"}


class OnShift(msgspec.Struct, frozen=True, kw_only=True):
    """A vehicle of the benchmark on shift: the shift, its driver's headers and the depot."""

    shift_id: str
    driver: dict[str, str]
    lat: float
    lon: float


async def put_on_shift(
    http: httpx.AsyncClient,
    admin: dict[str, str],
    operator: dict[str, str],
    depot: tuple[float, float],
    seats: int,
    hours: tuple[dt.datetime, dt.datetime],
) -> OnShift:
    """A new vehicle with one wheelchair place at `depot`, on shift with a new driver from hours[0] to hours[1]."""
    lat, lon = depot
    vehicle = await http.post(
        "/vehicles",
        headers=operator,
        json={
            "name": f"bench-{uuid.uuid4().hex[:8]}",
            "seats": seats,
            "wheelchair_places": 1,
            "depot": {"lat": lat, "lon": lon},
        },
    )
    if vehicle.status_code != 201:
        raise BenchError(f"cannot add a vehicle: {vehicle.text}")
    driver_id, driver = await make_user(http, admin, "driver")
    shift = await http.post(
        "/shifts",
        headers=operator,
        json={
            "vehicle_id": vehicle.json()["id"],
            "driver_id": driver_id,
            "starts_at": hours[0].isoformat(),
            "ends_at": hours[1].isoformat(),
        },
    )
    if shift.status_code != 201:
        raise BenchError(f"cannot put a vehicle on shift: {shift.text}")
    return OnShift(shift_id=shift.json()["id"], driver=driver, lat=lat, lon=lon)


async def bench_api(
    url: str,
    admin_token: str,
    network_dir: Path,
    bookings: int,
    vehicles: int,
    positions: int,
    concurrency: int,
    seed: int,
    console: Console,
) -> None:
    rng = random.Random(seed)
    admin = {"Authorization": f"Bearer {admin_token}"}
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        await check_ready(http, url)
        _, operator = await make_user(http, admin, "operator")
        riders = [(await make_user(http, admin, "rider"))[1] for _ in range(min(20, bookings))]
        stops = stops_of(network_dir)
        now = dt.datetime.now(dt.UTC)
        hours = (now, now + dt.timedelta(hours=12))
        drivers = [
            (s.shift_id, s.driver, s.lat, s.lon)
            for s in [await put_on_shift(http, admin, operator, rng.choice(stops), 8, hours) for _ in range(vehicles)]
        ]

        health = await _timed(url, concurrency, [http_request(url, "GET", "/health", {})] * bookings)

        def wish(k: int) -> dict[str, object]:
            (a_lat, a_lon), (b_lat, b_lon) = rng.sample(stops, 2)
            at = now + dt.timedelta(minutes=rng.uniform(20, 11 * 60))
            return {
                "origin": {"lat": a_lat, "lon": a_lon},
                "destination": {"lat": b_lat, "lon": b_lon},
                "seated": rng.choice([1, 1, 2]),
                "earliest_pickup": at.isoformat(),
            }

        wishes = [wish(k) for k in range(bookings)]
        booked = await _timed(
            url,
            concurrency,
            [
                http_request(
                    url,
                    "POST",
                    "/bookings",
                    {**riders[k % len(riders)], "Idempotency-Key": f"bench-{seed}-{k}"},
                    wishes[k],
                )
                for k in range(bookings)
            ],
        )

        ingest = None
        if positions > 0 and drivers:
            signed = []
            for shift_id, driver, lat, lon in drivers:
                response = await http.post(f"/driver/shifts/{shift_id}/sign-in", headers=driver)
                if response.status_code in (200, 201):
                    signed.append((driver, lat, lon))
            if signed:
                batch = 100
                calls = max(1, positions // batch)

                def positions_of(k: int) -> bytes:
                    driver, lat, lon = signed[k % len(signed)]
                    at = dt.datetime.now(dt.UTC)
                    # One fix per second over the last `batch` seconds (the server refuses future times).
                    return http_request(
                        url,
                        "POST",
                        "/driver/positions",
                        driver,
                        {
                            "positions": [
                                {
                                    "lat": lat + 1e-5 * i,
                                    "lon": lon,
                                    "at": (at - dt.timedelta(seconds=batch - i)).isoformat(),
                                    "speed_mps": 8.0,
                                }
                                for i in range(batch)
                            ]
                        },
                    )

                ingest = (batch, await _timed(url, concurrency, [positions_of(k) for k in range(calls)]))

    table = Table(title=f"API at {url}: {vehicles} vehicles on shift, {concurrency} requests at a time")
    for col in ("what", "requests", "ok", "per second", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(col, justify="left" if col == "what" else "right")

    def row(name: str, result: tuple[float, list[float], list[int]], ok_codes: set[int], per: int = 1) -> float:
        wall, latencies, statuses = result
        ok = sum(1 for s in statuses if s in ok_codes)
        ms = np.percentile(np.asarray(latencies) * 1000, [50, 95, 99])
        rate = ok * per / wall
        table.add_row(name, str(len(statuses)), str(ok), f"{rate:,.0f}", *(f"{x:.1f}" for x in ms))
        return rate

    confirmed = row("bookings confirmed (POST /bookings)", booked, {201})
    refused = sum(1 for s in booked[2] if s == 409)
    other = [s for s in booked[2] if s not in (201, 409)]
    reference = row("reference: GET /health", health, {200})
    if ingest is not None:
        batch, result = ingest
        row(f"positions ingested ({batch} per POST /driver/positions)", result, {200, 201, 202}, per=batch)
    console.print(table)
    console.print(
        f"bookings: {refused} refused (409, no vehicle fits), {len(other)} other answers "
        f"{sorted(set(other))}; confirmed bookings per second = {confirmed / reference:.3f} x GET /health's "
        f"rate; mean booking latency {1000 * statistics.fmean(booked[1]):.1f} ms"
    )
