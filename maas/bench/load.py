"""`maas bench load`: hundreds of riders booking scarce seats at once, some retrying their
Idempotency-Key after the answer and some sending it twice at the same time; what they were told is
then checked against what the database holds (no seat overbooked, no key booked twice, no
confirmation lost)."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx
import msgspec
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from feeds.geo import haversine_m
from maas.bench.api import BenchError, HttpConnection, check_ready, http_request, make_user, put_on_shift, stops_of
from maas.db import Connection

Kind = Literal["once", "again", "twin"]  # sent once, again after its answer, or twice at the same time


MIN_RIDE_M = 2000.0  # the shortest ride asked for: longer than any service's walking distance


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    request: bytes  # POST /bookings, encoded once before the clock starts
    kind: Kind


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    status: int  # 0: no answer within the timeout, or the connection broke
    latency_s: float
    booking_id: str | None  # of a 2xx answer
    failure: str = ""  # why there was no answer


class LoadRun(msgspec.Struct, frozen=True, kw_only=True):
    """What the clients were told: the answers under load, the lone bookings after it, and GET /health
    latencies measured during the load (the references)."""

    run: str  # every key of the run starts with it
    shifts: list[str]
    vehicles: int
    seats: int
    clients: int
    loaded: list[Answer]
    lone: list[Answer]
    health_s: list[float]
    wall_s: float


class Load(msgspec.Struct, frozen=True, kw_only=True):
    attempts: int
    clients: int
    vehicles: int
    seats: int
    window_min: float
    retry_share: float
    lone: int
    timeout_s: float
    seed: int


class _Booked(msgspec.Struct):
    id: str


_booked = msgspec.json.Decoder(_Booked)


def attempts_of(load: Load, rng: random.Random, run: str, wishes: list[bytes]) -> list[Attempt]:
    """`load.attempts` requests in all: a `retry_share` of them repeat an earlier one's key, half after
    its answer and half at the same moment; the rest are sent once."""
    retries = min(round(load.attempts * load.retry_share), load.attempts // 2)
    firsts = load.attempts - retries
    kinds: list[Kind] = ["again" if k % 2 else "twin" for k in range(retries)] + ["once"] * (firsts - retries)
    rng.shuffle(kinds)
    return [Attempt(key=f"{run}-{k}", request=wishes[k], kind=kind) for k, kind in enumerate(kinds)]


async def _send(connection: HttpConnection, attempt: Attempt, timeout_s: float) -> Answer:
    began = time.perf_counter()
    try:
        status, body = await asyncio.wait_for(connection.exchange(attempt.request), timeout_s)
    except (TimeoutError, OSError, BenchError, asyncio.IncompleteReadError) as exc:
        connection.close()  # a new connection for the next attempt
        latency = time.perf_counter() - began
        failure = f"no answer within {timeout_s:g} s" if isinstance(exc, TimeoutError) else str(exc) or repr(exc)
        return Answer(key=attempt.key, status=0, latency_s=latency, booking_id=None, failure=failure)
    latency = time.perf_counter() - began
    booked = _booked.decode(body).id if 200 <= status < 300 else None
    return Answer(key=attempt.key, status=status, latency_s=latency, booking_id=booked)


class _Tally:
    """The answers so far, shown on the progress bar."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.task = progress.add_task("booking", total=total, confirmed=0, refused=0, other=0)
        self.answers: list[Answer] = []
        self.counts: Counter[str] = Counter()

    def add(self, answer: Answer) -> None:
        self.answers.append(answer)
        self.counts[_outcome(answer.status)] += 1
        self.progress.update(
            self.task,
            advance=1,
            confirmed=self.counts["confirmed"],
            refused=self.counts["refused"],
            other=len(self.answers) - self.counts["confirmed"] - self.counts["refused"],
        )


def _outcome(status: int) -> str:
    if status == 201:
        return "confirmed"
    if status == 200:
        return "replay"
    if status == 409:
        return "refused"
    if status == 429:
        return "limited"
    if 400 <= status < 500:
        return "other"
    return "error"


async def _crowd(url: str, load: Load, attempts: list[Attempt], tally: _Tally) -> tuple[float, list[float]]:
    """Send every attempt from `load.clients` clients, each on its own keep-alive connection (and a
    second one for twins), while one more client times GET /health: (wall seconds, health latencies)."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    following: Iterator[Attempt] = iter(attempts)
    health: list[float] = []
    done = asyncio.Event()

    async def client() -> None:
        main, spare = HttpConnection(host, port), HttpConnection(host, port)
        try:
            for attempt in following:
                if attempt.kind == "twin":
                    for answer in await asyncio.gather(
                        _send(main, attempt, load.timeout_s), _send(spare, attempt, load.timeout_s)
                    ):
                        tally.add(answer)
                    continue
                tally.add(await _send(main, attempt, load.timeout_s))
                if attempt.kind == "again":
                    tally.add(await _send(main, attempt, load.timeout_s))
        finally:
            main.close()
            spare.close()

    async def probe() -> None:
        connection = HttpConnection(host, port)
        request = http_request(url, "GET", "/health", {})
        try:
            while not done.is_set():
                began = time.perf_counter()
                await asyncio.wait_for(connection.send(request), load.timeout_s)
                health.append(time.perf_counter() - began)
                await asyncio.sleep(0.05)  # a few probes a second: the reference, not more load
        finally:
            connection.close()

    began = time.perf_counter()
    probing = asyncio.create_task(probe())
    try:
        await asyncio.gather(*(client() for _ in range(load.clients)))
    finally:
        done.set()
        await probing
    return time.perf_counter() - began, health


async def bench_load(url: str, admin_token: str, network_dir: Path, load: Load, console: Console) -> LoadRun:
    """Put `load.vehicles` vehicles with `load.seats` seats on shift for `load.window_min` minutes, then
    book random rides between the network's stops from `load.clients` clients at once, then `load.lone`
    more one at a time (the reference)."""
    rng = random.Random(load.seed)
    run = f"load-{uuid.uuid4().hex[:8]}"
    admin = {"Authorization": f"Bearer {admin_token}"}
    stops = stops_of(network_dir)
    if len(stops) < 2:
        raise BenchError(f"{network_dir} has fewer than two stops on its drive graph")
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        await check_ready(http, url)
        _, operator = await make_user(http, admin, "operator")
        now = dt.datetime.now(dt.UTC)
        hours = (now, now + dt.timedelta(minutes=load.window_min))
        shifts = [
            (await put_on_shift(http, admin, operator, rng.choice(stops), load.seats, hours)).shift_id
            for _ in range(load.vehicles)
        ]
        riders = [(await make_user(http, admin, "rider"))[1] for _ in range(load.clients)]

    def wish(k: int) -> bytes:
        (a_lat, a_lon), (b_lat, b_lon) = rng.sample(stops, 2)
        for _ in range(100):  # a ride worth a bus: a service walks riders shorter distances (rules.min_ride_m)
            if float(haversine_m(a_lat, a_lon, b_lat, b_lon)) >= MIN_RIDE_M:
                break
            (a_lat, a_lon), (b_lat, b_lon) = rng.sample(stops, 2)
        at = now + dt.timedelta(minutes=rng.uniform(5, max(5.0, load.window_min - 15)))
        body = {
            "origin": {"lat": a_lat, "lon": a_lon},
            "destination": {"lat": b_lat, "lon": b_lon},
            "seated": 1,
            "earliest_pickup": at.isoformat(),
        }
        headers = {**riders[k % len(riders)], "Idempotency-Key": f"{run}-{k}"}
        return http_request(url, "POST", "/bookings", headers, body)

    attempts = attempts_of(load, rng, run, [wish(k) for k in range(load.attempts)])
    lone = [
        Attempt(key=f"{run}-{load.attempts + k}", request=wish(load.attempts + k), kind="once")
        for k in range(load.lone)
    ]
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[confirmed]} confirmed, {task.fields[refused]} refused, {task.fields[other]} other"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        crowd = _Tally(progress, load.attempts)
        wall_s, health = await _crowd(url, load, attempts, crowd)
        alone = _Tally(progress, len(lone))
        progress.update(alone.task, description="one at a time")
        parts = urllib.parse.urlsplit(url)
        connection = HttpConnection(parts.hostname or "127.0.0.1", parts.port or 80)
        try:
            for attempt in lone:
                alone.add(await _send(connection, attempt, load.timeout_s))
        finally:
            connection.close()
    return LoadRun(
        run=run,
        shifts=shifts,
        vehicles=load.vehicles,
        seats=load.seats,
        clients=load.clients,
        loaded=crowd.answers,
        lone=alone.answers,
        health_s=health,
        wall_s=wall_s,
    )


# -- what the database holds ------------------------------------------------------------------------------

RUN_BOOKINGS = (
    "SELECT id, created_by, idempotency_key, request_hash, status, shift_id FROM bookings"
    " WHERE idempotency_key LIKE $1 || '-%'"
)
RUN_SHIFTS = (
    "SELECT s.id, v.seats, v.wheelchair_places, coalesce(p.stops, '[]'::jsonb) AS stops"
    " FROM shifts s JOIN vehicles v ON v.id = s.vehicle_id LEFT JOIN shift_plans p ON p.shift_id = s.id"
    " WHERE s.id = ANY($1::uuid[])"
)
RIDERS_OF = "SELECT id, seated, wheelchairs FROM bookings WHERE id = ANY($1::uuid[])"

_stops = msgspec.json.Decoder(list[tuple[str, str]])


class Check(msgspec.Struct, frozen=True, kw_only=True):
    what: str
    found: int  # 0 when the check holds


async def integrity(conn: Connection, result: LoadRun) -> list[Check]:
    """Read the run's bookings and its shifts' stored plans back and compare them with the answers."""
    stored = await conn.fetch(RUN_BOOKINGS, result.run)
    # The run's shifts, and any other a booking of the run went to (a server with other shifts on it).
    booked_on = {str(r["shift_id"]) for r in stored if r["shift_id"] is not None}
    shifts = await conn.fetch(RUN_SHIFTS, sorted(set(map(str, result.shifts)) | booked_on))
    plans = {str(r["id"]): _stops.decode(r["stops"]) for r in shifts}
    planned = {rid for stops in plans.values() for rid, _ in stops}
    riders = {str(r["id"]): (r["seated"], r["wheelchairs"]) for r in await conn.fetch(RIDERS_OF, list(planned))}
    over = sum(overloaded_stops(plans[str(r["id"])], riders, r["seats"], r["wheelchair_places"]) for r in shifts)
    confirmed = {str(r["id"]): r for r in stored if r["status"] == "confirmed"}
    unplanned = sum(
        1
        for bid, r in confirmed.items()
        if not {(bid, "pickup"), (bid, "dropoff")} <= set(map(tuple, plans.get(str(r["shift_id"]), [])))
    )
    answers = result.loaded + result.lone
    told = {a.booking_id for a in answers if a.booking_id is not None}
    by_key = {r["idempotency_key"]: str(r["id"]) for r in stored}
    keys = Counter((r["created_by"], r["idempotency_key"]) for r in stored)
    rides = Counter((r["created_by"], r["request_hash"]) for r in stored)
    created = sum(1 for a in answers if a.status == 201)
    return [
        Check(what="stops where a stored plan carries more riders than the vehicle has seats", found=over),
        Check(what="confirmed bookings missing from their shift's stored plan", found=unplanned),
        Check(what="duplicates: keys with more than one booking", found=sum(n - 1 for n in keys.values() if n > 1)),
        Check(what="duplicates: one rider's same ride booked twice", found=sum(n - 1 for n in rides.values() if n > 1)),
        Check(what="lost confirmations: answered 2xx, not stored as confirmed", found=len(told - set(confirmed))),
        Check(what="stored confirmed bookings no client was told of", found=len(set(confirmed) - told)),
        Check(
            what="replays answering another booking than their key's",
            found=sum(1 for a in answers if a.status == 200 and by_key.get(a.key) != a.booking_id),
        ),
        Check(what="201 answers minus stored bookings of the run", found=abs(created - len(stored))),
    ]


def overloaded_stops(stops: list[tuple[str, str]], riders: dict[str, tuple[int, int]], seats: int, places: int) -> int:
    """Stops after which more riders are on board than fit: seated riders above the seats, or room
    (a wheelchair takes two seats' room) above seats + 2 x wheelchair places. Riders whose pickup is
    not in the plan are on board from its start."""
    picked = {rid for rid, kind in stops if kind == "pickup"}
    seated = sum(riders.get(rid, (0, 0))[0] for rid, kind in stops if kind == "dropoff" and rid not in picked)
    chairs = sum(riders.get(rid, (0, 0))[1] for rid, kind in stops if kind == "dropoff" and rid not in picked)
    over = int(seated > seats or seated + 2 * chairs > seats + 2 * places)
    for rid, kind in stops:
        s, w = riders.get(rid, (0, 0))
        sign = 1 if kind == "pickup" else -1 if kind == "dropoff" else 0
        seated, chairs = seated + sign * s, chairs + sign * w
        over += int(seated > seats or seated + 2 * chairs > seats + 2 * places)
    return over


# -- the tables --------------------------------------------------------------------------------------------


def _ms(latencies: list[float]) -> list[str]:
    if not latencies:
        return ["-", "-", "-"]
    return [f"{x:.0f}" for x in np.percentile(np.asarray(latencies) * 1000, [50, 95, 99])]


def _p(latencies: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(latencies), q)) if latencies else float("nan")


def report(result: LoadRun, checks: list[Check], console: Console) -> bool:
    """Print the answers with their latencies, the references and the integrity checks; whether every
    check held and no request failed."""
    table = Table(
        title=(
            f"{len(result.loaded):,} booking requests from {result.clients} clients at once on {result.vehicles}"
            f" vehicles x {result.seats} seats, in {result.wall_s:.1f} s"
        )
    )
    for col in ("answer", "requests", "share", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(col, justify="left" if col == "answer" else "right")
    names = {
        "confirmed": "confirmed (201)",
        "replay": "replays of a key (200)",
        "refused": "refused, no seat (409)",
        "limited": "rate limited (429)",
        "other": "other 4xx",
        "error": "errors (5xx, timeouts): must be 0",
    }
    groups: dict[str, list[float]] = {name: [] for name in names}
    for answer in result.loaded:
        groups[_outcome(answer.status)].append(answer.latency_s)
    total = max(1, len(result.loaded))
    for name, label in names.items():
        table.add_row(label, f"{len(groups[name]):,}", f"{len(groups[name]) / total:.1%}", *_ms(groups[name]))
    everything = [a.latency_s for a in result.loaded]
    table.add_row("every booking request", f"{len(everything):,}", "100.0%", *_ms(everything), end_section=True)
    lone = [a.latency_s for a in result.lone]
    table.add_row("reference: GET /health during the load", f"{len(result.health_s):,}", "", *_ms(result.health_s))
    table.add_row("reference: bookings one at a time, after the load", f"{len(lone):,}", "", *_ms(lone))
    console.print(table)
    refusals = groups["refused"]
    console.print(
        f"refusals under load: p50 {1000 * _p(refusals, 50):.0f} ms, p95 {1000 * _p(refusals, 95):.0f} ms ="
        f" {_p(refusals, 95) / _p(result.health_s, 95):.1f} x GET /health's p95 under the same load,"
        f" {_p(refusals, 95) / _p(lone, 50):.1f} x a lone booking's p50",
        highlight=False,
    )
    failures = Counter(
        a.failure or f"HTTP {a.status}" for a in result.loaded + result.lone if _outcome(a.status) == "error"
    )
    for failure, count in failures.most_common(5):
        console.print(f"[bold red]error[/] x {count}: {failure}", highlight=False)
    held = Table(title="integrity, read back from the database")
    held.add_column("check")
    held.add_column("found", justify="right")
    held.add_column("result")
    for check in checks:
        held.add_row(check.what, str(check.found), "ok" if check.found == 0 else "[bold red]FAILED[/]")
    console.print(held)
    return all(c.found == 0 for c in checks) and not failures
