"""Moving the real VVS feeds in time: the service days move exactly, nothing else changes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from feeds.gtfs import GtfsError, read_gtfs
from feeds.gtfs_shift import DATE_FIELDS, shift_service_dates
from tests.conftest import HERRENBERG, derive_feed
from tests.helpers import edit_line

VVS_FEEDS = sorted((HERRENBERG / "gtfs").glob("*.zip"))


def _running_dates(path: Path) -> dict[str, list[dt.date]]:
    """The dates each service of a feed runs on, as the reader sees them (service ids without the feed prefix)."""
    services = read_gtfs(path).services
    return {
        sid.split(":", 1)[1]: [services.first_date + dt.timedelta(days=int(d)) for d in np.flatnonzero(row)]
        for sid, row in zip(services.service_ids, services.active)
    }


@pytest.mark.parametrize("path", VVS_FEEDS, ids=lambda p: p.name)
def test_every_service_day_moves_by_whole_weeks_and_keeps_its_weekday(path: Path, tmp_path: Path) -> None:
    weeks = 291  # 2020-10-06 (a Tuesday) becomes 2026-04-28 (a Tuesday)
    shifted = shift_service_dates(path, tmp_path / path.name, 7 * weeks)
    before, after = _running_dates(path), _running_dates(shifted)
    assert before.keys() == after.keys()
    for sid, dates in before.items():
        assert after[sid] == [d + dt.timedelta(weeks=weeks) for d in dates], sid
        assert [d.weekday() for d in after[sid]] == [d.weekday() for d in dates]
    original, moved = read_gtfs(path), read_gtfs(shifted)
    assert original.counts.service_start is not None and original.counts.service_end is not None
    assert moved.counts.service_start == original.counts.service_start + dt.timedelta(weeks=weeks)
    assert moved.counts.service_end == original.counts.service_end + dt.timedelta(weeks=weeks)
    assert moved.counts.trips == original.counts.trips and moved.counts.stop_times == original.counts.stop_times
    assert moved.report.findings == original.report.findings


def test_a_shift_by_days_moves_the_dates_while_the_weekday_flags_still_name_weekdays(tmp_path: Path) -> None:
    # Three days earlier: the exceptions move by three days, the Monday-to-Friday service stays on
    # Monday to Friday (calendar.txt says which weekdays, not which dates), so only whole weeks move
    # every service day exactly.
    path = HERRENBERG / "gtfs" / "vvs-s1-only.gtfs.zip"
    shifted = shift_service_dates(path, tmp_path / "earlier.zip", -3)
    before, after = _running_dates(path), _running_dates(shifted)
    assert {d.weekday() for d in after["T0"]} == {d.weekday() for d in before["T0"]} == {0, 1, 2, 3, 4}
    assert min(after["T0"]) >= dt.date(2020, 6, 1) - dt.timedelta(days=3)
    assert max(after["T0"]) <= dt.date(2020, 12, 12) - dt.timedelta(days=3)
    # T0 is removed on every weekday of 2020-06-01..06-12; moved, 06-09 (a Tuesday) is removed but 06-10 runs.
    assert dt.date(2020, 6, 9) not in after["T0"] and dt.date(2020, 6, 10) in after["T0"]


@pytest.mark.parametrize("path", VVS_FEEDS, ids=lambda p: p.name)
def test_only_the_date_cells_change(path: Path, tmp_path: Path) -> None:
    shifted = shift_service_dates(path, tmp_path / path.name, 7 * 300)
    with zipfile.ZipFile(path) as a, zipfile.ZipFile(shifted) as b:
        assert [i.filename for i in a.infolist()] == [i.filename for i in b.infolist()]
        for info in a.infolist():
            copy = b.getinfo(info.filename)
            assert (copy.date_time, copy.compress_type) == (info.date_time, info.compress_type)
            old, new = a.read(info), b.read(copy)
            if info.filename not in DATE_FIELDS:
                assert old == new, info.filename
                continue
            assert len(old) == len(new), info.filename
            changed = [k for k in range(len(old)) if old[k] != new[k]]
            assert changed, info.filename
            assert all(chr(old[k]).isdigit() and chr(new[k]).isdigit() for k in changed)
            old_rows = list(csv.DictReader(io.StringIO(old.decode("utf-8-sig"))))
            new_rows = list(csv.DictReader(io.StringIO(new.decode("utf-8-sig"))))
            for was, now in zip(old_rows, new_rows, strict=True):
                for field, value in was.items():
                    if field in DATE_FIELDS[info.filename] and value:
                        moved = dt.datetime.strptime(value, "%Y%m%d") + dt.timedelta(weeks=300)
                        assert now[field] == f"{moved:%Y%m%d}"
                    else:
                        assert now[field] == value


def test_feed_info_dates_move_and_its_quotes_and_version_stay(tmp_path: Path) -> None:
    path = HERRENBERG / "gtfs" / "vvs-herrenberg-2021-subset.gtfs.zip"
    shifted = shift_service_dates(path, tmp_path / "subset.zip", 7 * 250)
    with zipfile.ZipFile(shifted) as zf:
        row = zf.read("feed_info.txt").splitlines()[1]
    assert row == b'"VVS","http://www.vvs.de","DE","20260331","20260701","20210615"'


def test_a_quoted_cell_with_line_breaks_byte_order_mark_and_blank_optional_dates(tmp_path: Path) -> None:
    path = HERRENBERG / "gtfs" / "vvs-bus-764-only.gtfs.zip"
    feed_info = (
        "\ufefffeed_publisher_name,feed_publisher_url,feed_lang,feed_start_date,feed_end_date\r\n"
        '"VVS, ""Verkehrs-\r\nund Tarifverbund""",http://www.vvs.de,de, 20200202 ,\r\n'
    )
    derived = derive_feed(path, tmp_path / "with-info.zip", {"feed_info.txt": feed_info})
    shifted = shift_service_dates(derived, tmp_path / "shifted.zip", 1)
    with zipfile.ZipFile(shifted) as zf:
        text = zf.read("feed_info.txt").decode("utf-8")
    assert text == feed_info.replace("20200202", "20200203")


@pytest.mark.parametrize(
    ("file", "line", "field", "value", "message"),
    [
        ("calendar.txt", 3, "start_date", "2020-02-02", "'2020-02-02' is not a YYYYMMDD date"),
        ("calendar.txt", 4, "end_date", "20201232", "'20201232' is not a date of the calendar"),
        ("calendar_dates.txt", 7, "date", "", "the date is missing"),
    ],
)
def test_a_malformed_date_is_named_with_file_line_and_field(
    file: str, line: int, field: str, value: str, message: str, tmp_path: Path
) -> None:
    path = HERRENBERG / "gtfs" / "vvs-bus-764-only.gtfs.zip"
    broken = derive_feed(path, tmp_path / "broken.zip", {file: edit_line(line, field, value)})
    target = tmp_path / "shifted.zip"
    with pytest.raises(GtfsError, match=f"broken.zip: {file}:{line} \\[{field}\\]: {message}"):
        shift_service_dates(broken, target, 7)
    assert not target.exists() and list(tmp_path.iterdir()) == [broken]


def test_a_shift_onto_itself_or_from_a_non_archive_is_refused(tmp_path: Path) -> None:
    path = HERRENBERG / "gtfs" / "vvs-bus-764-only.gtfs.zip"
    with pytest.raises(GtfsError, match="another path"):
        shift_service_dates(path, path, 7)
    text = tmp_path / "feed.zip"
    text.write_text("agency_id\n")
    with pytest.raises(GtfsError, match="not a zip archive"):
        shift_service_dates(text, tmp_path / "out.zip", 7)
