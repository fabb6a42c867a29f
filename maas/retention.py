"""The retention job: personal data is kept only as long as the service definition's rules say.

Every `rules.retention.every_s` one process of the database (it holds the RETENTION advisory lock;
the others skip that run) applies `rules.retention`:

- vehicles' GPS fixes older than `positions_days` leave the trail and become hourly aggregates per
  vehicle (fixes, first and last time, mean position, distance driven within the hour); a latest
  position that old is dropped too;
- `personal_days` after a rider's last ride (or journey, or sign-up without either) their name becomes
  a pseudonym and their phone number is removed; the same for a phone caller's bookings and journeys
  (booked by an operator), told apart by the caller's number, `personal_days` after that number's last
  ride or journey, and in those bookings' audit entries;
- offers and itineraries (the places a rider asked for) go a day after they expire.

What stays: bookings with their places and times (the fleet's record; an erasure on request coarsens
the places, maas/privacy.py), booking and journey events, ride delays, and the audit log's actions
(which never hold a phone number: migration 0029). Each step works in batches of BATCH rows, each
its own transaction; a second run finds nothing to do. A run is recorded in `retention_runs`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable

import msgspec

from maas.background import end_tasks
from maas.db import Connection, areas, locks
from maas.db import privacy as repo
from maas.db.database import Database
from maas.model import Retention, ServiceRules

log = logging.getLogger(__name__)

BATCH = 5000  # rows per statement and transaction
EXPIRED_KEPT = dt.timedelta(days=1)  # as maas.db.offers.EXPIRED_KEPT: booking a late offer says "expired"
RULES_RECHECK_S = 60.0  # the loop wakes this often to read the rules and see whether a run is due
PERIOD_SHARE = 0.9  # a run is skipped when some process started one within this share of the period

Progress = Callable[[str, int], None]  # (step, rows so far), after every batch


class RetentionReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one run removed or pseudonymised (a dry run: what it would)."""

    dry_run: bool
    positions_before: dt.datetime  # fixes older than this left the trail
    personal_before: dt.datetime  # names and numbers of riders and callers whose last ride ended before this
    positions: int = 0  # GPS fixes removed from the trail
    position_hours: int = 0  # hourly aggregates written (or extended) from them
    latest_positions: int = 0  # vehicles' latest positions removed
    riders: int = 0  # riders' names and phone numbers pseudonymised
    phone_bookings: int = 0  # phone bookings whose caller's name and number were pseudonymised
    audit_entries: int = 0  # audit entries of those phone bookings pseudonymised
    caller_journeys: int = 0  # journeys booked for phone callers whose name and number were pseudonymised
    offers: int = 0  # expired offers removed
    itineraries: int = 0  # expired itineraries removed

    def total(self) -> int:
        return (
            self.positions
            + self.latest_positions
            + self.riders
            + self.phone_bookings
            + self.audit_entries
            + self.caller_journeys
            + self.offers
            + self.itineraries
        )


async def _batches(conn: Connection, step: Callable[[], Awaitable[int]], name: str, progress: Progress | None) -> int:
    """Run `step` (one batch in its own transaction, returning rows changed) until it changes nothing."""
    total = 0
    while True:
        async with conn.transaction():
            done = await step()
        total += done
        if progress is not None:
            progress(name, total)
        if done == 0:
            return total


async def apply_retention(
    conn: Connection,
    retention: Retention,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RetentionReport:
    """Apply `retention` as of `now` on `conn` (outside a transaction: each batch commits)."""
    now = now or dt.datetime.now(dt.UTC)
    # Whole hours only, so that each hour's aggregate is made of all its fixes at once.
    positions_before = (now.astimezone(dt.UTC) - dt.timedelta(days=retention.positions_days)).replace(
        minute=0, second=0, microsecond=0
    )
    personal_before = now - dt.timedelta(days=retention.personal_days)
    expired_before = now - EXPIRED_KEPT
    report = RetentionReport(dry_run=dry_run, positions_before=positions_before, personal_before=personal_before)
    if dry_run:
        positions, hours = await repo.count_old_positions(conn, positions_before)
        bookings, entries = await repo.count_due_callers(conn, personal_before)
        return msgspec.structs.replace(
            report,
            positions=positions,
            position_hours=hours,
            latest_positions=await repo.count_old_latest_positions(conn, positions_before),
            riders=await repo.count_due_riders(conn, personal_before),
            phone_bookings=bookings,
            audit_entries=entries,
            caller_journeys=await repo.count_due_caller_journeys(conn, personal_before),
            offers=await repo.count_expired(conn, "offers", expired_before),
            itineraries=await repo.count_expired(conn, "itineraries", expired_before),
        )
    hours = entries = 0

    async def positions_batch() -> int:
        nonlocal hours
        removed, written = await repo.aggregate_positions(conn, positions_before, BATCH)
        hours += written
        return removed

    async def callers_batch() -> int:
        nonlocal entries
        bookings, audited = await repo.pseudonymise_callers(conn, personal_before, BATCH)
        entries += audited
        return bookings

    positions = await _batches(conn, positions_batch, "positions", progress)
    riders = await _batches(conn, lambda: repo.pseudonymise_riders(conn, personal_before, BATCH), "riders", progress)
    # The journeys after the bookings: a number due for both stays due once its bookings are done.
    phone_bookings = await _batches(conn, callers_batch, "phone bookings", progress)
    caller_journeys = await _batches(
        conn, lambda: repo.pseudonymise_caller_journeys(conn, personal_before, BATCH), "caller journeys", progress
    )
    offers = await _batches(
        conn, lambda: repo.forget_expired(conn, "offers", expired_before, BATCH), "offers", progress
    )
    itineraries = await _batches(
        conn, lambda: repo.forget_expired(conn, "itineraries", expired_before, BATCH), "itineraries", progress
    )
    return msgspec.structs.replace(
        report,
        positions=positions,
        position_hours=hours,
        latest_positions=await repo.forget_latest_positions(conn, positions_before),
        riders=riders,
        phone_bookings=phone_bookings,
        audit_entries=entries,
        caller_journeys=caller_journeys,
        offers=offers,
        itineraries=itineraries,
    )


async def rules_in_force(conn: Connection) -> ServiceRules:
    definition = await areas.find_current_definition(conn)
    return definition.rules if definition is not None else ServiceRules()


async def run_retention(
    conn: Connection,
    dry_run: bool = False,
    since: float | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> RetentionReport | None:
    """One run of the rules in force on `conn`, recorded unless a dry run; None when another process
    runs the job, or (with `since`, epoch seconds) some process started a run since then."""
    if not await locks.try_hold(conn, locks.RETENTION):
        return None
    try:
        if since is not None:
            last = await repo.last_run(conn)
            if last is not None and last.timestamp() >= since:
                return None
        started = dt.datetime.now(dt.UTC)
        rules = await rules_in_force(conn)
        report = await apply_retention(conn, rules.retention, now=now, dry_run=dry_run, progress=progress)
        if not dry_run:
            await repo.record_run(conn, started, report)
        return report
    finally:
        await locks.release(conn, locks.RETENTION)


class RetentionJob:
    """Runs the retention job in the background of one process (maas/app.py starts it)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await end_tasks([task], "retention")

    async def _loop(self) -> None:
        while True:
            every = 0
            try:
                async with self.db.pool.acquire() as conn:
                    every = (await rules_in_force(conn)).retention.every_s
                    if every > 0:
                        report = await run_retention(conn, since=time.time() - PERIOD_SHARE * every)
                        if report is not None and report.total():
                            log.info("retention: %s", msgspec.json.encode(report).decode())
            except Exception:
                log.exception("the retention job failed; it runs again later")
            await asyncio.sleep(min(every, RULES_RECHECK_S) if every > 0 else RULES_RECHECK_S)
