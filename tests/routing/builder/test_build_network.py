"""Building networks from the real Herrenberg and Cobb County data, checked against the raw files."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from maas.cli import main
from routing.builder import BuildError, BuildInputs, build_network
from routing.network import NetworkError, load_network, read_manifest
from routing.spatial import haversine_m
from tests.conftest import HERRENBERG, shared

HERRENBERG_FEEDS = sorted((HERRENBERG / "gtfs").glob("*.zip"))
HERRENBERG_GBFS = sorted(p for p in (HERRENBERG / "gbfs").iterdir() if p.is_dir())


def _rows(zip_path: Path, table: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(zip_path) as zf:
        text = zf.read(f"{table}.txt").decode("utf-8-sig")
    return [r for r in csv.DictReader(io.StringIO(text)) if any((v or "").strip() for v in r.values())]


def _gbfs_stations(directory: Path) -> int:
    info = json.loads((directory / "station_information.json").read_text())
    return sum(1 for s in info["data"]["stations"] if s.get("lat") is not None and s.get("lon") is not None)


@pytest.fixture(scope="module")
def herrenberg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("net") / "herrenberg"
    args = [
        "network",
        "build",
        "--osm",
        str(HERRENBERG / "herrenberg-and-around.osm.pbf"),
        "--out",
        str(out),
        "--quiet",
    ]
    for feed in HERRENBERG_FEEDS:
        args += ["--gtfs", str(feed)]
    for system in HERRENBERG_GBFS:
        args += ["--gbfs", str(system)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out


def test_info_counts_equal_the_raw_files(herrenberg: Path) -> None:
    result = CliRunner().invoke(main, ["network", "info", str(herrenberg), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert set(info) == {
        "feeds",
        "stops",
        "routes",
        "patterns",
        "trips",
        "stop_times",
        "streets",
        "stops_snapped",
        "stops_unsnapped",
        "transfers",
        "sharing",
    }
    by_id = {f["id"]: f for f in info["feeds"]}
    assert len(by_id) == len(HERRENBERG_FEEDS)
    for path in HERRENBERG_FEEDS:
        feed = by_id[path.name.removesuffix(".gtfs.zip")]
        assert feed["source"] == str(path)
        for table in ("stops", "routes", "trips", "stop_times"):
            assert feed[table] == len(_rows(path, table)), (path.name, table)
        dates = [r["start_date"] for r in _rows(path, "calendar")] + [
            r["date"] for r in _rows(path, "calendar_dates") if r["exception_type"] == "1"
        ]
        assert feed["service_start"].replace("-", "") >= min(dates)
    for key in ("stops", "routes", "trips", "stop_times"):
        assert info[key] == sum(f[key] for f in info["feeds"])
    assert info["stops_snapped"] + info["stops_unsnapped"] == info["stops"]
    assert info["sharing"]["systems"] == len(HERRENBERG_GBFS)
    assert info["sharing"]["stations"] == sum(_gbfs_stations(d) for d in HERRENBERG_GBFS)
    # Measured independently for this extract (osmnx types): drive 3,733 nodes without service roads, walk 15,215.
    assert 3000 < info["streets"]["drive"]["nodes"] < 6000  # service roads are kept for door-to-door pickups
    assert 10000 < info["streets"]["walk"]["nodes"] < 20000
    assert info["streets"]["bike"]["nodes"] > info["streets"]["drive"]["nodes"]
    assert info["patterns"] > 0 and info["transfers"] > 0


def test_timetable_keeps_every_stop_time_in_fifo_patterns(herrenberg: Path) -> None:
    net = load_network(herrenberg)
    tt = net.timetable
    # These feeds have no invalid rows and no one-stop trips: every stop time is in the timetable.
    assert tt.arrival.shape[0] == sum(len(_rows(p, "stop_times")) for p in HERRENBERG_FEEDS)
    assert tt.n_trips == sum(len(_rows(p, "trips")) for p in HERRENBERG_FEEDS)
    for p in range(tt.n_patterns):
        s0, s1 = tt.pattern_stop_offsets[p : p + 2]
        t0, t1 = tt.pattern_trip_offsets[p : p + 2]
        n, k = int(s1 - s0), int(t1 - t0)
        o = int(tt.pattern_stop_time_offsets[p])
        arr = np.asarray(tt.arrival[o : o + n * k]).reshape(k, n)
        dep = np.asarray(tt.departure[o : o + n * k]).reshape(k, n)
        assert (dep >= arr).all() and (arr[:, 1:] >= dep[:, :-1]).all()
        assert (np.diff(dep, axis=0) >= 0).all(), "trips of a pattern never overtake"
    assert int(tt.pattern_stop_time_offsets[-1]) == tt.arrival.shape[0]


def test_one_trip_round_trips_through_the_arrays(herrenberg: Path) -> None:
    net = load_network(herrenberg)
    tt = net.timetable
    path = HERRENBERG / "gtfs" / "vvs-bus-764-only.gtfs.zip"
    raw = [r for r in _rows(path, "stop_times") if r["trip_id"] == "1.T0.31-764-j20-1.1.H"]
    raw.sort(key=lambda r: int(r["stop_sequence"]))
    t = int(np.flatnonzero(tt.trip_id == "vvs-bus-764-only:1.T0.31-764-j20-1.1.H")[0])
    p = int(np.searchsorted(tt.pattern_trip_offsets, t, side="right") - 1)
    s0, s1 = tt.pattern_stop_offsets[p : p + 2]
    n = int(s1 - s0)
    row = t - int(tt.pattern_trip_offsets[p])
    o = int(tt.pattern_stop_time_offsets[p]) + row * n
    stops = [str(tt.stop_id[s]) for s in tt.pattern_stops[s0:s1]]
    assert stops == [f"vvs-bus-764-only:{r['stop_id']}" for r in raw]
    h, m, s = (int(x) for x in raw[0]["departure_time"].split(":"))
    assert int(tt.departure[o]) == h * 3600 + m * 60 + s
    service = str(tt.service_id[tt.trip_service[t]])
    assert service == "vvs-bus-764-only:T0#25"


def test_footpaths_are_walkable_and_respect_transfers_txt(herrenberg: Path) -> None:
    net = load_network(herrenberg)
    tt = net.timetable
    frm = np.repeat(np.arange(tt.n_stops), np.diff(tt.transfer_offsets))
    to = np.asarray(tt.transfer_to)
    straight = haversine_m(tt.stop_lat[frm], tt.stop_lon[frm], tt.stop_lat[to], tt.stop_lon[to])
    walked = np.asarray(tt.transfer_m)
    street = walked > 0
    # A walk on the streets is never shorter than the straight line (a metre of float slack).
    assert (walked[street] + 1.0 >= straight[street]).all()
    assert (tt.transfer_s >= np.floor(walked / 1.3)).all()
    # Street footpaths stay within the 500 m limit; transfers.txt pairs carry 0 m.
    assert walked.max() <= 500.0 + 1e-3
    # VVS forbids some stop-to-stop transfers (transfer_type 3); none of them may be a footpath.
    index = {str(s): i for i, s in enumerate(tt.stop_id)}
    forbidden = {
        (
            index[f"vvs-herrenberg-2021-subset:{r['from_stop_id']}"],
            index[f"vvs-herrenberg-2021-subset:{r['to_stop_id']}"],
        )
        for r in _rows(HERRENBERG / "gtfs" / "vvs-herrenberg-2021-subset.gtfs.zip", "transfers")
        if r["transfer_type"] == "3"
    }
    arcs = set(zip(frm.tolist(), to.tolist(), strict=True))
    assert forbidden and not (forbidden & arcs)


def test_served_stops_in_the_region_snap_to_the_walk_graph(herrenberg: Path) -> None:
    net = load_network(herrenberg)
    tt = net.timetable
    walk = net.snaps["walk"]
    served = np.unique(np.asarray(tt.pattern_stops))
    area = json.loads((HERRENBERG / "herrenberg-and-around.geojson").read_text())
    polygon = shapely.geometry.shape(area["features"][0]["geometry"])
    inside = served[shapely.contains_xy(polygon, tt.stop_lon[served], tt.stop_lat[served])]
    assert len(inside) > 50
    assert (walk.node[inside] >= 0).all(), [str(tt.stop_name[s]) for s in inside if walk.node[s] < 0]
    outside = np.setdiff1d(np.arange(tt.n_stops), served)
    far = outside[haversine_m(tt.stop_lat[outside], tt.stop_lon[outside], 48.59, 8.86) > 30_000]
    assert (walk.node[far] < 0).all(), "stops far outside the extract are reported unsnapped"
    snapped = walk.node >= 0
    graph = net.streets["walk"]
    straight = haversine_m(
        tt.stop_lat[snapped],
        tt.stop_lon[snapped],
        graph.node_lat[walk.node[snapped]],
        graph.node_lon[walk.node[snapped]],
    )
    # The walk to the snap node follows the road: never shorter than the straight line to it.
    assert (walk.distance_m[snapped] + 1.0 >= straight).all()
    assert np.median(walk.distance_m[snapped]) < 100


def test_transit_only_network_uses_straight_line_transfers(tmp_path: Path) -> None:
    feed = shared("gtfs", "bart-2023.gtfs.zip")
    manifest = build_network(BuildInputs(gtfs=[str(feed)]), tmp_path / "bart")
    assert manifest.counts.streets == {}
    assert manifest.counts.stops_snapped == 0
    net = load_network(tmp_path / "bart")
    assert net.timetable.transfer_to.shape[0] > 0
    assert net.streets == {}


def test_cobb_county_builds(tmp_path: Path) -> None:
    region = shared("region-cobb-county")
    inputs = BuildInputs(
        osm=str(region / "cobb-county.filtered.osm.pbf"),
        gtfs=[str(region / "cobblinc-bus-30-only.gtfs.zip"), str(region / "marta-bus-856-only.gtfs.zip")],
    )
    manifest = build_network(inputs, tmp_path / "cobb")
    assert manifest.counts.stops == 187 + 166
    net = load_network(tmp_path / "cobb")
    tt, walk = net.timetable, net.streets["walk"]
    # The OSM extract covers part of the bus lines: every stop within 100 m of one of its streets snaps.
    nearest = np.array(
        [
            haversine_m(lat, lon, walk.node_lat, walk.node_lon).min()
            for lat, lon in zip(tt.stop_lat, tt.stop_lon, strict=True)
        ]
    )
    near = nearest <= 100
    assert near.sum() > 20
    assert (net.snaps["walk"].node[near] >= 0).all()
    assert manifest.counts.stops_snapped >= near.sum()
    assert manifest.timezone == "America/New_York"
    assert set(net.streets) == {"walk", "bike", "drive"}


def test_failed_build_leaves_the_existing_network_intact(tmp_path: Path) -> None:
    feed = shared("region-herrenberg", "gtfs", "vvs-bus-764-only.gtfs.zip")
    out = tmp_path / "net"
    first = build_network(BuildInputs(gtfs=[str(feed)]), out)
    bad = tmp_path / "bad.gtfs.zip"
    bad.write_text("not a zip")
    with pytest.raises(Exception, match="not a zip archive"):
        build_network(BuildInputs(gtfs=[str(feed), str(bad)]), out)
    assert read_manifest(out).created == first.created
    assert load_network(out).timetable.n_trips == 26
    with pytest.raises(BuildError, match="no such file"):
        build_network(BuildInputs(gtfs=[str(tmp_path / "missing.zip")]), out)


def test_cli_reports_bad_input_without_traceback(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = tmp_path / "x.gtfs.zip"
    bad.write_text("hello")
    result = runner.invoke(main, ["network", "build", "--gtfs", str(bad), "--out", str(tmp_path / "n"), "--quiet"])
    assert result.exit_code == 2
    assert "not a zip archive" in result.output and "Traceback" not in result.output
    result = runner.invoke(main, ["network", "info", str(tmp_path)])
    assert result.exit_code == 2 and "manifest.json" in result.output
    result = runner.invoke(main, ["network", "build", "--out", str(tmp_path / "n")])
    assert result.exit_code == 2 and "nothing to build" in result.output


def test_manifest_of_another_format_is_refused(herrenberg: Path, tmp_path: Path) -> None:
    copy = tmp_path / "old"
    copy.mkdir()
    manifest = json.loads((herrenberg / "manifest.json").read_text())
    manifest["format_version"] = 0
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(NetworkError, match="rebuild"):
        load_network(copy)


def test_gbfs_from_a_url_is_built_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers import copy_feed, point_discovery_at, serve_directory

    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    served = copy_feed(HERRENBERG / "gbfs" / "car-sharing", tmp_path / "car-sharing")
    feed = shared("region-herrenberg", "gtfs", "vvs-bus-764-only.gtfs.zip")
    with serve_directory(served) as base:
        point_discovery_at(served, base)
        manifest = build_network(BuildInputs(gtfs=[str(feed)], gbfs=[f"{base}/gbfs.json"]), tmp_path / "net")
    assert manifest.counts.sharing["stations"] == _gbfs_stations(HERRENBERG / "gbfs" / "car-sharing")
    assert [s.path for s in manifest.sources if s.kind == "gbfs"] == [f"{base}/gbfs.json"]
