"""Validating an uploaded feed in a child process with its own memory and CPU limits.

A hostile upload (a zip bomb, a feed too large to check) then costs a report saying what could not
be done, never the worker: the worker only waits, its event loop free for other requests, and kills
the child when the request ends first or the child overstays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import sys
import tempfile
from pathlib import Path

import msgspec

from feeds.model import ValidationReport

log = logging.getLogger(__name__)

_decode_report = msgspec.json.Decoder(ValidationReport).decode
# Threads each reserve address space that RLIMIT_AS counts; validating needs none of them.
_CHILD_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "2",
}
_PR_SET_PDEATHSIG = 1


class CheckLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What validating one upload may use: address space of its process, CPU seconds, and wall seconds."""

    memory_mb: int
    cpu_s: int

    @property
    def wall_s(self) -> float:
        # CPU time accrues slower than wall time on a busy machine; past this the child is killed anyway.
        return 3.0 * self.cpu_s + 10.0


async def validate_upload(content: bytes, feed_id: str, name: str, limits: CheckLimits) -> ValidationReport:
    """The validation report of an uploaded zip, checked in a child process within `limits`; whatever the
    bytes are, a report and never an exception."""
    with tempfile.TemporaryDirectory(prefix="maas-upload-") as tmp:
        path = Path(tmp) / name
        await asyncio.to_thread(path.write_bytes, content)
        report = await _run_child(path, feed_id, name, limits)
    # Messages name the temporary copy; the agency knows the file by its own name.
    findings = [msgspec.structs.replace(f, message=f.message.replace(str(path), name)) for f in report.findings]
    return ValidationReport(feed_id=feed_id, source=name, findings=findings)


async def _run_child(path: Path, feed_id: str, name: str, limits: CheckLimits) -> ValidationReport:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        str(path),
        feed_id,
        str(limits.memory_mb),
        str(limits.cpu_s),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **_CHILD_ENV},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=limits.wall_s)
    except TimeoutError:
        return _refused(name, f"the feed cannot be validated within {limits.wall_s:.0f} s; it was stopped")
    finally:
        # The child never outlives the request: not on a timeout, not when the client goes away.
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
    if proc.returncode == 0:
        try:
            return _decode_report(out)
        except msgspec.DecodeError:
            pass
    log.warning("feed validation of %s ended with %s: %s", name, proc.returncode, err[-2000:].decode(errors="replace"))
    if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return _refused(name, f"the feed cannot be validated within {limits.cpu_s} s of CPU time")
    return _refused(name, f"the feed cannot be validated within {limits.memory_mb} MB of memory and {limits.cpu_s} s")


def _refused(name: str, message: str) -> ValidationReport:
    report = ValidationReport(feed_id="", source=name)
    report.add("error", "validation_limit", name, message + "; split the feed or ask the operator for larger limits")
    return report


def _limit_self(memory_mb: int, cpu_s: int) -> None:
    """Limits of this process, set before anything large is imported; it dies with its parent (Linux)."""
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def main(argv: list[str]) -> int:
    """The child: validate the zip at argv[0] as feed argv[1] within argv[2] MB and argv[3] CPU seconds;
    the report as JSON on stdout."""
    path, feed_id, memory_mb, cpu_s = argv[0], argv[1], int(argv[2]), int(argv[3])
    _limit_self(memory_mb, cpu_s)
    name = Path(path).name
    try:
        from feeds.gtfs import validate_gtfs

        report = validate_gtfs(path, feed_id)
    except MemoryError:
        report = _refused(name, f"the feed cannot be validated within {memory_mb} MB of memory")
    except Exception as exc:  # noqa: BLE001 - hostile input must give a report, not a 500
        report = ValidationReport(feed_id=feed_id, source=name)
        report.add("error", "unusable_feed", name, f"the feed cannot be read: {exc}")
    sys.stdout.buffer.write(msgspec.json.encode(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
