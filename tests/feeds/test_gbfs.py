"""GBFS loading of the real feeds, from directories and over a local HTTP server, and of broken copies."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from feeds import gbfs
from feeds.gbfs import GbfsError, SharingSystem, load_gbfs
from tests.helpers import copy_feed, edit_json, point_discovery_at, serve_directory, serve_http

SHARED_DATA = Path(__file__).parents[3] / "shared" / "data"
HERRENBERG_GBFS = SHARED_DATA / "region-herrenberg" / "gbfs"
GBFS = SHARED_DATA / "gbfs"

# Every real feed with the version its gbfs.json declares (helsinki declares none: GBFS 1.0).
REAL_FEEDS = {
    "stadtrad": (HERRENBERG_GBFS / "stadtrad", "2.3"),
    "alf": (HERRENBERG_GBFS / "alf", "2.3"),
    "bananologen": (HERRENBERG_GBFS / "bananologen", "2.3"),
    "gueltstein-mobil": (HERRENBERG_GBFS / "gueltstein-mobil", "2.3"),
    "car-sharing": (HERRENBERG_GBFS / "car-sharing", "2.2"),
    "tieroslo": (GBFS / "tieroslo", "2.3"),
    "almere": (GBFS / "ridecheck" / "almere", "3.0"),
    "lillestrombysykkel": (GBFS / "lillestrombysykkel", "2.2"),
    "helsinki": (GBFS / "helsinki", "1.0"),
}


def _raw(directory: Path, name: str) -> dict[str, Any] | None:
    path = directory / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _raw_counts(directory: Path) -> dict[str, int]:
    """Counts read with the json module, independently of the loader under test."""
    info = _raw(directory, "station_information")
    types = _raw(directory, "vehicle_types")
    vehicles = _raw(directory, "vehicle_status") or _raw(directory, "free_bike_status")
    zones = _raw(directory, "geofencing_zones")
    return {
        "stations": len(info["data"]["stations"]) if info else 0,
        "vehicle_types": len(types["data"]["vehicle_types"]) if types else 0,
        "vehicles": len(vehicles["data"].get("vehicles", vehicles["data"].get("bikes", []))) if vehicles else 0,
        "zones": len(zones["data"]["geofencing_zones"]["features"]) if zones else 0,
    }


def _load_one(source: str | Path) -> SharingSystem:
    systems = load_gbfs(source)
    assert len(systems) == 1
    return systems[0]


def _codes(system: SharingSystem) -> list[str]:
    return [f.code for f in system.report.findings]


# --------------------------------------------------------------------------------------------
# A local HTTP server


@pytest.fixture(autouse=True)
def _no_proxy_for_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy configured in the environment would otherwise be asked for 127.0.0.1.
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


# --------------------------------------------------------------------------------------------
# Real feeds


@pytest.mark.parametrize("key", list(REAL_FEEDS))
def test_real_feed_loads_with_counts_of_its_files(key: str) -> None:
    directory, version = REAL_FEEDS[key]
    system = _load_one(directory)
    raw = _raw_counts(directory)
    assert system.version == version
    assert system.report.ok
    assert system.system_id == _raw(directory, "system_information")["data"]["system_id"]
    assert system.source == str(directory / "gbfs.json")
    assert len(system.vehicle_types) == raw["vehicle_types"]
    assert len(system.vehicles) == raw["vehicles"]
    assert len(system.geofencing_zones) == raw["zones"]
    if key == "helsinki":  # three stations are unusable, see test_helsinki_*
        assert len(system.stations) == raw["stations"] - 3
    else:
        assert len(system.stations) == raw["stations"]


def test_herrenberg_cargo_bikes_are_one_station_each_with_status_joined() -> None:
    for key in ("stadtrad", "alf", "bananologen", "gueltstein-mobil"):
        system = _load_one(REAL_FEEDS[key][0])
        (station,) = system.stations
        raw_info = _raw(REAL_FEEDS[key][0], "station_information")["data"]["stations"][0]
        assert (station.station_id, station.lat, station.lon) == (
            raw_info["station_id"],
            raw_info["lat"],
            raw_info["lon"],
        )
        assert station.vehicles_available == 1
        assert station.is_renting and station.is_returning
        (vehicle_type,) = system.vehicle_types
        assert (vehicle_type.form_factor, vehicle_type.propulsion_type) == ("cargo_bicycle", "electric_assist")
        assert system.timezone == "Europe/Berlin"
    stadtrad = _load_one(REAL_FEEDS["stadtrad"][0])
    assert stadtrad.name == "stadtRad - das stadtnavi Lastenrad"
    assert stadtrad.vehicle_types[0].max_range_m == 25000.0
    assert stadtrad.vehicle_types[0].name == "Lastenrad"
    assert stadtrad.stations[0].docks_available is None
    assert stadtrad.report.findings == []
    assert _load_one(REAL_FEEDS["gueltstein-mobil"][0]).stations[0].docks_available == 1


def test_gueltstein_misspelt_max_range_is_a_warning_naming_the_key() -> None:
    system = _load_one(REAL_FEEDS["gueltstein-mobil"][0])
    (finding,) = system.report.findings
    assert finding.code == "gbfs_missing_max_range"
    assert finding.file == "vehicle_types.json"
    assert finding.field == "data.vehicle_types[0].max_range_meters"
    assert "max_range_meter'" in finding.message
    assert system.vehicle_types[0].max_range_m is None


def test_car_sharing_minus_one_availability_is_unknown_with_warnings() -> None:
    directory = REAL_FEEDS["car-sharing"][0]
    system = _load_one(directory)
    raw_status = _raw(directory, "station_status")["data"]["stations"]
    assert len(system.stations) == 254
    assert all(s["num_bikes_available"] == -1 for s in raw_status)
    assert all(s.vehicles_available is None for s in system.stations)
    assert all(s.docks_available is None for s in system.stations)
    assert all(s.is_renting and s.is_returning for s in system.stations)
    negative = [f for f in system.report.findings if f.code == "gbfs_negative_count"]
    # One finding per station up to the cap, then one line for the rest.
    assert len(negative) == gbfs.MAX_FINDINGS_PER_KIND + 1
    assert all(f.file == "station_status.json" and f.severity == "warning" for f in negative)
    assert negative[0].field == "data.stations[0].num_bikes_available"
    assert negative[-1].message == f"{254 - gbfs.MAX_FINDINGS_PER_KIND} more like this"
    assert system.timezone == "CET"
    assert system.name == "Stadtmobil Stuttgart"


def test_tieroslo_geofencing_zones_keep_geometry_and_rules() -> None:
    directory = REAL_FEEDS["tieroslo"][0]
    system = _load_one(directory)
    features = _raw(directory, "geofencing_zones")["data"]["geofencing_zones"]["features"]
    assert [z.name for z in system.geofencing_zones] == [f["properties"]["name"] for f in features]
    for zone, feature in zip(system.geofencing_zones, features, strict=True):
        assert zone.geometry == feature["geometry"]
        assert zone.geometry is not None and zone.geometry["type"] == "MultiPolygon"
        assert zone.rules == feature["properties"]["rules"]
    assert system.geofencing_zones[1].rules[0]["ride_allowed"] is False
    assert system.stations == [] and system.vehicles == []
    assert system.report.findings == []


def test_almere_v3_null_geometries_are_warnings_and_localized_names_are_read() -> None:
    directory = REAL_FEEDS["almere"][0]
    system = _load_one(directory)
    features = _raw(directory, "geofencing_zones")["data"]["geofencing_zones"]["features"]
    null_indices = [i for i, f in enumerate(features) if f["geometry"] is None]
    assert len(null_indices) == 2
    null_findings = [f for f in system.report.findings if f.code == "gbfs_null_geometry"]
    assert [f.field for f in null_findings] == [f"data.geofencing_zones.features[{i}].geometry" for i in null_indices]
    assert all(f.file == "geofencing_zones.json" for f in null_findings)
    assert [i for i, z in enumerate(system.geofencing_zones) if z.geometry is None] == null_indices
    assert _codes(system) == ["gbfs_null_geometry", "gbfs_null_geometry"]
    assert system.geofencing_zones[0].name == "Hub Bergnet"
    # languages are ["en", "nl"]: the English text, not the first entry by chance only.
    assert system.name == "Check Technologies"
    assert system.geofencing_zones[13].name == "Almere Stad"
    assert system.system_id == "check_almere"


def test_almere_v3_vehicles_and_types() -> None:
    directory = REAL_FEEDS["almere"][0]
    system = _load_one(directory)
    raw = _raw(directory, "vehicle_status")["data"]["vehicles"]
    assert [v.vehicle_id for v in system.vehicles] == [v["vehicle_id"] for v in raw]
    assert [v.current_range_m for v in system.vehicles] == [float(v["current_range_meters"]) for v in raw]
    assert sum(v.is_reserved for v in system.vehicles) == sum(v["is_reserved"] for v in raw) == 1
    assert sum(v.is_disabled for v in system.vehicles) == sum(v["is_disabled"] for v in raw) == 1
    assert (system.vehicles[0].lat, system.vehicles[0].lon) == (52.40078, 5.29054)
    assert all(v.station_id is None for v in system.vehicles)
    (vehicle_type,) = system.vehicle_types
    assert vehicle_type.vehicle_type_id == "check_moped_almere_60"
    assert (vehicle_type.form_factor, vehicle_type.propulsion_type) == ("moped", "electric")
    assert vehicle_type.max_range_m == 60000.0
    assert vehicle_type.name is None


def test_lillestrom_status_is_joined_by_station_id_not_by_position() -> None:
    directory = REAL_FEEDS["lillestrombysykkel"][0]
    system = _load_one(directory)
    raw_status = {s["station_id"]: s for s in _raw(directory, "station_status")["data"]["stations"]}
    for station in system.stations:
        assert station.vehicles_available == raw_status[station.station_id]["num_bikes_available"]
        assert station.docks_available == raw_status[station.station_id]["num_docks_available"]
    by_id = {s.station_id: s for s in system.stations}
    assert by_id["YLS:VehicleSharingParkingArea:3"].name == "TORVGATA"
    assert by_id["YLS:VehicleSharingParkingArea:3"].capacity == 3
    # Every station reports more bikes and docks than its capacity: suspicious, still usable.
    assert _codes(system) == ["gbfs_capacity_exceeded"] * 6
    (vehicle_type,) = system.vehicle_types
    assert (vehicle_type.propulsion_type, vehicle_type.name, vehicle_type.max_range_m) == ("human", None, None)


def test_helsinki_station_without_coordinates_is_skipped_with_a_warning() -> None:
    system = _load_one(REAL_FEEDS["helsinki"][0])
    missing = [f for f in system.report.findings if f.code == "gbfs_missing_coordinates"]
    assert len(missing) == 1
    assert missing[0].file == "station_information.json"
    assert missing[0].field == "data.stations[9].lat"
    assert "'010'" in missing[0].message
    assert "010" not in {s.station_id for s in system.stations}


def test_helsinki_other_defects_are_warnings() -> None:
    system = _load_one(REAL_FEEDS["helsinki"][0])
    codes = _codes(system)
    assert codes.count("gbfs_version_missing") == 1
    # station_id null and "" cannot be joined: skipped; their status rows are then unknown.
    assert codes.count("gbfs_missing_station_id") == 2
    assert codes.count("gbfs_unknown_station") == 2
    assert codes.count("gbfs_missing_name") == 2
    # GBFS 1.0 wrote booleans as 1/0: read without complaint.
    assert "gbfs_bool_as_int" not in codes
    by_id = {s.station_id: s for s in system.stations}
    assert sorted(by_id) == ["001", "002", "003", "004", "005", "008", "009"]
    assert by_id["008"].name == "008"
    assert (by_id["001"].vehicles_available, by_id["001"].docks_available) == (2, 29)
    assert not by_id["004"].is_renting and not by_id["004"].is_returning
    assert by_id["001"].is_renting


# --------------------------------------------------------------------------------------------
# Over HTTP, and through a manifest


@pytest.mark.parametrize("key", ["almere", "car-sharing", "helsinki"])
def test_feed_served_over_http_loads_like_the_directory(key: str, tmp_path: Path) -> None:
    directory = REAL_FEEDS[key][0]
    served = copy_feed(directory, tmp_path / key)
    with serve_directory(served) as base:
        point_discovery_at(served, base)
        url = f"{base}/gbfs.json"
        over_http = _load_one(url)
    from_disk = _load_one(directory)
    assert over_http.source == url
    for field in (
        "system_id",
        "name",
        "version",
        "timezone",
        "vehicle_types",
        "stations",
        "vehicles",
        "geofencing_zones",
    ):
        assert getattr(over_http, field) == getattr(from_disk, field), field
    assert over_http.report.findings == from_disk.report.findings


def test_http_feed_with_file_urls_is_read_from_next_to_gbfs_json(tmp_path: Path) -> None:
    # helsinki's gbfs.json points to `file:` paths; over HTTP they must not be read locally.
    served = copy_feed(REAL_FEEDS["helsinki"][0], tmp_path / "helsinki")
    with serve_directory(served) as base:
        system = _load_one(f"{base}/gbfs.json")
    assert len(system.stations) == 7


def _write_manifest(root: Path, base_url: str) -> None:
    manifest = {
        "last_updated": "2025-05-21T07:47:43+00:00",
        "ttl": 600,
        "version": "3.0",
        "data": {
            "datasets": [
                {
                    "system_id": "check_almere",
                    "versions": [
                        {"version": "2.3", "url": f"{base_url}/v2/almere/gbfs.json"},
                        {"version": "3.0", "url": f"{base_url}/almere/gbfs.json"},
                    ],
                },
                {
                    "system_id": "tieroslo",
                    "versions": [{"version": "2.3", "url": f"{base_url}/tieroslo/gbfs.json"}],
                },
            ]
        },
    }
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_manifest_in_a_directory_lists_two_systems(tmp_path: Path) -> None:
    copy_feed(REAL_FEEDS["almere"][0], tmp_path / "almere")
    copy_feed(REAL_FEEDS["tieroslo"][0], tmp_path / "tieroslo")
    _write_manifest(tmp_path, "https://gbfs.example.org/feeds")
    systems = load_gbfs(tmp_path)
    assert [(s.system_id, s.version) for s in systems] == [("check_almere", "3.0"), ("tieroslo", "2.3")]
    assert systems[0].source == str(tmp_path / "almere" / "gbfs.json")
    assert len(systems[0].geofencing_zones) == 16
    assert len(systems[1].geofencing_zones) == 2
    assert load_gbfs(tmp_path / "manifest.json") == systems


def test_manifest_over_http(tmp_path: Path) -> None:
    almere = copy_feed(REAL_FEEDS["almere"][0], tmp_path / "almere")
    tieroslo = copy_feed(REAL_FEEDS["tieroslo"][0], tmp_path / "tieroslo")
    with serve_directory(tmp_path) as base:
        point_discovery_at(almere, f"{base}/almere")
        point_discovery_at(tieroslo, f"{base}/tieroslo")
        _write_manifest(tmp_path, base)
        systems = load_gbfs(f"{base}/manifest.json")
    assert [s.system_id for s in systems] == ["check_almere", "tieroslo"]
    assert [len(s.vehicles) for s in systems] == [6, 0]
    assert systems[1].source.endswith("/tieroslo/gbfs.json")


def test_manifest_system_id_differing_from_system_information_is_a_warning(tmp_path: Path) -> None:
    copy_feed(REAL_FEEDS["tieroslo"][0], tmp_path / "oslo")
    manifest = {
        "version": "3.0",
        "data": {
            "datasets": [
                {"system_id": "oslo", "versions": [{"version": "2.3", "url": "https://x.org/oslo/gbfs.json"}]},
            ]
        },
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (system,) = load_gbfs(tmp_path)
    assert system.system_id == "tieroslo"
    assert _codes(system) == ["gbfs_system_id_mismatch"]


# --------------------------------------------------------------------------------------------
# Suspicious but usable


def test_directory_without_gbfs_json_is_read_by_file_names(tmp_path: Path) -> None:
    feed = copy_feed(REAL_FEEDS["lillestrombysykkel"][0], tmp_path / "feed")
    (feed / "gbfs.json").unlink()
    system = _load_one(feed)
    assert len(system.stations) == 6 and len(system.vehicle_types) == 1
    assert system.version == "2.2"
    assert system.source == str(feed)


def test_missing_optional_file_is_a_warning(tmp_path: Path) -> None:
    feed = copy_feed(REAL_FEEDS["almere"][0], tmp_path / "almere")
    (feed / "geofencing_zones.json").unlink()
    system = _load_one(feed)
    assert system.geofencing_zones == []
    (finding,) = [f for f in system.report.findings if f.code == "gbfs_missing_file"]
    assert finding.file == "geofencing_zones.json"


def test_missing_station_status_leaves_stations_unusable_with_a_warning(tmp_path: Path) -> None:
    feed = copy_feed(REAL_FEEDS["helsinki"][0], tmp_path / "helsinki")
    (feed / "station_status.json").unlink()
    system = _load_one(feed)
    assert len(system.stations) == 7
    assert not any(s.is_renting or s.is_returning for s in system.stations)
    assert all(s.vehicles_available is None for s in system.stations)
    assert _codes(system).count("gbfs_missing_file") == 1


def test_numeric_string_lat_is_read_with_a_warning(tmp_path: Path) -> None:
    feed = copy_feed(REAL_FEEDS["stadtrad"][0], tmp_path / "stadtrad")

    def edit(doc: dict[str, Any]) -> None:
        doc["data"]["stations"][0]["lat"] = "48.597547"

    edit_json(feed / "station_information.json", edit)
    system = _load_one(feed)
    assert system.stations[0].lat == 48.597547
    (finding,) = system.report.findings
    assert (finding.code, finding.field) == ("gbfs_number_as_string", "data.stations[0].lat")


def test_polygon_zone_is_read_as_multipolygon(tmp_path: Path) -> None:
    feed = copy_feed(REAL_FEEDS["tieroslo"][0], tmp_path / "tieroslo")
    polygon: list[Any] = []

    def edit(doc: dict[str, Any]) -> None:
        geometry = doc["data"]["geofencing_zones"]["features"][0]["geometry"]
        polygon.append(geometry["coordinates"][0])
        doc["data"]["geofencing_zones"]["features"][0]["geometry"] = {
            "type": "Polygon",
            "coordinates": geometry["coordinates"][0],
        }

    edit_json(feed / "geofencing_zones.json", edit)
    system = _load_one(feed)
    assert system.geofencing_zones[0].geometry == {"type": "MultiPolygon", "coordinates": polygon}
    assert _codes(system) == ["gbfs_geometry_not_multipolygon"]


def test_v2_free_bike_status_is_read(tmp_path: Path) -> None:
    feed = copy_feed(REAL_FEEDS["lillestrombysykkel"][0], tmp_path / "feed")
    bikes = {
        "last_updated": 1,
        "ttl": 0,
        "version": "2.2",
        "data": {
            "bikes": [
                {
                    "bike_id": "b1",
                    "lat": 59.95,
                    "lon": 11.04,
                    "is_reserved": False,
                    "is_disabled": False,
                    "vehicle_type_id": "YLS:VehicleType:CityBike",
                },
                {
                    "bike_id": "b2",
                    "station_id": "YLS:VehicleSharingParkingArea:3",
                    "is_reserved": True,
                    "is_disabled": False,
                },
                {"bike_id": "b3", "is_reserved": False, "is_disabled": False},
            ]
        },
    }
    (feed / "free_bike_status.json").write_text(json.dumps(bikes), encoding="utf-8")

    def edit(doc: dict[str, Any]) -> None:
        doc["data"]["nb"]["feeds"].append({"name": "free_bike_status", "url": "https://x/fbs.json"})

    edit_json(feed / "gbfs.json", edit)
    system = _load_one(feed)
    assert [v.vehicle_id for v in system.vehicles] == ["b1", "b2"]
    assert system.vehicles[1].station_id == "YLS:VehicleSharingParkingArea:3"
    assert (system.vehicles[1].lat, system.vehicles[1].lon) == (None, None)
    assert system.vehicles[1].is_reserved
    (finding,) = [f for f in system.report.findings if f.code == "gbfs_missing_coordinates"]
    assert (finding.file, finding.field) == ("free_bike_status.json", "data.bikes[2].lat")


# --------------------------------------------------------------------------------------------
# Unusable input


def test_invalid_json_names_the_file(tmp_path: Path) -> None:
    feed = copy_feed(REAL_FEEDS["stadtrad"][0], tmp_path / "stadtrad")
    (feed / "station_status.json").write_text('{"data": {"stations": [', encoding="utf-8")
    with pytest.raises(GbfsError, match=r"station_status\.json: invalid JSON"):
        load_gbfs(feed)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(GbfsError, match="no-such-feed: no such file or directory"):
        load_gbfs(tmp_path / "no-such-feed")


def test_directory_without_any_gbfs_file(tmp_path: Path) -> None:
    feed = copy_feed(REAL_FEEDS["stadtrad"][0], tmp_path / "stadtrad")
    for name in ("gbfs.json", "system_information.json"):
        (feed / name).unlink()
    with pytest.raises(GbfsError, match=r"no gbfs\.json, manifest\.json or system_information\.json"):
        load_gbfs(feed)


def test_missing_system_information_listed_in_gbfs_json(tmp_path: Path) -> None:
    feed = copy_feed(REAL_FEEDS["alf"][0], tmp_path / "alf")
    (feed / "system_information.json").unlink()
    with pytest.raises(GbfsError, match=r"system_information\.json is required"):
        load_gbfs(feed)


def test_non_numeric_lat_names_file_and_field(tmp_path: Path) -> None:
    feed = copy_feed(REAL_FEEDS["helsinki"][0], tmp_path / "helsinki")

    def edit(doc: dict[str, Any]) -> None:
        doc["data"]["stations"][2]["lat"] = "north"

    edit_json(feed / "station_information.json", edit)
    with pytest.raises(GbfsError, match=r"station_information\.json \[data\.stations\[2\]\.lat\]"):
        load_gbfs(feed)


def test_gbfs_json_without_feeds(tmp_path: Path) -> None:
    feed = copy_feed(REAL_FEEDS["car-sharing"][0], tmp_path / "car-sharing")
    (feed / "gbfs.json").write_text(
        json.dumps({"last_updated": 1, "ttl": 0, "version": "2.2", "data": {"de": {}}}),
        encoding="utf-8",
    )
    with pytest.raises(GbfsError, match=r"gbfs\.json \[data\.feeds\]: no feeds listed"):
        load_gbfs(feed)


def test_file_that_is_not_a_gbfs_object(tmp_path: Path) -> None:
    feed = copy_feed(REAL_FEEDS["almere"][0], tmp_path / "almere")
    (feed / "vehicle_status.json").write_text('{"data": [1, 2]}', encoding="utf-8")
    with pytest.raises(GbfsError, match=r"vehicle_status\.json: not a GBFS file.*\$\.data"):
        load_gbfs(feed)


def test_wrong_type_deep_inside_names_the_path(tmp_path: Path) -> None:
    feed = copy_feed(REAL_FEEDS["almere"][0], tmp_path / "almere")

    def edit(doc: dict[str, Any]) -> None:
        doc["data"]["vehicles"][3]["is_reserved"] = "maybe"

    edit_json(feed / "vehicle_status.json", edit)
    with pytest.raises(GbfsError, match=r"vehicle_status\.json \[data\.vehicles\[3\]\.is_reserved\]"):
        load_gbfs(feed)


def test_manifest_without_datasets(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"data": {"datasets": []}}', encoding="utf-8")
    with pytest.raises(GbfsError, match=r"manifest\.json \[data\.datasets\]"):
        load_gbfs(tmp_path)


def test_manifest_system_missing_from_directory(tmp_path: Path) -> None:
    _write_manifest(tmp_path, "https://gbfs.example.org/feeds")
    with pytest.raises(GbfsError, match=r"manifest\.json: the gbfs\.json of 'check_almere'"):
        load_gbfs(tmp_path)


def test_huge_local_file_is_refused(tmp_path: Path) -> None:
    feed = copy_feed(REAL_FEEDS["tieroslo"][0], tmp_path / "tieroslo")
    (feed / "geofencing_zones.json").write_bytes(b" " * (gbfs.MAX_FILE_BYTES + 1))
    with pytest.raises(GbfsError, match=r"geofencing_zones\.json: .* MB, more than the limit"):
        load_gbfs(feed)


def test_huge_file_over_http_is_refused(tmp_path: Path) -> None:
    served = copy_feed(REAL_FEEDS["tieroslo"][0], tmp_path / "tieroslo")
    (served / "geofencing_zones.json").write_bytes(b" " * (gbfs.MAX_FILE_BYTES + 1024))
    with serve_directory(served) as base:
        point_discovery_at(served, base)
        with pytest.raises(GbfsError, match=r"geofencing_zones\.json: announces .* MB, more than"):
            load_gbfs(f"{base}/gbfs.json")


class _UnannouncedHugeHandler(BaseHTTPRequestHandler):
    """Sends an endless body without Content-Length, so only counting the bytes can stop it."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        for _ in range(1000):
            self.wfile.write(b" " * 1024)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_huge_file_without_content_length_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gbfs, "MAX_FILE_BYTES", 64 * 1024)
    with (
        serve_http(_UnannouncedHugeHandler) as base,
        pytest.raises(GbfsError, match=r"gbfs\.json: more than the limit"),
    ):
        load_gbfs(f"{base}/gbfs.json")


def test_http_missing_system_information_names_the_url(tmp_path: Path) -> None:
    served = copy_feed(REAL_FEEDS["alf"][0], tmp_path / "alf")
    (served / "system_information.json").unlink()
    with serve_directory(served) as base:
        point_discovery_at(served, base)
        with pytest.raises(GbfsError, match=rf"{base}/system_information\.json: HTTP 404"):
            load_gbfs(f"{base}/gbfs.json")


def test_unreachable_server(tmp_path: Path) -> None:
    with serve_directory(tmp_path) as base:
        pass  # the port is closed again
    with pytest.raises(GbfsError, match=r"gbfs\.json: cannot be fetched"):
        load_gbfs(f"{base}/gbfs.json")
