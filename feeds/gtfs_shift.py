"""A GTFS feed moved in time: a copy of its zip with every service date a whole number of days away.

Only the cells of the GTFS fields of type Date change; every other byte of every file (quoting,
spacing, line endings, a byte order mark, the other files) is copied as it is, so that the copy
differs from the original in nothing but its dates.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from feeds.gtfs import MAX_UNCOMPRESSED_BYTES, GtfsError

# The fields of type Date in the GTFS Schedule reference, per file. The calendar's are required,
# feed_info's optional (a blank one stays blank). feed_info.feed_version often looks like a date
# but is a free-form label, and stays as it is.
DATE_FIELDS: dict[str, tuple[str, ...]] = {
    "calendar.txt": ("start_date", "end_date"),
    "calendar_dates.txt": ("date",),
    "feed_info.txt": ("feed_start_date", "feed_end_date"),
}
_OPTIONAL_DATES = {"feed_info.txt"}

# One CSV cell and what ends it. A quoted cell may hold commas, quotes ("") and line breaks.
_CELL = re.compile(rb'("(?:[^"]|"")*"[^,\r\n]*|[^,\r\n]*)(,|\r\n|\n|\r|\Z)')
_DATE = re.compile(rb"\d{8}")
_BOM = b"\xef\xbb\xbf"


def shift_service_dates(source: str | Path, target: str | Path, days: int) -> Path:
    """Write `target`, a copy of the GTFS zip `source` whose service dates all lie `days` days later
    (earlier when negative); raises GtfsError naming file, line and field of a malformed date. Only a
    multiple of 7 moves every service day by exactly `days`: calendar.txt's weekday flags stay as they are."""
    source, target = Path(source), Path(target)
    if source.resolve() == target.resolve():
        raise GtfsError(f"{source}: the shifted copy must be written to another path")
    if not zipfile.is_zipfile(source):
        raise GtfsError(f"{source}: not a zip archive (a GTFS feed is a zip of .txt files)")
    partial = target.with_name(f".{target.name}.partial")
    try:
        with zipfile.ZipFile(source) as src:
            declared = sum(info.file_size for info in src.infolist())
            if declared > MAX_UNCOMPRESSED_BYTES:
                raise GtfsError(f"{source}: archive declares {declared} bytes uncompressed, more than the limit")
            with zipfile.ZipFile(partial, "w") as dst:
                dst.comment = src.comment
                for info in src.infolist():
                    out = copy.copy(info)  # the same name, time stamp, compression and attributes
                    name = PurePosixPath(info.filename).name
                    if name in DATE_FIELDS and not info.is_dir():
                        data = _shift_file(src.read(info), name, days, f"{source}: {info.filename}")
                        dst.writestr(out, data)
                    else:
                        with src.open(info) as r, dst.open(out, "w") as w:
                            shutil.copyfileobj(r, w)
        os.replace(partial, target)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise GtfsError(f"{source}: cannot copy the archive: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return target


def _shift_file(data: bytes, file: str, days: int, where: str) -> bytes:
    """The file with the cells of its date columns shifted; `where` prefixes error messages."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise GtfsError(f"{where}: file is UTF-16 encoded; GTFS requires UTF-8")
    wanted = DATE_FIELDS[file]
    columns: dict[int, str] | None = None  # cell index -> date field, from the header
    pieces: list[bytes] = []
    copied = 0  # data[:copied] is in pieces
    line = 1  # the physical line the current record starts on
    record: list[tuple[int, int]] = []  # the spans of the current record's cells
    for match in _CELL.finditer(data):
        record.append(match.span(1))
        separator = match.group(2)
        if separator == b",":
            continue
        if len(record) > 1 or record[0][0] != record[0][1]:  # a blank line is no record
            if columns is None:
                names = [_unquote(data[a:b]).strip() for a, b in record]
                names[0] = names[0].removeprefix(_BOM.decode())
                columns = {i: n for i, n in enumerate(names) if n in wanted}
            else:
                for i, field in columns.items():
                    span = record[i] if i < len(record) else (record[-1][1], record[-1][1])
                    new = _shifted_cell(data[span[0] : span[1]], days, file in _OPTIONAL_DATES)
                    if isinstance(new, str):
                        raise GtfsError(f"{where}:{line} [{field}]: {new}")
                    if new is not None:
                        pieces += [data[copied : span[0]], new]
                        copied = span[1]
        line += sum(data.count(b"\n", a, b) for a, b in record if data[a : a + 1] == b'"')
        line += separator != b""
        record = []
        if not separator:
            break
    pieces.append(data[copied:])
    return b"".join(pieces)


def _unquote(cell: bytes) -> str:
    text = cell.decode("utf-8", errors="replace")
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text


def _shifted_cell(cell: bytes, days: int, optional: bool) -> bytes | str | None:
    """The cell with its date moved (quotes and spaces around it kept), None when it stays as it is
    (a blank optional date), or what is wrong with it."""
    a, b = 0, len(cell)
    if b >= 2 and cell[:1] == b'"' and cell[-1:] == b'"':
        a, b = 1, b - 1
    while a < b and cell[a : a + 1] in (b" ", b"\t"):
        a += 1
    while b > a and cell[b - 1 : b] in (b" ", b"\t"):
        b -= 1
    text = cell[a:b]
    if not text:
        return None if optional else "the date is missing"
    shown = text.decode("utf-8", errors="replace")
    if not _DATE.fullmatch(text):
        return f"{shown!r} is not a YYYYMMDD date"
    try:
        moved = dt.date(int(text[:4]), int(text[4:6]), int(text[6:])) + dt.timedelta(days=days)
    except ValueError:
        return f"{shown!r} is not a date of the calendar"
    except OverflowError:
        return f"{shown!r} moved by {days} days leaves the years 1..9999"
    if moved.year < 1000:
        return f"{shown!r} moved by {days} days has no 4-digit year"
    return cell[:a] + moved.strftime("%Y%m%d").encode() + cell[b:]
