"""Shared test fixtures: where the real data lives, and a way to derive broken feeds from real ones."""

from __future__ import annotations

import signal
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HERRENBERG = SHARED_DATA / "region-herrenberg"


def pytest_configure(config: pytest.Config) -> None:
    # A run ended by SIGTERM (a timeout, kill) tears its fixtures down as after Ctrl-C, so that the
    # embedded PostgreSQL of the session stops with it.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"{path}: the tests need the shared real data next to the repository")
    return path


Change = bytes | str | None | Callable[[str], str]


def derive_feed(source: Path, target: Path, changes: dict[str, Change]) -> Path:
    """Copy a real GTFS zip with some files replaced (bytes/str), removed (None) or edited (text -> text)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        names = [i.filename for i in src.infolist()]
        for name in names:
            if name in changes:
                change = changes[name]
                if change is None:
                    continue
                if callable(change):
                    change = change(src.read(name).decode("utf-8-sig"))
                dst.writestr(name, change if isinstance(change, bytes) else change.encode("utf-8"))
            else:
                dst.writestr(name, src.read(name))
        for name, change in changes.items():
            if name not in names and change is not None and not callable(change):
                dst.writestr(name, change if isinstance(change, bytes) else change.encode("utf-8"))
    return target


@pytest.fixture
def small_feed() -> Path:
    """A small real feed (VVS bus 764, 17 stops, 26 trips)."""
    return shared("region-herrenberg", "gtfs", "vvs-bus-764-only.gtfs.zip")


def _build_herrenberg(gtfs: list[Path], out: Path) -> Path:
    """The Herrenberg network of these GTFS feeds and the region's OSM extract."""
    from routing.builder import BuildInputs, build_network

    build_network(BuildInputs(gtfs=[str(p) for p in gtfs], osm=str(HERRENBERG / "herrenberg-and-around.osm.pbf")), out)
    return out


@pytest.fixture(scope="session")
def network_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Herrenberg network (all five VVS feeds and the OSM extract), built once per test session."""
    return _build_herrenberg(sorted((HERRENBERG / "gtfs").glob("*.zip")), tmp_path_factory.mktemp("herrenberg") / "net")


@pytest.fixture(scope="session")
def today_network_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Herrenberg network of `network_dir` with its timetables moved by whole weeks as `maas demo`
    moves them (maas.demo.shift_feeds_to_today): they run in the week the tests run and the three after."""
    from maas.demo import shift_feeds_to_today

    base = tmp_path_factory.mktemp("herrenberg-today")
    feeds = shift_feeds_to_today(sorted((HERRENBERG / "gtfs").glob("*.zip")), base / "feeds")
    return _build_herrenberg(feeds, base / "net")
