"""Stopping the service ends every background task and connection, within a bound, whatever they are doing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import asyncpg
import pytest

from maas import background
from maas.background import end_tasks, wake_or_timeout
from maas.db.database import Database
from maas.settings import Settings
from tests.maas.conftest import logged_by


@pytest.fixture
def logged() -> Iterator[list[logging.LogRecord]]:
    """What maas.background logs during the test."""
    with logged_by("maas.background") as records:
        yield records


async def _stops_when_cancelled(after_set_ticks: int) -> bool:
    """A loop that waits for an event, cancelled `after_set_ticks` loop turns after the event is set: whether it
    ends. (With `asyncio.wait_for(event.wait(), ...)` on Python 3.11 it goes on for 0, 1 and 2 turns: the
    cancellation is swallowed and stopping the service waited forever.)"""
    event = asyncio.Event()

    async def loop() -> None:
        while True:
            event.clear()
            await wake_or_timeout(event, 30)

    task = asyncio.create_task(loop())
    for _ in range(3):
        await asyncio.sleep(0)
    event.set()
    for _ in range(after_set_ticks):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    if not done:  # clean up what the test found running
        task.cancel()
        await asyncio.wait({task}, timeout=2)
    return bool(done)


def test_a_loop_waiting_for_an_event_stops_even_when_the_event_fires_as_it_is_cancelled() -> None:
    async def run() -> list[bool]:
        return [await _stops_when_cancelled(ticks) for ticks in range(6)]

    assert asyncio.run(run()) == [True] * 6


def test_waiting_for_an_event_says_whether_it_came_or_the_time_ran_out() -> None:
    async def run() -> tuple[bool, bool]:
        event = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, event.set)
        came = await wake_or_timeout(event, 30)
        quiet = await wake_or_timeout(asyncio.Event(), 0.01)
        return came, quiet

    assert asyncio.run(run()) == (True, False)


def test_a_task_that_catches_a_cancellation_is_cancelled_again_and_one_that_never_stops_is_left_and_logged(
    monkeypatch: pytest.MonkeyPatch, logged: list[logging.LogRecord]
) -> None:
    monkeypatch.setattr(background, "STOP_WITHIN_S", 0.2)

    async def catches_once() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # as a cancellation swallowed by a library looks
            await asyncio.sleep(30)
        await asyncio.sleep(30)

    async def never_stops(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                continue

    async def fails() -> None:
        raise RuntimeError("the job broke")

    async def run() -> tuple[bool, bool, bool]:
        stop = asyncio.Event()
        once = asyncio.create_task(catches_once())
        stubborn = asyncio.create_task(never_stops(stop))
        broken = asyncio.create_task(fails())
        await asyncio.sleep(0.01)
        await end_tasks([once, stubborn, broken, None], "the test's jobs")
        ended = once.done(), stubborn.done(), broken.done()
        stop.set()
        stubborn.cancel()
        await asyncio.wait({stubborn}, timeout=2)
        return ended

    assert asyncio.run(run()) == (True, False, True)
    messages = [record.getMessage() for record in logged]
    assert any("the test's jobs: 1 task(s) did not stop when cancelled twice" in m for m in messages), messages
    assert any("a background task had failed" in m for m in messages), messages


def test_closing_the_database_does_not_wait_forever_for_a_connection_still_held(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, logged: list[logging.LogRecord]
) -> None:
    monkeypatch.setattr(background, "STOP_WITHIN_S", 0.5)

    async def run() -> bool:
        db = await Database.open(settings, min_size=1, max_size=2)
        held = await db.pool.acquire()  # a request that never gives its connection back
        pid = held.get_server_pid()
        await db.close()
        # The server sees the connection go: its backend ends.
        watcher = await asyncpg.connect(settings.database_url)
        try:
            for _ in range(100):
                if not await watcher.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
                    return True
                await asyncio.sleep(0.05)
            return False
        finally:
            await watcher.close()

    assert asyncio.run(run()), "the held connection is closed by force"
    assert any("the database pool did not close" in record.getMessage() for record in logged)


def test_a_close_that_cannot_be_forced_is_given_up_after_the_bound_and_logged(
    monkeypatch: pytest.MonkeyPatch, logged: list[logging.LogRecord]
) -> None:
    monkeypatch.setattr(background, "STOP_WITHIN_S", 0.2)

    async def run() -> None:
        await background.bounded(asyncio.Event().wait(), "a worker that never ends")

    asyncio.run(run())  # returns instead of waiting forever
    assert any("a worker that never ends did not close within 0.2 s: left" in r.getMessage() for r in logged), [
        r.getMessage() for r in logged
    ]
