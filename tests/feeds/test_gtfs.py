"""GTFS reading and validation on the real feeds, and on broken feeds derived from them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from feeds.gtfs import ArchiveLimits, GtfsError, format_time, read_gtfs, read_gtfs_feeds, validate_gtfs
from tests.conftest import SHARED_DATA, derive_feed, shared
from tests.feeds.hostile_feeds import zip_bomb
from tests.helpers import edit_line

ALL_GTFS = [
    *sorted([p for p in SHARED_DATA.rglob("*.zip") if "gtfs" in p.name or "FlexExample" in p.name]),
    SHARED_DATA / "flex" / "bbnavi-uckermark",
]


def _raw_rows(path: Path, table: str) -> int:
    """Rows of one file counted with the csv module, independently of the reader under test."""
    if path.is_dir():
        data = (path / f"{table}.txt").read_bytes() if (path / f"{table}.txt").exists() else b""
    else:
        with zipfile.ZipFile(path) as zf:
            data = zf.read(f"{table}.txt") if f"{table}.txt" in zf.namelist() else b""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    rows = list(csv.reader(io.StringIO(text)))
    return sum(1 for r in rows[1:] if any(cell.strip() for cell in r))


@pytest.mark.parametrize("path", ALL_GTFS, ids=lambda p: p.name)
def test_every_shared_feed_loads_with_counts_of_its_files(path: Path) -> None:
    feed = read_gtfs(path)
    assert feed.counts.stops == _raw_rows(path, "stops")
    assert feed.counts.routes == _raw_rows(path, "routes")
    assert feed.counts.trips == _raw_rows(path, "trips")
    if not any(name in str(path) for name in ("lincoln",)):  # lincoln's frequencies expand flex rows only
        assert feed.counts.stop_times == _raw_rows(path, "stop_times")
    for finding in feed.report.findings:
        assert finding.file.endswith((".txt", ".zip")) or finding.file == path.name, finding
        assert finding.message


def test_ids_are_namespaced_by_feed(small_feed: Path) -> None:
    feed = read_gtfs(small_feed)
    assert feed.feed_id == "vvs-bus-764-only"
    for table, column in (
        ("stops", "stop_id"),
        ("trips", "trip_id"),
        ("routes", "route_id"),
        ("stop_times", "stop_id"),
        ("trips", "service_id"),
    ):
        values = getattr(feed.tables, table)[column]
        assert values.str.startswith("vvs-bus-764-only:").all(), (table, column)
    renamed = read_gtfs(small_feed, feed_id="bus764")
    assert renamed.tables.stops["stop_id"].str.startswith("bus764:").all()


def test_two_feeds_with_the_same_id_are_refused(small_feed: Path, tmp_path: Path) -> None:
    copy = tmp_path / "vvs-bus-764-only.gtfs.zip"
    copy.write_bytes(small_feed.read_bytes())
    with pytest.raises(GtfsError, match="already used"):
        read_gtfs_feeds([small_feed, copy])
    both = read_gtfs_feeds([small_feed, copy], ["a", "b"])
    assert [f.feed_id for f in both] == ["a", "b"]


def test_latin1_feed_is_decoded_with_a_warning() -> None:
    feed = read_gtfs(shared("gtfs", "atb-region-nord-2019.gtfs.zip"))
    codes = {f.code for f in feed.report.warnings}
    assert "encoding_not_utf8" in codes
    names = " ".join(feed.tables.stops["stop_name"])
    assert any(ch in names for ch in "æøåÆØÅ"), "Norwegian letters must survive the Latin-1 decoding"
    assert "\ufffd" not in names


def test_byte_order_mark_is_stripped_from_the_header() -> None:
    # VVS's transfers.txt starts with a UTF-8 BOM.
    feed = read_gtfs(shared("region-herrenberg", "gtfs", "vvs-herrenberg-2021-subset.gtfs.zip"))
    assert "from_stop_id" in feed.tables.transfers.columns
    assert len(feed.tables.transfers) > 1000


def test_times_past_midnight_are_kept() -> None:
    feed = read_gtfs(shared("gtfs", "milano-small-2014.gtfs.zip"))
    st = feed.tables.stop_times
    late = st[st["arrival_s"] >= 24 * 3600]
    assert len(late) > 0
    row = late.iloc[0]
    h, m, s = (int(x) for x in row["arrival_time"].split(":"))
    assert row["arrival_s"] == h * 3600 + m * 60 + s
    assert format_time(np.array([90061]))[0] == "25:01:01"


def test_calendar_and_calendar_dates_combine() -> None:
    feed = read_gtfs(shared("region-herrenberg", "gtfs", "vvs-herrenberg-2021-subset.gtfs.zip"))
    cal = feed.services
    row = cal.service_ids.index("vvs-herrenberg-2021-subset:T0")

    def runs(day: dt.date) -> bool:
        return bool(cal.active[row, (day - cal.first_date).days])

    assert runs(dt.date(2021, 6, 15))  # a Tuesday inside the calendar range
    assert not runs(dt.date(2021, 6, 16))  # removed by calendar_dates (exception_type 2)
    assert not runs(dt.date(2021, 6, 19))  # a Saturday: calendar.txt says no
    assert feed.counts.service_start == dt.date(2021, 6, 15)
    assert feed.counts.service_end == dt.date(2021, 9, 15)


def test_frequencies_are_expanded_to_trips(small_feed: Path, tmp_path: Path) -> None:
    base = read_gtfs(small_feed)
    trip_id = "1.T0.31-764-j20-1.1.H"
    stops_per_trip = int((base.tables.stop_times["trip_id"] == f"vvs-bus-764-only:{trip_id}").sum())
    freq = (
        f"trip_id,start_time,end_time,headway_secs\n{trip_id},06:00:00,07:00:00,600\n{trip_id},24:00:00,24:30:00,900\n"
    )
    path = derive_feed(small_feed, tmp_path / "freq.zip", {"frequencies.txt": freq})
    feed = read_gtfs(path)
    st = feed.tables.stop_times
    expanded = st[st["trip_id"].str.startswith(f"freq:{trip_id}@")]
    assert expanded["trip_id"].nunique() == 6 + 2
    first_departures = sorted(expanded.groupby("trip_id")["departure_s"].min())
    assert first_departures[:3] == [6 * 3600, 6 * 3600 + 600, 6 * 3600 + 1200]
    assert first_departures[-1] == 24 * 3600 + 900
    assert feed.counts.stop_times == base.counts.stop_times + 7 * stops_per_trip
    assert f"freq:{trip_id}" not in set(st["trip_id"])  # the template itself is not a trip
    assert len(feed.tables.trips) == len(base.tables.trips) - 1 + 8


def test_missing_times_between_timepoints_are_interpolated(small_feed: Path, tmp_path: Path) -> None:
    def blank_middle(text: str) -> str:
        lines = text.splitlines()
        header = lines[0].split(",")
        a, d = header.index("arrival_time"), header.index("departure_time")
        cells = lines[2].split(",")  # the second stop of the first trip
        cells[a] = cells[d] = ""
        lines[2] = ",".join(cells)
        return "\n".join(lines) + "\n"

    path = derive_feed(small_feed, tmp_path / "interp.zip", {"stop_times.txt": blank_middle})
    feed = read_gtfs(path)
    st = feed.tables.stop_times
    trip = st[st["trip_id"] == "interp:1.T0.31-764-j20-1.1.H"].sort_values("stop_sequence")
    t = trip["arrival_s"].to_numpy()
    assert t[0] < t[1] < t[2]
    assert feed.report.ok


# ---------------------------------------------------------------------------------------------
# Broken feeds: each gives a clear finding (file, line, field) or a GtfsError, never a traceback.


def _append(row: str):
    return lambda text: text.rstrip("\n") + "\n" + row + "\n"


BROKEN = {
    "missing_stops": ({"stops.txt": None}, "missing_file", "stops.txt", None),
    "missing_calendars": ({"calendar.txt": None, "calendar_dates.txt": None}, "missing_file", "calendar.txt", None),
    "missing_column": (
        {"stop_times.txt": lambda t: t.replace("stop_sequence", "seq", 1)},
        "missing_column",
        "stop_times.txt",
        1,
    ),
    "bad_time": ({"stop_times.txt": edit_line(3, "arrival_time", "07:6x:00")}, "invalid_time", "stop_times.txt", 3),
    "bad_date": ({"calendar.txt": edit_line(2, "start_date", "2020-02-02")}, "invalid_date", "calendar.txt", 2),
    "bad_coordinate": ({"stops.txt": edit_line(3, "stop_lat", "north")}, "invalid_coordinate", "stops.txt", 3),
    "latitude_out_of_range": ({"stops.txt": edit_line(2, "stop_lat", "148.65")}, "invalid_coordinate", "stops.txt", 2),
    "null_island": (
        {"stops.txt": lambda t: edit_line(4, "stop_lon", "0")(edit_line(4, "stop_lat", "0")(t))},
        "null_island",
        "stops.txt",
        4,
    ),
    "dangling_route": ({"trips.txt": edit_line(2, "route_id", "no-such-route")}, "dangling_reference", "trips.txt", 2),
    "dangling_service": (
        {"trips.txt": edit_line(3, "service_id", "no-such-service")},
        "dangling_reference",
        "trips.txt",
        3,
    ),
    "dangling_stop": (
        {"stop_times.txt": edit_line(5, "stop_id", "nowhere")},
        "dangling_reference",
        "stop_times.txt",
        5,
    ),
    "dangling_trip": (
        {"stop_times.txt": _append("ghost-trip,de:08115:3218:0:4,08:00:00,08:00:00,1,-999,-999,-999.0,-999.0,0")},
        "dangling_reference",
        "stop_times.txt",
        None,
    ),
    "dangling_parent": (
        {
            "stops.txt": lambda t: t.replace(
                "stop_id,stop_name,stop_lat,stop_lon", "stop_id,stop_name,stop_lat,stop_lon,parent_station"
            ).replace(
                "\nde:08115:3250:0:3,Talstraße,48.656576,8.941426",
                "\nde:08115:3250:0:3,Talstraße,48.656576,8.941426,no-such-station",
            )
        },
        "dangling_reference",
        "stops.txt",
        3,
    ),
    "decreasing_times": (
        {"stop_times.txt": edit_line(4, "arrival_time", "05:00:00")},
        "decreasing_time",
        "stop_times.txt",
        4,
    ),
    "duplicate_stop": (
        {"stops.txt": _append("de:08115:3218:0:4,IBM again,48.654716,8.944998")},
        "duplicate_id",
        "stops.txt",
        None,
    ),
    "duplicate_trip": (
        {"trips.txt": _append("31-764-j20-1,1.T0.31-764-j20-1.1.H,T0#25,Ehningen Bf,0,0.0,0")},
        "duplicate_id",
        "trips.txt",
        None,
    ),
    "empty_file": ({"routes.txt": b""}, "empty_file", "routes.txt", None),
    "header_only": ({"trips.txt": "route_id,trip_id,service_id\n"}, "empty_file", "trips.txt", None),
    "ragged_row": (
        {"routes.txt": _append("31-999,1,999,extra,3,FF0000,FFFFFF,-999,one,too,many")},
        "csv_malformed",
        "routes.txt",
        3,
    ),
    "utf16": (
        {
            "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\n1,VVS,http://www.vvs.de,Europe/Berlin\n".encode(
                "utf-16"
            )
        },
        "encoding_utf16",
        "agency.txt",
        None,
    ),
    "latin1": ({"stops.txt": lambda t: t}, None, None, None),  # replaced below by raw Latin-1 bytes
    "bad_timezone": (
        {"agency.txt": edit_line(2, "agency_timezone", "Europe/Herrenberg")},
        "invalid_timezone",
        "agency.txt",
        2,
    ),
    "binary_file": ({"routes.txt": b"\x00\x01\x02binary\x00"}, "binary_content", "routes.txt", None),
}


def _latin1_stops(small_feed: Path) -> bytes:
    with zipfile.ZipFile(small_feed) as zf:
        return zf.read("stops.txt").decode("utf-8").encode("latin-1")


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_feed_gives_a_precise_finding(case: str, small_feed: Path, tmp_path: Path) -> None:
    changes, code, file, line = BROKEN[case]
    if case == "latin1":
        changes, code, file, line = {"stops.txt": _latin1_stops(small_feed)}, "encoding_not_utf8", "stops.txt", 3
    path = derive_feed(small_feed, tmp_path / f"{case}.zip", changes)
    report = validate_gtfs(path)
    matching = [f for f in report.findings if f.code == code and f.file == file]
    assert matching, f"expected {code} in {file}, got {[str(f) for f in report.findings]}"
    if line is not None:
        assert any(f.line == line for f in matching), [str(f) for f in matching]
    assert all(f.message for f in report.findings)


def test_not_a_zip_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "feed.zip"
    fake.write_text("this is not a zip archive")
    with pytest.raises(GtfsError, match="not a zip archive"):
        read_gtfs(fake)
    report = validate_gtfs(fake)  # validation never raises for bad content
    assert not report.ok and "not a zip archive" in report.errors[0].message


def test_archive_declaring_a_huge_size_is_refused_unread(tmp_path: Path) -> None:
    # A real zip whose central directory claims 4 GiB for stop_times.txt.
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("stop_times.txt", "trip_id\n")
    raw = bytearray(path.read_bytes())
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(GtfsError, match="uncompressed"):
        read_gtfs(path)


def test_missing_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(GtfsError, match="no such file"):
        read_gtfs(tmp_path / "nowhere.zip")


def test_feed_inside_a_folder_is_read_with_a_warning(small_feed: Path, tmp_path: Path) -> None:
    path = tmp_path / "nested.zip"
    with zipfile.ZipFile(small_feed) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            dst.writestr(f"gtfs/{name}", src.read(name))
    feed = read_gtfs(path)
    assert feed.counts.trips == 26
    assert any(f.code == "nested_folder" for f in feed.report.warnings)


# ---------------------------------------------------------------------------------------------
# Hostile archives: limits on what is really inflated, findings instead of a dead worker.


def test_zip_bomb_is_refused_unread_with_the_limit_named(small_feed: Path, tmp_path: Path) -> None:
    # 1.86 GiB of NUL bytes from 2 MB, declared truly and under the 2 GiB archive limit: the old reader
    # inflated it whole (3.9 GB, 80 s) to find NUL bytes.
    bomb = zip_bomb(small_feed, tmp_path / "bomb.zip")
    assert bomb.stat().st_size < 2_500_000
    report = validate_gtfs(bomb)
    limit = [f for f in report.errors if f.code == "archive_limit"]
    assert limit and limit[0].file == "stop_times.txt", [str(f) for f in report.findings]
    assert "compression ratio" in limit[0].message and "200" in limit[0].message
    with pytest.raises(GtfsError, match=r"stop_times\.txt"):
        read_gtfs(bomb)


def test_real_uncompressed_bytes_are_limited_per_file_in_total_and_members_counted() -> None:
    milano = shared("gtfs", "milano-small-2014.gtfs.zip")  # stop_times.txt: 19.8 MiB
    per_file = validate_gtfs(milano, limits=ArchiveLimits(member_bytes=8 * 1024**2))
    assert any(
        f.code == "archive_limit" and f.file == "stop_times.txt" and "8 MiB, the limit for one file" in f.message
        for f in per_file.errors
    ), [str(f) for f in per_file.errors]
    in_total = validate_gtfs(milano, limits=ArchiveLimits(total_bytes=16 * 1024**2))
    assert any("declares 21.3 MiB uncompressed, more than the limit of 16 MiB" in f.message for f in in_total.errors)
    members = validate_gtfs(milano, limits=ArchiveLimits(members=5))
    assert any("8 entries, more than the limit of 5" in f.message for f in members.errors)


def test_findings_past_the_first_chunk_keep_their_lines_and_one_summary(tmp_path: Path) -> None:
    # Milano's 248,555 stop times are read in three chunks; bad times in the second and third keep
    # their file lines, and the 25 of them are 20 findings and one summary, as in a file read whole.
    milano = shared("gtfs", "milano-small-2014.gtfs.zip")
    bad_lines = [150_000 + 4_000 * k for k in range(25)]

    def break_times(text: str) -> str:
        for line in bad_lines:
            text = edit_line(line, "arrival_time", "7h30")(text)
        return text

    path = derive_feed(milano, tmp_path / "late-errors.zip", {"stop_times.txt": break_times})
    report = validate_gtfs(path)
    bad = [f for f in report.errors if f.code == "invalid_time" and f.field == "arrival_time"]
    assert [f.line for f in bad if f.line is not None] == bad_lines[:20]
    assert [f.message for f in bad if f.line is None] == ["arrival_time is not a HH:MM:SS time: 5 more rows like this"]
