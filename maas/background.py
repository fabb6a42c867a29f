"""Background tasks that end when the service stops, within a bound.

A service that does not stop is worse than one that stops untidily: the process manager (or a test
run) waits for it forever. Background loops wait with `wake_or_timeout` and are ended with
`end_tasks`, which cancels once more a task that has not ended and gives up, saying so, after a
bound; connections and worker processes are closed with a bound too (`bounded`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

STOP_WITHIN_S = 5.0  # how long a stopping service waits for its background tasks, per cancellation


async def wake_or_timeout(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until `event` is set or `timeout_s` has passed; whether it is set.

    Unlike `asyncio.wait_for(event.wait(), ...)` on Python 3.11, a cancellation that arrives as the
    event is set is never swallowed, so the loop that waits here can always be stopped.
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=max(0.0, timeout_s))
    finally:
        waiter.cancel()
    return event.is_set()


async def end_tasks(tasks: Iterable[asyncio.Future[Any] | None], what: str) -> None:
    """Cancel `tasks` and wait until they have ended, at most 2 x STOP_WITHIN_S.

    Each task has STOP_WITHIN_S to finish what it does on cancellation (record that a build was
    interrupted, release a lock); one still running then is cancelled once more (a cancellation
    may have been swallowed) and, if still running after that, left and logged, so that stopping
    the service never hangs on it. A task's own failure is logged.
    """
    ending = [task for task in tasks if task is not None]
    pending = set(ending)
    for _ in range(2):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=STOP_WITHIN_S)
    if pending:
        log.error("%s: %d task(s) did not stop when cancelled twice, left running", what, len(pending))
    for task in ending:
        if task.done() and not task.cancelled() and (error := task.exception()) is not None:
            log.error("%s: a background task had failed", what, exc_info=error)


async def bounded(closing: Awaitable[object], what: str, force: Callable[[], object] | None = None) -> None:
    """Await `closing` (a graceful close) for at most STOP_WITHIN_S; then `force` it (terminate), if
    there is a way to, else leave it (logged)."""
    try:
        await asyncio.wait_for(closing, STOP_WITHIN_S)
    except TimeoutError:
        outcome = "closed by force" if force is not None else "left"
        log.error("%s did not close within %g s: %s", what, STOP_WITHIN_S, outcome)
        if force is not None:
            force()
