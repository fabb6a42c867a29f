"""The embedded PostgreSQL (pgserver) of a data folder, shared by the `maas` processes that use it.

Every process that uses the server is listed in a users file next to it (its pid and start time),
read and written under a file lock. A process leaves the list when it exits (normally, by an
exception, Ctrl-C, or SIGTERM through the command line's handler); the last one to leave stops the
server. A user that died without leaving (SIGKILL) is dropped the next time the list is read, so it
never keeps the server running for the others.

pgserver counts its users too, but never forgets one that died without its exit handler, so a
single killed process would keep the server running for good: it is started with cleanup_mode=None
and stopped here instead.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import psutil

if TYPE_CHECKING:
    from pgserver import PostgresServer

SERVER_FOLDER = "postgres"  # the server's PGDATA inside the data folder
USERS_FILE = "postgres-users.json"  # next to PGDATA: initdb wants an empty folder
LOCK_FILE = "postgres-users.lock"
STOP_TIMEOUT_S = 60

_logger = logging.getLogger(__name__)


class ServerUser(msgspec.Struct, frozen=True, kw_only=True):
    """A process using the server; its start time tells it apart from a later process with its pid."""

    pid: int
    started: float


@dataclass(frozen=True)
class _Joined:
    pid: int  # the process that joined: a forked child inherits this record but is no user
    data_dir: Path
    server: PostgresServer


_users_decoder = msgspec.json.Decoder(list[ServerUser])
_users_encoder = msgspec.json.Encoder()
_joined: dict[Path, _Joined] = {}


def server_folder(data_dir: Path) -> Path:
    """The embedded server's PGDATA for `data_dir`."""
    return (data_dir / SERVER_FOLDER).resolve()


def join(data_dir: Path) -> str:
    """Start the embedded server of `data_dir`, or use the one another process runs there, and
    return its URL; this process stays one of its users until `leave` or its exit."""
    folder = server_folder(data_dir)
    known = _joined.get(folder)
    if known is not None and known.pid == os.getpid():
        return str(known.server.get_uri())
    import pgserver

    folder.mkdir(parents=True, exist_ok=True)
    me = _this_process()
    with _locked(data_dir):
        users = [u for u in read_users(data_dir) if _is_alive(u) and u.pid != me.pid]
        _write_users(data_dir, [*users, me])
        try:
            # The constructor, not get_server: get_server hands back this process's earlier handle
            # even when the server was stopped since; the constructor starts it when it is down.
            server = pgserver.PostgresServer(folder, cleanup_mode=None)
        except BaseException:
            _write_users(data_dir, users)
            raise
    if not _joined:
        atexit.register(_leave_all)
    _joined[folder] = _Joined(pid=me.pid, data_dir=data_dir, server=server)
    return str(server.get_uri())


def leave(data_dir: Path) -> None:
    """This process no longer uses the embedded server of `data_dir`; the last user stops it."""
    joined = _joined.pop(server_folder(data_dir), None)
    if joined is None or joined.pid != os.getpid():
        return
    with _locked(data_dir):
        users = [u for u in read_users(data_dir) if u.pid != joined.pid and _is_alive(u)]
        _write_users(data_dir, users)
        if not users:
            _stop(joined.server)


def read_users(data_dir: Path) -> list[ServerUser]:
    """The processes listed as users of the embedded server of `data_dir` (dead ones included)."""
    try:
        return _users_decoder.decode((data_dir / USERS_FILE).read_bytes())
    except FileNotFoundError:
        return []
    except msgspec.DecodeError:
        _logger.warning("%s: unreadable, starting a new list of users", data_dir / USERS_FILE)
        return []


def _leave_all() -> None:
    for joined in list(_joined.values()):
        leave(joined.data_dir)


def _stop(server: PostgresServer) -> None:
    # Fast shutdown: open sessions are ended (they belong to processes that have left) and the
    # server is down when pg_ctl returns, so a process waiting for the lock starts a fresh one.
    from pgserver._commands import POSTGRES_BIN_PATH

    folder = Path(server.pgdata)
    if not (folder / "postmaster.pid").exists():
        return
    try:
        subprocess.run(
            [
                str(POSTGRES_BIN_PATH / "pg_ctl"),
                "-D",
                str(folder),
                "-m",
                "fast",
                "-w",
                "-t",
                str(STOP_TIMEOUT_S),
                "stop",
            ],
            check=True,
            capture_output=True,
            # pgserver runs the server as an unprivileged user when started as root; pg_ctl refuses root.
            user=server.system_user,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        _logger.warning("could not stop the embedded PostgreSQL in %s: %s", folder, exc)


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_users(data_dir: Path, users: list[ServerUser]) -> None:
    path = data_dir / USERS_FILE
    partial = path.with_suffix(".partial")
    partial.write_bytes(_users_encoder.encode(users))
    partial.replace(path)


def _this_process() -> ServerUser:
    return ServerUser(pid=os.getpid(), started=psutil.Process().create_time())


def _is_alive(user: ServerUser) -> bool:
    try:
        process = psutil.Process(user.pid)
        return abs(process.create_time() - user.started) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
