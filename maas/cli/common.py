"""What the commands share: the error console, failing with a clear message, tables, ISO times, the database."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
import threading
import zoneinfo
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import TYPE_CHECKING, NoReturn, TypeVar, Unpack

import msgspec
from rich.console import Console

from maas.settings import Settings, SettingsError, SettingsOverrides

if TYPE_CHECKING:
    from maas.db import Connection

T = TypeVar("T")

# Progress, summaries and errors go to stderr, so that stdout carries only the answer (JSON, tables).
err_console = Console(stderr=True, soft_wrap=True)
json_encoder = msgspec.json.Encoder()


def fail(message: str) -> NoReturn:
    """Print `error: message` and exit with status 2 (a usage or input error, never a traceback)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(2)


def exit_on_termination() -> None:
    """SIGTERM and SIGHUP end the command as Ctrl-C does, through its cleanup (finally blocks and exit
    handlers, which let go of the embedded PostgreSQL), instead of killing it; other handlers stay."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _exit_by_signal)


def _exit_by_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def table_console() -> Console:
    """Stdout for tables; piped output gets a wide fixed width so that tables do not wrap."""
    return Console() if sys.stdout.isatty() else Console(width=140)


def parse_time(text: str, timezone: str) -> dt.datetime:
    """ISO 8601; a time without an offset is local to the network's time zone."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        fail(f"{text!r}: give an ISO 8601 time such as 2021-06-15T07:30 or 2021-06-15T07:30+02:00")
    if value.tzinfo is None:
        value = value.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
    return value


def load_settings(**overrides: Unpack[SettingsOverrides]) -> Settings:
    """The settings of the process environment, the command's options overriding it; a bad variable fails."""
    try:
        return Settings.from_env(os.environ, **overrides)
    except SettingsError as exc:
        fail(str(exc))


def with_connection(settings: Settings, work: Callable[[Connection], Awaitable[T]]) -> T:
    """Run `work` on a connection to the settings' database; a database that cannot be opened fails."""
    from maas.db.database import Database, DatabaseError

    async def run() -> T:
        db = await Database.open(settings, min_size=1, max_size=2)
        try:
            async with db.pool.acquire() as conn:
                return await work(conn)
        finally:
            await db.close()

    try:
        return asyncio.run(run())
    except DatabaseError as exc:
        fail(str(exc))
