"""`maas bench load` against a real `maas serve` (two workers): what hundreds of riders were told,
retried keys and twins included, is what the database holds."""

from __future__ import annotations

import asyncio
import io
import os
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from click.testing import CliRunner
from rich.console import Console

from maas.bench.load import Check, Load, LoadRun, bench_load, integrity, overloaded_stops, report
from maas.bench.server import running_server
from maas.cli import main
from maas.settings import Settings
from tests.maas.conftest import RAISED_LIMITS_ENV, Users, own_database


@pytest.fixture(scope="module")
def served(
    settings: Settings, network_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, Settings]]:
    """(URL, admin token, settings) of `maas serve` with two workers on a database of its own."""
    with own_database(settings, "maas_load", network_dir, tmp_path_factory.mktemp("load-data")) as own:
        env = {
            **os.environ,
            "MAAS_DATABASE_URL": own.database_url or "",
            "MAAS_JWT_SECRET": own.jwt_secret,
            "MAAS_NETWORK_DIR": str(network_dir),
            "MAAS_DATA_DIR": str(own.data_dir),
            **RAISED_LIMITS_ENV,
        }
        with running_server(env, workers=2, timeout_s=90) as url:
            _, admin = Users(own).make("admin")
            yield url, admin["Authorization"].removeprefix("Bearer "), own


def _fetch(settings: Settings, sql: str, *args: object) -> list[asyncpg.Record]:
    async def work() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(work())


def _checks(settings: Settings, result: LoadRun) -> list[Check]:
    async def work() -> list[Check]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await integrity(conn, result)
        finally:
            await conn.close()

    return asyncio.run(work())


def test_what_riders_booking_scarce_seats_at_once_were_told_is_what_the_database_holds(
    served: tuple[str, str, Settings], network_dir: Path
) -> None:
    url, token, own = served
    load = Load(
        attempts=300,
        clients=20,
        vehicles=2,
        seats=3,
        window_min=60,
        retry_share=0.2,
        lone=5,
        timeout_s=120,
        seed=3,
    )
    result = asyncio.run(bench_load(url, token, network_dir, load, Console(file=io.StringIO())))
    answers = result.loaded + result.lone
    assert len(result.loaded) == 300
    statuses = Counter(a.status for a in answers)
    assert set(statuses) <= {200, 201, 409}, statuses  # no error, no timeout, no other refusal
    assert statuses[201] > 0 and statuses[409] > statuses[201]  # scarce seats: most are refused
    retried = Counter(a.key for a in result.loaded)
    assert sum(1 for n in retried.values() if n == 2) == 60  # a fifth of the requests repeat a key

    stored = _fetch(
        own,
        "SELECT id, created_by, idempotency_key, status, shift_id, seated FROM bookings"
        " WHERE idempotency_key LIKE $1 || '-%'",
        result.run,
    )
    confirmed = {str(r["id"]): r for r in stored if r["status"] == "confirmed"}
    # One stored booking per 201, none behind a refusal, and no key booked twice.
    assert len(confirmed) == len(stored) == statuses[201]
    assert len({(r["created_by"], r["idempotency_key"]) for r in stored}) == len(stored)
    # Every booking a client was told of (201, or 200 for a retried key) is stored, under that key.
    told = [a for a in answers if a.status in (200, 201)]
    assert all(a.booking_id in confirmed and confirmed[a.booking_id]["idempotency_key"] == a.key for a in told)
    assert set(confirmed) == {a.booking_id for a in told}

    plans = _fetch(
        own,
        "SELECT p.shift_id, p.stops, v.seats FROM shift_plans p JOIN shifts s ON s.id = p.shift_id"
        " JOIN vehicles v ON v.id = s.vehicle_id WHERE p.shift_id = ANY($1::uuid[])",
        [uuid.UUID(s) for s in result.shifts],
    )
    planned: set[tuple[str, str]] = set()
    for plan in plans:
        on_board = 0
        for rid, kind in msgspec.json.decode(plan["stops"]):
            on_board += confirmed[rid]["seated"] if kind == "pickup" else -confirmed[rid]["seated"]
            assert 0 <= on_board <= plan["seats"], (plan["shift_id"], rid)
            planned.add((rid, kind))
    assert {(rid, kind) for rid in confirmed for kind in ("pickup", "dropoff")} == planned

    assert [c.found for c in _checks(own, result)] == [0] * 8
    assert report(result, _checks(own, result), Console(file=io.StringIO(), width=200))


def _row(output: str, what: str) -> list[str]:
    line = next(line for line in output.splitlines() if what in line)
    return [cell.strip() for cell in re.split(r"[│|]", line) if cell.strip()]


def test_bench_load_prints_answers_and_integrity_and_exits_0(
    served: tuple[str, str, Settings], network_dir: Path
) -> None:
    url, token, own = served
    before = len(_fetch(own, "SELECT id FROM bookings WHERE status = 'confirmed'"))
    args = ["bench", "load", str(network_dir), "--url", url, "--admin-token", token]
    args += ["--attempts", "60", "--clients", "6", "--vehicles", "1", "--seats", "2", "--lone", "3"]
    result = CliRunner().invoke(main, args, env={"COLUMNS": "200", "MAAS_DATABASE_URL": own.database_url or ""})
    assert result.exit_code == 0, result.output
    after = len(_fetch(own, "SELECT id FROM bookings WHERE status = 'confirmed'"))
    confirmed, refused = _row(result.output, "confirmed (201)"), _row(result.output, "refused, no seat (409)")
    assert int(confirmed[1]) == after - before > 0
    assert int(confirmed[1]) + int(refused[1]) + int(_row(result.output, "replays of a key")[1]) == 60
    assert _row(result.output, "errors (5xx, timeouts)")[1] == "0"
    assert "GET /health during the load" in result.output
    assert result.output.count(" ok ") == 8


def _run(**fields: Any) -> LoadRun:
    base: dict[str, Any] = {
        "run": "load-test",
        "shifts": [],
        "vehicles": 1,
        "seats": 2,
        "clients": 1,
        "loaded": [],
        "lone": [],
        "health_s": [0.001],
        "wall_s": 1.0,
    }
    return LoadRun(**{**base, **fields})


def test_a_failed_integrity_check_fails_the_benchmark() -> None:
    held = [Check(what="stops where a stored plan carries more riders than the vehicle has seats", found=0)]
    broken = [Check(what="lost confirmations: answered 2xx, not stored as confirmed", found=1)]
    out = io.StringIO()
    assert report(_run(), held, Console(file=out, width=200))
    assert not report(_run(), broken, Console(file=out, width=200))
    assert "FAILED" in out.getvalue()


def test_the_seat_check_counts_every_stop_with_more_riders_on_board_than_seats() -> None:
    riders = {"a": (1, 0), "b": (1, 0), "c": (1, 0), "w": (0, 1)}
    three = [("a", "pickup"), ("b", "pickup"), ("c", "pickup"), ("a", "dropoff"), ("b", "dropoff"), ("c", "dropoff")]
    assert overloaded_stops(three, riders, seats=3, places=0) == 0
    assert overloaded_stops(three, riders, seats=2, places=0) == 1  # after c boards
    # A wheelchair takes two seats' room; a rider dropped off without a pickup in the plan is on board from its start.
    assert overloaded_stops([("a", "pickup"), ("w", "pickup")], riders, seats=2, places=0) == 1
    assert overloaded_stops([("b", "pickup"), ("c", "pickup"), ("a", "dropoff")], riders, seats=2, places=0) == 1
