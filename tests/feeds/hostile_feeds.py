"""Uploads that once took a worker down, made in the test: a zip bomb, a feed of a million stop times,
and a feed whose frequencies expand to millions of stop times. All but the bomb are real data."""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

from tests.conftest import shared

MILANO = shared("gtfs", "milano-small-2014.gtfs.zip")  # 10,608 trips, 248,555 stop times
BOMB_MIB = 1900  # ~1.86 GiB of NUL bytes, as in the issue


def zip_bomb(source: Path, target: Path, member: str = "stop_times.txt") -> Path:
    """A real feed whose `member` is replaced by BOMB_MIB MiB of NUL bytes deflated to ~2 MB; its declared size
    is true and under 2 GiB. Written by hand: a deflate block of 1 MiB of zeros, fully flushed, repeated."""
    mib = b"\0" * 2**20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(BOMB_MIB):
        crc = zlib.crc32(mib, crc)
    size = BOMB_MIB * 2**20
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            if name != member:
                dst.writestr(name, src.read(name))
    _append_deflated(target, member, block, BOMB_MIB, end, crc, size)
    return target


def _append_deflated(path: Path, name: str, block: bytes, repeat: int, end: bytes, crc: int, size: int) -> None:
    """Add a member whose deflated data is `block` * `repeat` + `end` to a zip (rewriting its central directory)."""
    raw = path.read_bytes()
    eocd = raw.rfind(b"PK\x05\x06")
    count, cd_size, cd_offset = struct.unpack("<HII", raw[eocd + 10 : eocd + 20])
    entries, central = raw[:cd_offset], raw[cd_offset : cd_offset + cd_size]
    encoded = name.encode()
    compressed = len(block) * repeat + len(end)
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, compressed, size, len(encoded), 0)
    offset = len(entries)
    header = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        20,
        20,
        0,
        8,
        0,
        0x21,
        crc,
        compressed,
        size,
        len(encoded),
        0,
        0,
        0,
        0,
        0,
        offset,
    )
    with path.open("wb") as fh:
        fh.write(entries + local + encoded)
        for _ in range(repeat):
            fh.write(block)
        fh.write(end)
        new_central = central + header + encoded
        cd_start = fh.tell()
        fh.write(new_central)
        fh.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count + 1, count + 1, len(new_central), cd_start, 0))


def million_row_feed(target: Path, copies: int = 5) -> Path:
    """Milano's feed with its trips repeated `copies` times under new trip ids: 5 copies give 1,242,775 stop times."""
    with zipfile.ZipFile(MILANO) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
        for name in src.namelist():
            if name not in ("trips.txt", "stop_times.txt"):
                dst.writestr(name, src.read(name))
        dst.writestr("trips.txt", _repeat_rows(src.read("trips.txt"), "trip_id", copies))
        dst.writestr("stop_times.txt", _repeat_rows(src.read("stop_times.txt"), "trip_id", copies))
    return target


def _repeat_rows(data: bytes, column: str, copies: int) -> bytes:
    """The rows of a CSV file (no quoted commas) `copies` times, `column` suffixed ~1, ~2... after the first."""
    header, *rows = data.decode("utf-8-sig").splitlines()
    at = header.split(",").index(column)
    out = [header, *rows]
    for k in range(1, copies):
        for row in rows:
            cells = row.split(",")
            cells[at] += f"~{k}"
            out.append(",".join(cells))
    return ("\n".join(out) + "\n").encode()


def frequencies_feed(target: Path, trips: int = 1741, headway_s: int = 120) -> Path:
    """Milano's feed with `trips` of its trips run every `headway_s` from 05:00 to 24:00 (frequencies.txt): the
    issue's 1,741 frequency rows, which expand to about 20 million stop times."""
    with zipfile.ZipFile(MILANO) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        header, *rows = src.read("trips.txt").decode("utf-8-sig").splitlines()
        at = header.split(",").index("trip_id")
        ids = [row.split(",")[at] for row in rows[:trips]]
        lines = ["trip_id,start_time,end_time,headway_secs"] + [f"{t},05:00:00,24:00:00,{headway_s}" for t in ids]
        dst.writestr("frequencies.txt", "\n".join(lines) + "\n")
    return target
