"""GTFS static feeds: read (zip or directory), validate with file/line/field findings, namespace ids.

A feed is read into gtfs-kit's `Feed` (tables as DataFrames of strings plus parsed numeric
columns). Rows that are invalid are reported and left out of the tables, so that what the
network builder sees is usable; the counts of the feed are taken from the files as given.
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import re
import zipfile
import zlib
import zoneinfo
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple

import msgspec
import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from feeds.geo import haversine_m
from feeds.model import FeedError, Severity, ValidationReport

if TYPE_CHECKING:  # imported where tables are built: validating (a child process per upload) never needs it
    import gtfs_kit

# An archive declaring more than this uncompressed is refused before anything is inflated.
MAX_UNCOMPRESSED_BYTES = 2 * 1024**3
# Findings of one kind in one file beyond this many are summarised in one line.
MAX_FINDINGS_PER_KIND = 20
# A stop farther than this from the feed's median stop is suspicious (a 0,0 stop, swapped lat/lon).
FAR_STOP_M = 500_000.0

_REQUIRED_FILES = ("agency", "stops", "routes", "trips", "stop_times")

# Columns a file must have; calendar files are checked as "at least one of them".
_REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "agency": ("agency_name", "agency_url", "agency_timezone"),
    "stops": ("stop_id",),
    "routes": ("route_id", "route_type"),
    "trips": ("route_id", "service_id", "trip_id"),
    "stop_times": ("trip_id", "stop_sequence"),
    "calendar": (
        "service_id",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "start_date",
        "end_date",
    ),
    "calendar_dates": ("service_id", "date", "exception_type"),
    "frequencies": ("trip_id", "start_time", "end_time", "headway_secs"),
    "transfers": ("from_stop_id", "to_stop_id", "transfer_type"),
    "shapes": ("shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"),
    "feed_info": (),
}

# Columns holding GTFS ids, prefixed with "<feed_id>:" so that several feeds can live together.
_ID_COLUMNS: dict[str, tuple[str, ...]] = {
    "agency": ("agency_id",),
    "stops": ("stop_id", "parent_station"),
    "routes": ("route_id", "agency_id"),
    "trips": ("route_id", "service_id", "trip_id", "shape_id", "block_id"),
    "stop_times": ("trip_id", "stop_id"),
    "calendar": ("service_id",),
    "calendar_dates": ("service_id",),
    "frequencies": ("trip_id",),
    "transfers": (
        "from_stop_id",
        "to_stop_id",
        "from_route_id",
        "to_route_id",
        "from_trip_id",
        "to_trip_id",
    ),
    "shapes": ("shape_id",),
    "feed_info": (),
}

_PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "agency": ("agency_id",),
    "stops": ("stop_id",),
    "routes": ("route_id",),
    "trips": ("trip_id",),
    "stop_times": ("trip_id", "stop_sequence"),
    "calendar": ("service_id",),
    "calendar_dates": ("service_id", "date"),
    "shapes": ("shape_id", "shape_pt_sequence"),
}

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME_RE = r"^(\d{1,3}):([0-5]\d):([0-5]\d)$"
_DATE_RE = r"^\d{8}$"
_FLEX_COLUMNS = ("location_id", "location_group_id")
_FLEX_WINDOW_COLUMNS = (
    "start_pickup_drop_off_window",
    "end_pickup_drop_off_window",
    "start_pickup_dropoff_window",
    "end_pickup_dropoff_window",
    "min_arrival_time",
    "max_departure_time",  # the 2020 GTFS-Flex draft's names for the window
)
_FLEX_FILES = ("location_groups", "booking_rules", "areas", "locations")


class GtfsError(FeedError):
    """A GTFS feed that cannot be used at all (not a feed, missing required files, too large)."""


class GtfsCounts(msgspec.Struct, frozen=True, kw_only=True):
    """Counts of the feed as given: every row of its files, stop_times after frequency expansion."""

    stops: int
    routes: int
    trips: int
    stop_times: int
    service_start: dt.date | None
    service_end: dt.date | None


class ServiceCalendar(msgspec.Struct, frozen=True, kw_only=True):
    """On which dates each service runs: `active[s, d]` for service s on `first_date + d` days."""

    service_ids: list[str]
    first_date: dt.date
    active: np.ndarray  # bool [n_services, n_days]

    @property
    def n_days(self) -> int:
        return int(self.active.shape[1])


class GtfsFeed(msgspec.Struct, frozen=True, kw_only=True):
    """A feed read and validated; ids in `tables` are namespaced as `<feed_id>:<gtfs_id>`."""

    feed_id: str
    source: str
    sha256: str
    timezone: str
    counts: GtfsCounts
    report: ValidationReport
    tables: gtfs_kit.Feed
    services: ServiceCalendar


def feed_id_from_path(path: str | Path) -> str:
    """The default feed id: the file name without its extensions (`vvs-s1-only.gtfs.zip` -> `vvs-s1-only`)."""
    name = Path(path).name
    for suffix in (".zip", ".gtfs"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def read_gtfs(path: str | Path, feed_id: str | None = None, limits: ArchiveLimits | None = None) -> GtfsFeed:
    """Read and validate one feed; raises GtfsError when the report has errors that leave nothing usable."""
    reader = _FeedReader(Path(path), feed_id or feed_id_from_path(path), limits or DEFAULT_LIMITS)
    return reader.read()


def validate_gtfs(
    path: str | Path, feed_id: str | None = None, limits: ArchiveLimits | None = None
) -> ValidationReport:
    """The validation report of one feed; never raises for bad content, the findings say what is wrong.
    Memory follows what the checks keep (integer columns), not the size of the files; frequencies are
    checked, not expanded."""
    reader = _FeedReader(Path(path), feed_id or feed_id_from_path(path), limits or DEFAULT_LIMITS, validating=True)
    try:
        reader.check()
    except GtfsError as exc:
        reader.report.add("error", "unusable_feed", Path(path).name, str(exc))
    return reader.report


def read_gtfs_feeds(paths: Sequence[str | Path], feed_ids: Sequence[str | None] | None = None) -> list[GtfsFeed]:
    """Read several feeds at once; their ids must be distinct so that namespaced ids never collide."""
    ids = list(feed_ids) if feed_ids is not None else [None] * len(paths)
    if len(ids) != len(paths):
        raise GtfsError("give one feed id per feed, or none")
    chosen = [fid or feed_id_from_path(p) for p, fid in zip(paths, ids, strict=True)]
    seen: dict[str, str] = {}
    for path, fid in zip(paths, chosen, strict=True):
        if fid in seen:
            raise GtfsError(f"{path}: feed id {fid!r} is already used by {seen[fid]}; give the feeds distinct ids")
        seen[fid] = str(path)
    return [read_gtfs(p, fid) for p, fid in zip(paths, chosen, strict=True)]


# --------------------------------------------------------------------------------------------
# Reading the container


def read_stop_positions(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes and longitudes of a feed's stops (rows without a valid position left out), read from
    stops.txt alone: where a feed lies, without reading its timetable."""
    report = ValidationReport(feed_id=feed_id_from_path(path), source=str(path))
    archive = _Archive(Path(path), report, DEFAULT_LIMITS)
    if "stops" not in archive.members:
        raise GtfsError(f"{path}: no stops.txt")
    try:
        stops = _whole_table(archive, "stops", ())
    except _Unreadable:
        return np.zeros(0), np.zeros(0)
    if "stop_lat" not in stops or "stop_lon" not in stops:
        return np.zeros(0), np.zeros(0)
    lat, _ = _parse_numbers(stops["stop_lat"])
    lon, _ = _parse_numbers(stops["stop_lon"])
    ok = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180) & ((lat != 0) | (lon != 0))
    return lat[ok], lon[ok]


class ArchiveLimits(msgspec.Struct, frozen=True, kw_only=True):
    """How much reading one feed may inflate, counted on the bytes really produced (a zip's declared
    sizes can lie): reading stops at the first limit passed, which the report then names."""

    member_bytes: int = 1024**3  # one file, uncompressed
    total_bytes: int = MAX_UNCOMPRESSED_BYTES  # all files read, uncompressed
    ratio: float = 200.0  # uncompressed / compressed of one file (real feeds: 5-30); checked past its first MiB
    members: int = 1000  # entries in the archive


DEFAULT_LIMITS = ArchiveLimits()
# Rows parsed at a time: a file is never held whole, only what the checks keep of it.
CHUNK_ROWS = 100_000
_BLOCK_BYTES = 1 << 20
_RATIO_GRACE_BYTES = 1 << 20  # a small file may compress extremely well (a header and a few equal lines)


class _Unreadable(Exception):
    """A file that cannot be read (further); its finding is already in the report."""


class _Archive:
    """The text files of a feed in a zip archive or a directory, read as limited streams."""

    def __init__(self, path: Path, report: ValidationReport, limits: ArchiveLimits) -> None:
        self.path = path
        self.report = report
        self.limits = limits
        self.inflated = 0  # bytes produced by every member read so far
        self._zip: zipfile.ZipFile | None = None
        self._infos: dict[str, zipfile.ZipInfo] = {}
        self.members: dict[str, str] = {}
        if not path.exists():
            raise GtfsError(f"{path}: no such file or directory")
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file() and child.suffix in (".txt", ".geojson"):
                    self.members[child.stem] = child.name
        else:
            self._open_zip()

    def _open_zip(self) -> None:
        if not zipfile.is_zipfile(self.path):
            raise GtfsError(f"{self.path}: not a zip archive (a GTFS feed is a zip of .txt files)")
        try:
            zf = zipfile.ZipFile(self.path)
            infos = zf.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise GtfsError(f"{self.path}: damaged zip archive: {exc}") from exc
        if len(infos) > self.limits.members:
            raise GtfsError(
                f"{self.path}: archive has {len(infos)} entries, more than the limit of {self.limits.members}; refused unread"
            )
        declared = sum(info.file_size for info in infos)
        if declared > self.limits.total_bytes:
            raise GtfsError(
                f"{self.path}: archive declares {declared / 1024**2:.1f} MiB uncompressed, more than"
                f" the limit of {self.limits.total_bytes // 1024**2} MiB; refused unread"
            )
        self._zip = zf
        txt = [i for i in infos if not i.is_dir() and i.filename.endswith((".txt", ".geojson"))]
        folders = {str(Path(i.filename).parent) for i in txt}
        if folders and "." not in folders:
            if len(folders) > 1:
                raise GtfsError(f"{self.path}: .txt files spread over folders {sorted(folders)}")
            self.report.add(
                "warning",
                "nested_folder",
                self.path.name,
                f"feed files are inside folder {folders.pop()!r} instead of the archive's root",
            )
        for info in txt:
            if "." in folders and str(Path(info.filename).parent) != ".":
                continue
            self.members[Path(info.filename).stem] = info.filename
            self._infos[info.filename] = info

    def open_text(self, table: str) -> _MemberText:
        """The decoded text of one file as a stream that stops (with a finding) at the first limit passed."""
        member = self.members[table]
        if self._zip is None:
            return _MemberText(self, f"{table}.txt", (self.path / member).open("rb"), None)
        info = self._infos[member]
        # zipfile never inflates past the declared size, so a declared ratio within the limit bounds the real one.
        self.count(f"{table}.txt", 0, info.compress_size, 0, declared=info.file_size)
        try:
            raw = self._zip.open(info)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise GtfsError(f"{self.path}: {member}: cannot be read from the archive: {exc}") from exc
        return _MemberText(self, f"{table}.txt", raw, info.compress_size)

    def count(self, file: str, member_bytes: int, compressed: int | None, new: int, declared: int = 0) -> None:
        """Account `new` inflated bytes of `file` (`member_bytes` so far, `declared` by the archive);
        _Unreadable (with an error finding) past a limit."""
        self.inflated += new
        mib = 1024**2
        limits = self.limits
        expands = max(member_bytes, declared)
        problem = None
        if compressed is not None and expands > _RATIO_GRACE_BYTES and expands > limits.ratio * compressed:
            problem = (
                f"expands more than {limits.ratio:g} times ({compressed} bytes compressed to {expands} bytes),"
                f" past the limit on the compression ratio (a zip bomb?)"
            )
        elif member_bytes > limits.member_bytes:
            problem = f"expands to more than {limits.member_bytes // mib} MiB, the limit for one file"
        elif self.inflated > limits.total_bytes:
            problem = f"brings the archive past {limits.total_bytes // mib} MiB uncompressed, the limit for a feed"
        if problem:
            self.report.add("error", "archive_limit", file, f"{file} {problem}; not read further")
            raise _Unreadable(file)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        if self._zip is None:
            for member in sorted(self.members.values()):
                digest.update(member.encode())
                with (self.path / member).open("rb") as fh:
                    for block in iter(lambda: fh.read(_BLOCK_BYTES), b""):
                        digest.update(block)
        else:
            with self.path.open("rb") as fh:
                for block in iter(lambda: fh.read(_BLOCK_BYTES), b""):
                    digest.update(block)
        return digest.hexdigest()


class _MemberText:
    """A file's text as pandas reads a file: UTF-8 (with or without BOM); UTF-16 and Latin-1 are read
    with a warning; NUL bytes end it with an error. Limits are checked on every block inflated."""

    def __init__(self, archive: _Archive, file: str, raw: IO[bytes], compressed: int | None) -> None:
        self.archive = archive
        self.file = file
        self.raw = raw
        self.compressed = compressed
        self.size = 0
        self.newlines = 0
        self._decoder: codecs.IncrementalDecoder | None = None
        self._latin1 = False

    def read(self, size: int = -1) -> str:
        try:
            data = self.raw.read(_BLOCK_BYTES if size < 0 else max(size, 1))
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
            self.archive.report.add("error", "archive_damaged", self.file, f"cannot be read from the archive: {exc}")
            raise _Unreadable(self.file) from exc
        self.size += len(data)
        self.archive.count(self.file, self.size, self.compressed, len(data))
        text = self._decode(data)
        if "\x00" in text:
            self.archive.report.add(
                "error", "binary_content", self.file, "file contains NUL bytes; not a CSV text file"
            )
            raise _Unreadable(self.file)
        self.newlines += data.count(b"\n")
        return text

    def _decode(self, data: bytes) -> str:
        report = self.archive.report
        if self._decoder is None:
            if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
                report.add("warning", "encoding_utf16", self.file, "file is UTF-16 encoded; GTFS requires UTF-8")
                self._decoder = codecs.getincrementaldecoder("utf-16")("replace")
            else:
                self._decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        pending = self._decoder.getstate()[0]
        try:
            return self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            if self._latin1:
                raise
            # The bytes before are plain ASCII in a Latin-1 file: reading on as Latin-1 is what it means.
            self._latin1 = True
            line = self.newlines + (pending + data)[: exc.start].count(b"\n") + 1
            report.add(
                "warning",
                "encoding_not_utf8",
                self.file,
                f"not valid UTF-8 (first invalid byte 0x{exc.object[exc.start]:02x}); read as Latin-1",
                line=line,
            )
            self._decoder = codecs.getincrementaldecoder("latin-1")()
            return self._decoder.decode(pending + data, final=not data)

    def close(self) -> None:
        self.raw.close()


_TOKENIZE_LINE = re.compile(r"line (\d+)")


def _csv_chunks(
    archive: _Archive, table: str, required: Sequence[str], *, optional: bool = False
) -> Iterator[pd.DataFrame]:
    """The rows of one file, CHUNK_ROWS at a time, as stripped strings ('' when blank); row i of the file is
    index i - 2 (blank rows left out). Problems are findings, and _Unreadable ends the file."""
    file = f"{table}.txt"
    report = archive.report
    stream = archive.open_text(table)
    try:
        reader = pd.read_csv(
            stream,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            skipinitialspace=True,
            chunksize=CHUNK_ROWS,
        )
        with reader:
            columns: list[str] | None = None
            for chunk in reader:
                if columns is None:
                    columns = _header(chunk, file, required, report)
                chunk.columns = columns
                chunk = chunk.fillna("")
                for col in columns:
                    chunk[col] = chunk[col].str.strip()
                if len(chunk):
                    blank = (chunk == "").all(axis=1)
                    if blank.any():
                        chunk = chunk[~blank]
                yield chunk
    except pd.errors.EmptyDataError as exc:
        severity: Severity = "warning" if optional else "error"
        report.add(severity, "empty_file", file, "file is empty")
        raise _Unreadable(file) from exc
    except pd.errors.ParserError as exc:
        match = _TOKENIZE_LINE.search(str(exc))
        line = int(match.group(1)) if match else None
        report.add("error", "csv_malformed", file, f"not a valid CSV file: {exc}".strip(), line=line)
        raise _Unreadable(file) from exc
    finally:
        stream.close()


def _header(chunk: pd.DataFrame, file: str, required: Sequence[str], report: ValidationReport) -> list[str]:
    columns = [str(c).strip().lstrip("\ufeff") for c in chunk.columns]
    if len(set(columns)) != len(columns):
        report.add("error", "duplicate_column", file, "the header repeats a column name", line=1)
        raise _Unreadable(file)
    missing = [c for c in required if c not in columns]
    if missing:
        report.add(
            "error",
            "missing_column",
            file,
            f"required column(s) missing: {', '.join(missing)}",
            line=1,
            field=missing[0],
        )
        raise _Unreadable(file)
    return columns


def _whole_table(archive: _Archive, table: str, required: Sequence[str], *, optional: bool = False) -> pd.DataFrame:
    """A small file (agency, stops, routes, trips, calendars...) as one frame of strings."""
    chunks = list(_csv_chunks(archive, table, required, optional=optional))
    return chunks[0] if len(chunks) == 1 else pd.concat(chunks)


def _stack(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame of the numeric frames of a file's chunks (emptying `parts`), built a column at a time so
    that the chunks' memory is given back as the whole is made."""
    arrays = [{"": p.index.to_numpy(), **{c: p[c].to_numpy() for c in p.columns}} for p in parts]
    parts.clear()
    columns = {c: np.concatenate([a.pop(c) for a in arrays]) for c in list(arrays[0])}
    index = columns.pop("")
    return pd.DataFrame(columns, index=index, copy=False)


# --------------------------------------------------------------------------------------------
# Validation helpers


def _lines(index: pd.Index) -> np.ndarray:
    return np.asarray(index, dtype=np.int64) + 2


class _Findings:
    """Adds row findings to a report, summarising a kind past MAX_FINDINGS_PER_KIND (counted over every
    chunk of a file; `close` adds the summaries)."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        self._shown: dict[tuple[Severity, str, str, str | None, str], int] = {}
        self._more: dict[tuple[Severity, str, str, str | None, str], int] = {}

    def rows(
        self,
        severity: Severity,
        code: str,
        file: str,
        df: pd.DataFrame,
        mask: pd.Series | np.ndarray,
        field: str | None,
        message: str,
    ) -> None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        key = (severity, code, file, field, message)
        room = MAX_FINDINGS_PER_KIND - self._shown.get(key, 0)
        bad = df.index[mask]
        values = df[field].to_numpy()[mask] if field and field in df.columns else None
        for k, line in enumerate(_lines(bad)[: max(room, 0)]):
            text = message
            if values is not None:
                text = f"{message} (value {values[k]!r})"
            self.report.add(severity, code, file, text, line=int(line), field=field)
        shown = min(max(room, 0), len(bad))
        self._shown[key] = self._shown.get(key, 0) + shown
        if len(bad) > shown:
            self._more[key] = self._more.get(key, 0) + len(bad) - shown

    def close(self) -> None:
        for (severity, code, file, field, message), extra in self._more.items():
            self.report.add(severity, code, file, f"{message}: {extra} more rows like this", field=field)
        self._more.clear()


def _parse_times(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Seconds of GTFS times (may pass 24:00:00), -1 where blank; and a mask of unparsable ones."""
    parts = values.str.extract(_TIME_RE)
    ok = parts[0].notna().to_numpy()
    seconds = np.full(len(values), -1, dtype=np.int64)
    if ok.any():
        h = parts[0][ok].astype(np.int64).to_numpy()
        m = parts[1][ok].astype(np.int64).to_numpy()
        s = parts[2][ok].astype(np.int64).to_numpy()
        seconds[ok] = h * 3600 + m * 60 + s
    blank = (values == "").to_numpy()
    return seconds, ~ok & ~blank


def format_time(seconds: np.ndarray) -> np.ndarray:
    """GTFS time strings (HH:MM:SS, hours may pass 24) of seconds since the service day's origin."""
    seconds = np.asarray(seconds, dtype=np.int64)
    h, rest = np.divmod(seconds, 3600)
    m, s = np.divmod(rest, 60)
    return np.char.add(
        np.char.add(np.char.add(np.char.zfill(h.astype(str), 2), ":"), np.char.zfill(m.astype(str), 2)),
        np.char.add(":", np.char.zfill(s.astype(str), 2)),
    )


def _parse_dates(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Dates of YYYYMMDD strings (NaT where invalid) and the mask of invalid ones."""
    parsed = pd.to_datetime(values.where(values.str.match(_DATE_RE)), format="%Y%m%d", errors="coerce")
    return parsed, parsed.isna().to_numpy()


def _parse_numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Floats (NaN where blank or invalid) and the mask of non-blank cells that are not numbers."""
    numbers = np.array(pd.to_numeric(values, errors="coerce"), dtype=np.float64)
    return numbers, np.isnan(numbers) & (values != "").to_numpy()


def _parse_ints(
    df: pd.DataFrame,
    column: str,
    default: int,
    allowed: Sequence[int] | None,
    file: str,
    findings: _Findings,
    severity: Severity = "error",
) -> np.ndarray:
    """An enum/integer column as int64: blank -> default; invalid values reported and set to default."""
    if column not in df.columns:
        return np.full(len(df), default, dtype=np.int64)
    numbers, bad = _parse_numbers(df[column])
    whole = ~np.isnan(numbers) & (numbers == np.floor(numbers))
    bad |= ~np.isnan(numbers) & ~whole
    if allowed is not None:
        bad |= whole & ~np.isin(numbers, allowed)
    findings.rows(
        severity,
        "invalid_value",
        file,
        df,
        bad,
        column,
        f"{column} must be " + (f"one of {list(allowed)}" if allowed is not None else "an integer"),
    )
    out = np.where(np.isnan(numbers) | bad, default, numbers)
    return out.astype(np.int64)


# --------------------------------------------------------------------------------------------
# The reader


# Files parsed in chunks, never as one frame of strings: the ones that reach millions of rows.
_STREAMED = ("stop_times", "shapes")


class _Checked(NamedTuple):
    """The tables of a feed after its checks, before frequency expansion and namespacing."""

    timezone: str
    stops: pd.DataFrame
    routes: pd.DataFrame
    calendar: pd.DataFrame | None
    calendar_dates: pd.DataFrame | None
    services: ServiceCalendar
    trips: pd.DataFrame
    stop_times: pd.DataFrame
    frequencies: pd.DataFrame | None
    transfers: pd.DataFrame | None
    shapes: pd.DataFrame | None


class _FeedReader:
    def __init__(self, path: Path, feed_id: str, limits: ArchiveLimits, *, validating: bool = False) -> None:
        if not feed_id or ":" in feed_id or any(c.isspace() for c in feed_id):
            raise GtfsError(f"{path}: feed id {feed_id!r} must be non-empty, without ':' or spaces")
        self.path = path
        self.feed_id = feed_id
        self.limits = limits
        # Validating keeps only the compact columns the checks need and never expands frequencies.
        self.validating = validating
        self.report = ValidationReport(feed_id=feed_id, source=str(path))
        self.findings = _Findings(self.report)
        self.raw: dict[str, pd.DataFrame] = {}
        self.raw_rows: dict[str, int] = {}

    # -- the whole pipeline --------------------------------------------------------------------

    def check(self) -> tuple[_Archive, _Checked]:
        """Every check of the feed; GtfsError when nothing usable is left."""
        archive = _Archive(self.path, self.report, self.limits)
        try:
            return archive, self._check(archive)
        finally:
            self.findings.close()

    def read(self) -> GtfsFeed:
        archive, checked = self.check()
        stop_times, added_rows = self._expand_frequencies(checked.stop_times, checked.trips, checked.frequencies)
        trips = self._trips_with_expansion(checked.trips, stop_times)
        services = checked.services
        first, last = _service_span(services)
        counts = GtfsCounts(
            stops=self.raw_rows["stops"],
            routes=self.raw_rows["routes"],
            trips=self.raw_rows["trips"],
            stop_times=self.raw_rows["stop_times"] + added_rows,
            service_start=first,
            service_end=last,
        )
        tables = self._namespaced_feed(
            agency=self.raw["agency"],
            stops=checked.stops,
            routes=checked.routes,
            trips=trips,
            stop_times=stop_times,
            calendar=checked.calendar,
            calendar_dates=checked.calendar_dates,
            transfers=checked.transfers,
            shapes=checked.shapes,
            frequencies=None,
            feed_info=self.raw.get("feed_info"),
        )
        prefix = self.feed_id + ":"
        services = ServiceCalendar(
            service_ids=[prefix + s for s in services.service_ids],
            first_date=services.first_date,
            active=services.active,
        )
        return GtfsFeed(
            feed_id=self.feed_id,
            source=str(self.path),
            sha256=archive.sha256(),
            timezone=checked.timezone,
            counts=counts,
            report=self.report,
            tables=tables,
            services=services,
        )

    def _check(self, archive: _Archive) -> _Checked:
        # A GTFS-Flex feed may describe only zones: its empty stops.txt or lack of fixed trips is fine.
        self.is_flex = any(name in archive.members for name in _FLEX_FILES)
        for table in _REQUIRED_COLUMNS:
            if table in archive.members and table not in _STREAMED:
                self._load_table(archive, table)
        missing = [t for t in _REQUIRED_FILES if t not in archive.members]
        for table in missing:
            self.report.add("error", "missing_file", f"{table}.txt", "required file is missing")
        if "calendar" not in archive.members and "calendar_dates" not in archive.members:
            self.report.add(
                "error",
                "missing_file",
                "calendar.txt",
                "neither calendar.txt nor calendar_dates.txt is present; no trip has service days",
            )
        self._refuse_unusable(
            [t for t in _REQUIRED_FILES if t not in self.raw and (t not in _STREAMED or t not in archive.members)]
        )
        timezone = self._check_agency()
        stops = self._check_stops()
        routes = self._check_routes()
        calendar, calendar_dates = self._check_calendars()
        services = self._service_calendar(calendar, calendar_dates)
        trips = self._check_trips(routes, set(services.service_ids))
        stop_times = self._check_stop_times(archive, trips, stops)
        frequencies = self._check_frequencies(stop_times)
        transfers = self._check_transfers(stops)
        shapes = self._check_shapes(archive)
        if stop_times.empty:  # no trip with valid stop times
            if self.is_flex:
                self.report.add(
                    "warning",
                    "no_fixed_trips",
                    "trips.txt",
                    "the feed has only demand-responsive (GTFS-Flex) trips, no fixed-route timetable",
                )
            else:
                self.report.add("error", "no_usable_trips", "trips.txt", "no trip with valid stop times remains")
        return _Checked(
            timezone=timezone,
            stops=stops,
            routes=routes,
            calendar=calendar,
            calendar_dates=calendar_dates,
            services=services,
            trips=trips,
            stop_times=stop_times,
            frequencies=frequencies,
            transfers=transfers,
            shapes=shapes,
        )

    def _refuse_unusable(self, tables: list[str]) -> None:
        if tables:
            raise GtfsError(
                f"{self.path}: unusable, {', '.join(t + '.txt' for t in tables)} missing or unreadable;"
                f" first problems: " + "; ".join(str(f) for f in self.report.errors[:3])
            )

    def _load_table(self, archive: _Archive, table: str) -> None:
        file = f"{table}.txt"
        optional = table not in _REQUIRED_FILES or (self.is_flex and table == "stops")
        try:
            df = _whole_table(archive, table, _REQUIRED_COLUMNS[table], optional=optional)
        except _Unreadable:
            return
        if df.empty and table in _REQUIRED_FILES:
            severity: Severity = "warning" if self.is_flex and table == "stops" else "error"
            self.report.add(severity, "empty_file", file, "file has a header but no rows")
        self.raw_rows[table] = len(df)
        key = _PRIMARY_KEYS.get(table)
        if key and all(k in df.columns for k in key) and len(df):
            dup = np.array(df.duplicated(list(key), keep="first"), dtype=bool)
            if table == "agency" and len(df) == 1:
                dup[:] = False
            self._duplicates(file, df, dup, key)
            df = df[~dup]
        self.raw[table] = df

    def _duplicates(self, file: str, df: pd.DataFrame, dup: np.ndarray, key: Sequence[str]) -> None:
        self.findings.rows(
            "error", "duplicate_id", file, df, dup, key[0], f"duplicate {'/'.join(key)}; the first row is kept"
        )

    # -- tables ----------------------------------------------------------------------------------

    def _check_agency(self) -> str:
        agency = self.raw["agency"]
        file = "agency.txt"
        zones: list[str] = []
        for idx, tz in zip(agency.index, agency["agency_timezone"], strict=True):
            try:
                zoneinfo.ZoneInfo(tz)
                zones.append(tz)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                self.report.add(
                    "error",
                    "invalid_timezone",
                    file,
                    f"unknown time zone {tz!r}",
                    line=int(idx) + 2,
                    field="agency_timezone",
                )
        if len(set(zones)) > 1:
            self.report.add(
                "warning",
                "mixed_timezones",
                file,
                f"agencies use different time zones {sorted(set(zones))}; the first is used",
                field="agency_timezone",
            )
        if len(agency) > 1 and "agency_id" not in agency.columns:
            self.report.add(
                "error",
                "missing_column",
                file,
                "agency_id is required with several agencies",
                field="agency_id",
                line=1,
            )
        if not zones:
            self.report.add("error", "invalid_timezone", file, "no valid agency_timezone; UTC is assumed")
            return "UTC"
        return zones[0]

    def _check_stops(self) -> pd.DataFrame:
        stops = self.raw["stops"].copy()
        file = "stops.txt"
        f = self.findings
        location_type = _parse_ints(stops, "location_type", 0, (0, 1, 2, 3, 4), file, f)
        stops["location_type"] = location_type
        needs_position = location_type <= 2
        for col in ("stop_lat", "stop_lon"):
            if col not in stops.columns:
                stops[col] = ""
        lat, bad_lat = _parse_numbers(stops["stop_lat"])
        lon, bad_lon = _parse_numbers(stops["stop_lon"])
        f.rows("error", "invalid_coordinate", file, stops, bad_lat, "stop_lat", "stop_lat is not a number")
        f.rows("error", "invalid_coordinate", file, stops, bad_lon, "stop_lon", "stop_lon is not a number")
        out_lat = ~np.isnan(lat) & (np.abs(lat) > 90)
        out_lon = ~np.isnan(lon) & (np.abs(lon) > 180)
        f.rows("error", "invalid_coordinate", file, stops, out_lat, "stop_lat", "stop_lat outside -90..90")
        f.rows("error", "invalid_coordinate", file, stops, out_lon, "stop_lon", "stop_lon outside -180..180")
        lat[out_lat] = np.nan
        lon[out_lon] = np.nan
        missing = needs_position & (np.isnan(lat) | np.isnan(lon)) & ~(bad_lat | bad_lon | out_lat | out_lon)
        f.rows(
            "error",
            "missing_coordinate",
            file,
            stops,
            missing,
            "stop_lat",
            "stop, station or entrance without a position",
        )
        zero = (lat == 0.0) & (lon == 0.0)
        f.rows(
            "error",
            "null_island",
            file,
            stops,
            zero,
            "stop_lat",
            "stop at 0,0 (a placeholder position, not a real place); it is not placed on the map",
        )
        lat[zero] = np.nan
        lon[zero] = np.nan
        known = ~np.isnan(lat) & ~np.isnan(lon)
        if known.sum() >= 3:
            mlat, mlon = np.median(lat[known]), np.median(lon[known])
            dist = haversine_m(lat, lon, mlat, mlon)
            far = known & (dist > FAR_STOP_M)
            f.rows(
                "warning",
                "stop_too_far",
                file,
                stops,
                far,
                "stop_lat",
                f"stop lies more than {FAR_STOP_M / 1000:.0f} km from the median of the feed's stops",
            )
        stops["stop_lat"] = lat
        stops["stop_lon"] = lon
        if "stop_name" not in stops.columns:
            stops["stop_name"] = ""
        no_name = needs_position & (stops["stop_name"] == "").to_numpy() & (location_type != 0)
        f.rows("warning", "missing_stop_name", file, stops, no_name, "stop_name", "station without stop_name")
        if "parent_station" in stops.columns:
            ids = set(stops["stop_id"])
            parent = stops["parent_station"]
            dangling = ((parent != "") & ~parent.isin(ids)).to_numpy()
            f.rows(
                "error",
                "dangling_reference",
                file,
                stops,
                dangling,
                "parent_station",
                "parent_station names no stop in stops.txt; the reference is dropped",
            )
            stops.loc[dangling, "parent_station"] = ""
        else:
            stops["parent_station"] = ""
        stops["wheelchair_boarding"] = _parse_ints(stops, "wheelchair_boarding", 0, (0, 1, 2), file, f, "warning")
        empty_id = (stops["stop_id"] == "").to_numpy()
        f.rows("error", "missing_value", file, stops, empty_id, "stop_id", "stop_id is empty; row skipped")
        return stops[~empty_id]

    def _check_routes(self) -> pd.DataFrame:
        routes = self.raw["routes"].copy()
        file = "routes.txt"
        f = self.findings
        route_type, _bad = _parse_numbers(routes["route_type"])
        valid = ~np.isnan(route_type) & (
            ((route_type >= 0) & (route_type <= 12)) | ((route_type >= 100) & (route_type <= 1702))
        )
        f.rows(
            "error",
            "invalid_value",
            file,
            routes,
            ~valid,
            "route_type",
            "route_type is not a GTFS or extended route type; 3 (bus) is assumed",
        )
        routes["route_type"] = np.where(valid, route_type, 3).astype(np.int64)
        for col in ("route_short_name", "route_long_name", "agency_id"):
            if col not in routes.columns:
                routes[col] = ""
        nameless = ((routes["route_short_name"] == "") & (routes["route_long_name"] == "")).to_numpy()
        f.rows(
            "warning",
            "missing_route_name",
            file,
            routes,
            nameless,
            "route_short_name",
            "route has neither route_short_name nor route_long_name",
        )
        agency = self.raw["agency"]
        if "agency_id" in agency.columns and len(agency) > 1:
            dangling = (~routes["agency_id"].isin(set(agency["agency_id"]))).to_numpy()
            f.rows(
                "error",
                "dangling_reference",
                file,
                routes,
                dangling,
                "agency_id",
                "agency_id names no agency in agency.txt",
            )
        return routes

    def _check_calendars(self) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
        f = self.findings
        calendar = self.raw.get("calendar")
        if calendar is not None:
            calendar = calendar.copy()
            file = "calendar.txt"
            bad_any = np.zeros(len(calendar), dtype=bool)
            for day in _WEEKDAYS:
                values = calendar[day]
                bad = ~values.isin(("0", "1")).to_numpy()
                f.rows("error", "invalid_value", file, calendar, bad, day, f"{day} must be 0 or 1")
                bad_any |= bad
                calendar[day] = (values == "1").astype(np.int64)
            for col in ("start_date", "end_date"):
                _, bad = _parse_dates(calendar[col])
                f.rows("error", "invalid_date", file, calendar, bad, col, f"{col} is not a YYYYMMDD date")
                bad_any |= bad
            ordered = calendar["start_date"] <= calendar["end_date"]
            reversed_ = ~ordered.to_numpy() & ~bad_any
            f.rows("error", "invalid_date", file, calendar, reversed_, "end_date", "end_date before start_date")
            calendar = calendar[~(bad_any | reversed_)]
        calendar_dates = self.raw.get("calendar_dates")
        if calendar_dates is not None:
            calendar_dates = calendar_dates.copy()
            file = "calendar_dates.txt"
            _, bad_date = _parse_dates(calendar_dates["date"])
            f.rows("error", "invalid_date", file, calendar_dates, bad_date, "date", "date is not a YYYYMMDD date")
            bad_type = ~calendar_dates["exception_type"].isin(("1", "2")).to_numpy()
            f.rows(
                "error",
                "invalid_value",
                file,
                calendar_dates,
                bad_type,
                "exception_type",
                "exception_type must be 1 (added) or 2 (removed)",
            )
            calendar_dates = calendar_dates[~(bad_date | bad_type)]
            calendar_dates["exception_type"] = calendar_dates["exception_type"].astype(np.int64)
        return calendar, calendar_dates

    def _service_calendar(self, calendar: pd.DataFrame | None, calendar_dates: pd.DataFrame | None) -> ServiceCalendar:
        ids: list[str] = []
        if calendar is not None:
            ids.extend(calendar["service_id"])
        if calendar_dates is not None:
            ids.extend(calendar_dates["service_id"])
        service_ids = list(dict.fromkeys(ids))
        index = {s: i for i, s in enumerate(service_ids)}
        dates: list[np.datetime64] = []
        if calendar is not None and len(calendar):
            dates.extend(pd.to_datetime(calendar["start_date"], format="%Y%m%d").to_numpy().astype("datetime64[D]"))
            dates.extend(pd.to_datetime(calendar["end_date"], format="%Y%m%d").to_numpy().astype("datetime64[D]"))
        cd_dates = None
        if calendar_dates is not None and len(calendar_dates):
            cd_dates = pd.to_datetime(calendar_dates["date"], format="%Y%m%d").to_numpy().astype("datetime64[D]")
            dates.extend(cd_dates)
        if not dates:
            return ServiceCalendar(
                service_ids=service_ids,
                first_date=dt.date(2000, 1, 1),
                active=np.zeros((len(service_ids), 0), dtype=bool),
            )
        first = min(dates)
        n_days = int((max(dates) - first).astype(np.int64)) + 1
        active = np.zeros((len(service_ids), n_days), dtype=bool)
        if calendar is not None and len(calendar):
            starts = pd.to_datetime(calendar["start_date"], format="%Y%m%d").to_numpy().astype("datetime64[D]")
            ends = pd.to_datetime(calendar["end_date"], format="%Y%m%d").to_numpy().astype("datetime64[D]")
            day_of_week = (np.arange(n_days) + (first.astype(np.int64) + 3)) % 7  # 1970-01-01 was a Thursday
            weekdays = calendar[list(_WEEKDAYS)].to_numpy(dtype=bool)
            for row, sid in enumerate(calendar["service_id"]):
                a = int((starts[row] - first).astype(np.int64))
                b = int((ends[row] - first).astype(np.int64)) + 1
                active[index[sid], a:b] = weekdays[row][day_of_week[a:b]]
        if cd_dates is not None and calendar_dates is not None:  # the dates are read from the table
            rows = np.array([index[s] for s in calendar_dates["service_id"]], dtype=np.int64)
            days = (cd_dates - first).astype(np.int64)
            added = calendar_dates["exception_type"].to_numpy() == 1
            active[rows[~added], days[~added]] = False
            active[rows[added], days[added]] = True
        return ServiceCalendar(service_ids=service_ids, first_date=first.astype(dt.date), active=active)

    def _check_trips(self, routes: pd.DataFrame, service_ids: set[str]) -> pd.DataFrame:
        trips = self.raw["trips"].copy()
        file = "trips.txt"
        f = self.findings
        bad_route = (~trips["route_id"].isin(set(routes["route_id"]))).to_numpy()
        f.rows(
            "error",
            "dangling_reference",
            file,
            trips,
            bad_route,
            "route_id",
            "route_id names no route in routes.txt; trip skipped",
        )
        bad_service = (~trips["service_id"].isin(service_ids)).to_numpy()
        f.rows(
            "error",
            "dangling_reference",
            file,
            trips,
            bad_service & ~bad_route,
            "service_id",
            "service_id names no service in calendar.txt or calendar_dates.txt; trip skipped",
        )
        empty = (trips["trip_id"] == "").to_numpy()
        f.rows("error", "missing_value", file, trips, empty, "trip_id", "trip_id is empty; trip skipped")
        trips["wheelchair_accessible"] = _parse_ints(trips, "wheelchair_accessible", 0, (0, 1, 2), file, f, "warning")
        trips["bikes_allowed"] = _parse_ints(trips, "bikes_allowed", 0, (0, 1, 2), file, f, "warning")
        for col in ("shape_id", "trip_headsign", "block_id"):
            if col not in trips.columns:
                trips[col] = ""
        return trips[~(bad_route | bad_service | empty)]

    def _check_stop_times(self, archive: _Archive, trips: pd.DataFrame, stops: pd.DataFrame) -> pd.DataFrame:
        """Usable stop times, sorted along their trips; chunk by chunk, keeping (when validating) only
        integer columns: a trip code (`_trip`, the row of trips.txt), sequence, times, line."""
        file = "stop_times.txt"
        trip_index = pd.Index(self.raw["trips"]["trip_id"])
        usable_trip = np.asarray(trip_index.isin(set(trips["trip_id"])), dtype=bool)
        stop_index = pd.Index(stops["stop_id"])
        broken = np.zeros(len(trip_index), dtype=bool)  # trips with an unusable row: a trip with a hole is wrong
        parts: list[pd.DataFrame] = []
        rows = flex_rows = 0
        try:
            for chunk in _csv_chunks(archive, "stop_times", _REQUIRED_COLUMNS["stop_times"]):
                rows += len(chunk)
                part, flex = self._stop_time_rows(chunk, trip_index, usable_trip, stop_index, broken)
                parts.append(part)
                flex_rows += flex
        except _Unreadable:
            self._refuse_unusable(["stop_times"])
        self.raw_rows["stop_times"] = rows
        if not rows:
            self.report.add("error", "empty_file", file, "file has a header but no rows")
        if flex_rows:
            self.report.add(
                "warning",
                "flex_stop_times",
                file,
                f"{flex_rows} rows describe demand-responsive (GTFS-Flex) service and are not part of the fixed timetable",
            )
        st = _stack(parts) if self.validating else pd.concat(parts)
        del parts
        st = self._along_trips(st, trip_index, broken)
        st = self._interpolate(st)
        return self._check_monotone(st)

    def _along_trips(self, st: pd.DataFrame, trip_index: pd.Index, broken: np.ndarray) -> pd.DataFrame:
        """Stop times sorted by trip and sequence, without duplicates (the first in the file is kept) and
        without the broken trips: one sort and one copy, not one per step."""
        trip = st["_trip"].to_numpy()
        seq = st["stop_sequence"].to_numpy()
        order = np.lexsort((seq, trip))  # stable: of equal keys, the first in the file comes first
        t, q = trip[order], seq[order]
        dup = np.r_[False, (t[1:] == t[:-1]) & (q[1:] == q[:-1])]
        if dup.any():
            rows = np.sort(order[dup])
            named = pd.DataFrame({"trip_id": trip_index[trip[rows]]}, index=st.index[rows])
            self._duplicates("stop_times.txt", named, np.ones(len(named), dtype=bool), _PRIMARY_KEYS["stop_times"])
        order = order[~dup & ~broken[t]]
        if not self.validating:  # the network builder's order: by trip id
            kept = st.take(order)
            return kept.sort_values(["trip_id", "stop_sequence"], kind="stable")
        return st.take(order)

    def _stop_time_rows(
        self,
        st: pd.DataFrame,
        trip_index: pd.Index,
        usable_trip: np.ndarray,
        stop_index: pd.Index,
        broken: np.ndarray,
    ) -> tuple[pd.DataFrame, int]:
        """The checks of single rows of one chunk: its usable rows with times parsed, and its flex rows' count."""
        file = "stop_times.txt"
        f = self.findings
        for col in ("stop_id", "arrival_time", "departure_time"):
            if col not in st.columns:
                st[col] = ""
        # GTFS-Flex rows serve zones or windows instead of a stop at a time: not fixed-route timetable.
        flex = np.zeros(len(st), dtype=bool)
        for col in (*_FLEX_COLUMNS, *_FLEX_WINDOW_COLUMNS):
            if col in st.columns:
                flex |= (st[col] != "").to_numpy()
        no_stop = (st["stop_id"] == "").to_numpy() & ~flex
        f.rows("error", "missing_value", file, st, no_stop, "stop_id", "stop_id is empty; row skipped")
        trip = trip_index.get_indexer(st["trip_id"])
        bad_trip = trip < 0
        f.rows("error", "dangling_reference", file, st, bad_trip, "trip_id", "trip_id names no trip in trips.txt")
        bad_stop = (stop_index.get_indexer(st["stop_id"]) < 0) & ~no_stop & ~flex
        f.rows("error", "dangling_reference", file, st, bad_stop, "stop_id", "stop_id names no stop in stops.txt")
        seq, bad_seq = _parse_numbers(st["stop_sequence"])
        bad_seq |= np.isnan(seq) | (seq < 0) | (seq != np.floor(seq))
        f.rows(
            "error", "invalid_value", file, st, bad_seq, "stop_sequence", "stop_sequence must be a non-negative integer"
        )
        arrival, bad_arr = _parse_times(st["arrival_time"])
        departure, bad_dep = _parse_times(st["departure_time"])
        f.rows("error", "invalid_time", file, st, bad_arr, "arrival_time", "arrival_time is not a HH:MM:SS time")
        f.rows("error", "invalid_time", file, st, bad_dep, "departure_time", "departure_time is not a HH:MM:SS time")
        bad_row = (no_stop | bad_stop | bad_seq | bad_arr | bad_dep) & ~bad_trip
        broken[trip[bad_row]] = True
        keep = ~(flex | bad_trip | no_stop)
        keep[keep] = usable_trip[trip[keep]]
        kept = st[keep]
        part = pd.DataFrame(index=kept.index) if self.validating else kept.copy()
        arrival, departure = arrival[keep], departure[keep]
        # One known time stands for both; both blank are interpolated between timepoints below.
        part["_trip"] = trip[keep].astype(np.int32)
        part["stop_sequence"] = np.nan_to_num(seq[keep]).astype(np.int64)
        times = np.int32 if self.validating else np.int64  # GTFS times fit 32 bits (a year of seconds does)
        part["arrival_s"] = np.where(arrival < 0, departure, arrival).astype(times)
        part["departure_s"] = np.where(departure < 0, arrival, departure).astype(times)
        part["_line"] = _lines(kept.index)
        for col in ("pickup_type", "drop_off_type"):
            values = _parse_ints(kept, col, 0, (0, 1, 2, 3), file, f, "warning")
            if not self.validating:
                part[col] = values
        if "shape_dist_traveled" in kept.columns:
            part["shape_dist_traveled"] = pd.to_numeric(kept["shape_dist_traveled"], errors="coerce")
        if not self.validating:
            part = part.drop(columns=[c for c in (*_FLEX_COLUMNS, *_FLEX_WINDOW_COLUMNS) if c in part.columns])
        return part, int(flex.sum())

    def _interpolate(self, st: pd.DataFrame) -> pd.DataFrame:
        """Fill times between timepoints linearly (by shape distance when every row has one)."""
        times = st["arrival_s"].to_numpy().astype(np.float64)
        known = times >= 0
        trip = st["_trip"].to_numpy()
        starts = np.r_[True, trip[1:] != trip[:-1]]
        ends = np.r_[trip[1:] != trip[:-1], True]
        open_ends = (starts | ends) & ~known
        if open_ends.any():
            bad_trips = set(trip[open_ends])
            mask = np.isin(trip, list(bad_trips)) & (starts | ends) & ~known
            self.findings.rows(
                "error",
                "missing_time",
                "stop_times.txt",
                st.set_index(st["_line"] - 2),
                mask,
                "arrival_time",
                "the first and last stop of a trip need times; trip skipped",
            )
            keep = ~np.isin(trip, list(bad_trips))
            st = st[keep]
            return self._interpolate(st) if keep.any() else st
        if known.all():
            return st
        position = np.arange(len(st), dtype=np.float64)
        if "shape_dist_traveled" in st.columns:
            dist = pd.to_numeric(st["shape_dist_traveled"], errors="coerce").to_numpy(dtype=np.float64)
            group_has_nan = pd.Series(np.isnan(dist)).groupby(trip).transform("any").to_numpy()
            position = np.where(group_has_nan, position, dist)
        idx = np.arange(len(st))
        prev_idx = np.maximum.accumulate(np.where(known, idx, -1))
        next_idx = np.minimum.accumulate(np.where(known, idx, len(st))[::-1])[::-1]
        p0, p1 = position[prev_idx], position[next_idx]
        t0, t1 = times[prev_idx], times[next_idx]
        span = np.where(p1 > p0, p1 - p0, 1.0)
        filled = np.where(known, times, t0 + (t1 - t0) * (position - p0) / span)
        filled = np.round(filled).astype(np.int64)
        st = st.copy()
        st["arrival_s"] = filled
        st["departure_s"] = np.where(known, st["departure_s"].to_numpy(), filled)
        return st

    def _check_monotone(self, st: pd.DataFrame) -> pd.DataFrame:
        """Drop trips whose times go backwards: a departure before its arrival, or an arrival before the previous departure."""
        if st.empty:
            return st
        arr = st["arrival_s"].to_numpy()
        dep = st["departure_s"].to_numpy()
        trip = st["_trip"].to_numpy()
        same = np.r_[False, trip[1:] == trip[:-1]]
        back = dep < arr
        back[1:] |= same[1:] & (arr[1:] < dep[:-1])
        if back.any():
            self.findings.rows(
                "error",
                "decreasing_time",
                "stop_times.txt",
                st.set_index(st["_line"] - 2),
                back,
                "arrival_time",
                "stop times decrease along the trip; trip skipped",
            )
            st = st[~np.isin(trip, list(set(trip[back])))]
        return st

    def _check_frequencies(self, stop_times: pd.DataFrame) -> pd.DataFrame | None:
        freq = self.raw.get("frequencies")
        if freq is None:
            return None
        freq = freq.copy()
        file = "frequencies.txt"
        f = self.findings
        start, bad_start = _parse_times(freq["start_time"])
        end, bad_end = _parse_times(freq["end_time"])
        headway, bad_head = _parse_numbers(freq["headway_secs"])
        bad_start |= start < 0
        bad_end |= end < 0
        bad_head |= np.isnan(headway) | (headway <= 0)
        f.rows("error", "invalid_time", file, freq, bad_start, "start_time", "start_time is not a HH:MM:SS time")
        f.rows("error", "invalid_time", file, freq, bad_end, "end_time", "end_time is not a HH:MM:SS time")
        f.rows("error", "invalid_value", file, freq, bad_head, "headway_secs", "headway_secs must be positive")
        order = (end <= start) & ~bad_start & ~bad_end
        f.rows("error", "invalid_time", file, freq, order, "end_time", "end_time is not after start_time")
        dangling = (~freq["trip_id"].isin(set(self.raw["trips"]["trip_id"]))).to_numpy()
        f.rows("error", "dangling_reference", file, freq, dangling, "trip_id", "trip_id names no trip in trips.txt")
        freq["start_s"], freq["end_s"] = start, end
        freq["headway_s"] = np.nan_to_num(headway).astype(np.int64)
        ok = ~(bad_start | bad_end | bad_head | order | dangling)
        if self.validating:  # only expanding needs the templates' stop times
            return freq[ok]
        return freq[ok & freq["trip_id"].isin(set(stop_times["trip_id"])).to_numpy()]

    def _expand_frequencies(
        self, stop_times: pd.DataFrame, trips: pd.DataFrame, freq: pd.DataFrame | None
    ) -> tuple[pd.DataFrame, int]:
        """Replace each frequency-based trip by one trip per departure; returns rows added."""
        if freq is None or freq.empty:
            return stop_times, 0
        template_ids = set(freq["trip_id"])
        is_template = stop_times["trip_id"].isin(template_ids).to_numpy()
        templates = stop_times[is_template]
        first_dep = templates.groupby("trip_id")["departure_s"].min()
        pieces = [stop_times[~is_template]]
        for row in freq.itertuples():
            rows = templates[templates["trip_id"] == row.trip_id]
            offset0 = int(first_dep[row.trip_id])
            for start in range(int(row.start_s), int(row.end_s), int(row.headway_s)):
                copy = rows.copy()
                shift = start - offset0
                copy["arrival_s"] = copy["arrival_s"] + shift
                copy["departure_s"] = copy["departure_s"] + shift
                copy["trip_id"] = f"{row.trip_id}@{format_time(np.array([start]))[0]}"
                pieces.append(copy)
        expanded = pd.concat(pieces, ignore_index=False)
        expanded["arrival_time"] = format_time(expanded["arrival_s"].to_numpy())
        expanded["departure_time"] = format_time(expanded["departure_s"].to_numpy())
        # The counts are of the raw file: template rows stay counted once, each copy is added.
        return expanded, len(expanded) - len(stop_times)

    def _trips_with_expansion(self, trips: pd.DataFrame, stop_times: pd.DataFrame) -> pd.DataFrame:
        """Trips that have stop times, one row per expanded frequency trip."""
        ids = pd.unique(stop_times["trip_id"])
        base = pd.Series(ids).str.replace(r"@\d+:\d\d:\d\d$", "", regex=True)
        expanded = base.to_numpy() != ids
        keep = trips[trips["trip_id"].isin(set(ids))]
        if not expanded.any():
            return keep
        copies = trips.set_index("trip_id").loc[base[expanded]].reset_index()
        copies["trip_id"] = ids[expanded]
        return pd.concat([keep, copies], ignore_index=True)

    def _check_transfers(self, stops: pd.DataFrame) -> pd.DataFrame | None:
        transfers = self.raw.get("transfers")
        if transfers is None:
            return None
        transfers = transfers.copy()
        file = "transfers.txt"
        f = self.findings
        transfers["transfer_type"] = _parse_ints(transfers, "transfer_type", 0, (0, 1, 2, 3, 4, 5), file, f)
        ids = set(stops["stop_id"])
        bad = np.zeros(len(transfers), dtype=bool)
        for col in ("from_stop_id", "to_stop_id"):
            dangling = ((transfers[col] != "") & ~transfers[col].isin(ids)).to_numpy()
            f.rows("error", "dangling_reference", file, transfers, dangling, col, f"{col} names no stop in stops.txt")
            bad |= dangling
        if "min_transfer_time" in transfers.columns:
            mtt, bad_mtt = _parse_numbers(transfers["min_transfer_time"])
            bad_mtt |= ~np.isnan(mtt) & (mtt < 0)
            f.rows(
                "error",
                "invalid_value",
                file,
                transfers,
                bad_mtt,
                "min_transfer_time",
                "min_transfer_time must be a non-negative number of seconds",
            )
            transfers["min_transfer_time"] = np.where(bad_mtt, np.nan, mtt)
        else:
            transfers["min_transfer_time"] = np.nan
        return transfers[~bad]

    def _check_shapes(self, archive: _Archive) -> pd.DataFrame | None:
        """Usable shape points, sorted along their shapes (when validating: shape ids as categories and sequences)."""
        if "shapes" not in archive.members:
            return None
        parts: list[pd.DataFrame] = []
        try:
            for chunk in _csv_chunks(archive, "shapes", _REQUIRED_COLUMNS["shapes"], optional=True):
                parts.append(self._shape_rows(chunk))
        except _Unreadable:
            return None
        if self.validating:
            ids = union_categoricals([p["shape_id"].array for p in parts])
            index = pd.Index(np.concatenate([p.index.to_numpy() for p in parts]))
            seq = np.concatenate([p["shape_pt_sequence"].to_numpy() for p in parts])
            shapes = pd.DataFrame({"shape_id": ids, "shape_pt_sequence": seq}, index=index)
        else:
            shapes = parts[0] if len(parts) == 1 else pd.concat(parts)
        del parts
        dup = shapes.duplicated(["shape_id", "shape_pt_sequence"], keep="first").to_numpy()
        self._duplicates("shapes.txt", shapes, dup, _PRIMARY_KEYS["shapes"])
        shapes = shapes[~dup]
        return shapes if self.validating else shapes.sort_values(["shape_id", "shape_pt_sequence"], kind="stable")

    def _shape_rows(self, shapes: pd.DataFrame) -> pd.DataFrame:
        """The checks of single rows of one chunk of shapes.txt: its usable rows, coordinates parsed."""
        file = "shapes.txt"
        f = self.findings
        bad = np.zeros(len(shapes), dtype=bool)
        for col, limit in (("shape_pt_lat", 90), ("shape_pt_lon", 180)):
            values, invalid = _parse_numbers(shapes[col])
            invalid |= np.isnan(values) | (np.abs(values) > limit)
            f.rows("error", "invalid_coordinate", file, shapes, invalid, col, f"{col} is not a valid coordinate")
            shapes[col] = values
            bad |= invalid
        seq, invalid = _parse_numbers(shapes["shape_pt_sequence"])
        invalid |= np.isnan(seq)
        f.rows(
            "error",
            "invalid_value",
            file,
            shapes,
            invalid,
            "shape_pt_sequence",
            "shape_pt_sequence must be a non-negative integer",
        )
        shapes["shape_pt_sequence"] = np.nan_to_num(seq).astype(np.int64)
        shapes = shapes[~(bad | invalid)]
        if self.validating:
            return pd.DataFrame(
                {"shape_id": shapes["shape_id"].astype("category"), "shape_pt_sequence": shapes["shape_pt_sequence"]}
            )
        if "shape_dist_traveled" in shapes.columns:
            shapes["shape_dist_traveled"] = pd.to_numeric(shapes["shape_dist_traveled"], errors="coerce")
        return shapes

    # -- namespacing ---------------------------------------------------------------------------

    def _namespaced_feed(self, **tables: pd.DataFrame | None) -> gtfs_kit.Feed:
        import gtfs_kit

        prefix = self.feed_id + ":"
        out: dict[str, pd.DataFrame | None] = {}
        for name, df in tables.items():
            if df is None:
                out[name] = None
                continue
            df = df.reset_index(drop=True)
            for col in _ID_COLUMNS.get(name, ()):
                if col in df.columns:
                    values = df[col].astype(str)
                    df[col] = np.where(values != "", prefix + values, "")
            out[name] = df
        shapes = out.get("shapes")
        dist_units = "km"
        if shapes is not None and "shape_dist_traveled" in shapes.columns and len(shapes):
            dist_units = gtfs_kit.shapes.infer_dist_units(shapes.head(5000))
        return gtfs_kit.Feed(dist_units=dist_units, **out)


def _service_span(services: ServiceCalendar) -> tuple[dt.date | None, dt.date | None]:
    days = np.flatnonzero(services.active.any(axis=0)) if services.active.size else np.array([], dtype=np.int64)
    if not len(days):
        return None, None
    first = services.first_date
    return first + dt.timedelta(days=int(days[0])), first + dt.timedelta(days=int(days[-1]))
