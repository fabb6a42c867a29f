"""GET /places and the map's GeoJSON (/map/streets, /map/stops) on the Herrenberg network served to the tests."""

from __future__ import annotations

import gzip
import json

import pytest
from litestar.testing import TestClient

from maas.settings import Settings
from routing.network import load_network
from routing.spatial import haversine_m
from tests.maas.conftest import Users


@pytest.fixture(scope="module")
def operator(users: Users) -> dict[str, str]:
    return users.make("operator")[1]


def test_places_finds_the_station_and_a_street_for_riders_and_operators(client: TestClient, users: Users) -> None:
    for role in ("rider", "operator", "admin"):
        answer = client.get("/places", params={"q": "Herrenberg Bahnhof"}, headers=users.make(role)[1])
        assert answer.status_code == 200, answer.text
        first = answer.json()[0]
        assert set(first) == {"id", "label", "kind", "lat", "lon"}
        assert (first["kind"], first["label"]) == ("stop", "Herrenberg Bahnhof")
        assert haversine_m(first["lat"], first["lon"], 48.5935, 8.8630) < 150
    rider = users.make("rider")[1]
    streets = client.get("/places", params={"q": "hindenburgstr", "limit": 50, "near": "48.5958,8.8662"}, headers=rider)
    assert streets.json()[0] == {**streets.json()[0], "kind": "street", "label": "Hindenburgstraße, Herrenberg"}
    assert client.get("/places", params={"q": "qxzvw"}, headers=rider).json() == []
    assert len(client.get("/places", params={"q": "bahnhof", "limit": 3}, headers=rider).json()) == 3
    # A plan takes a stop's id as it is.
    assert first["id"].startswith("stop:")
    driver = users.make("driver")[1]
    assert client.get("/places", params={"q": "Herrenberg"}, headers=driver).status_code == 403


@pytest.mark.parametrize(
    "params",
    [{"q": "H"}, {"q": "H" * 101}, {"q": "Herren\x01berg"}, {}, {"q": "Herrenberg", "limit": 0}],
)
def test_places_refuses_bad_queries_with_a_problem(
    client: TestClient, operator: dict[str, str], params: dict[str, object]
) -> None:
    answer = client.get("/places", params=params, headers=operator)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["detail"]


def test_places_refuses_a_point_off_the_earth(client: TestClient, operator: dict[str, str]) -> None:
    answer = client.get("/places", params={"q": "Herrenberg", "near": "95.0,8.8"}, headers=operator)
    assert answer.status_code == 422, answer.text
    assert "near" in answer.json()["detail"]


def test_map_streets_are_geojson_inside_the_network_gzipped_and_cached(
    client: TestClient, operator: dict[str, str], settings: Settings
) -> None:
    assert settings.network_dir is not None
    drive = load_network(settings.network_dir).streets["drive"]
    south, north = float(drive.node_lat.min()), float(drive.node_lat.max())
    west, east = float(drive.node_lon.min()), float(drive.node_lon.max())
    answer = client.get("/map/streets", headers={**operator, "Accept-Encoding": "gzip"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/geo+json")
    assert answer.headers["content-encoding"] == "gzip"
    collection = answer.json()
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) > 500
    names = set()
    for feature in collection["features"]:
        geometry = feature["geometry"]
        lines = [geometry["coordinates"]] if geometry["type"] == "LineString" else geometry["coordinates"]
        assert feature["properties"]["class"] in ("major", "main", "minor")
        names.add(feature["properties"]["name"])
        for line in lines:
            assert len(line) >= 2
            for lon, lat in line:
                assert west - 1e-5 <= lon <= east + 1e-5 and south - 1e-5 <= lat <= north + 1e-5
                assert round(lon, 5) == lon and round(lat, 5) == lat
    assert "Hindenburgstraße" in names
    raw = json.dumps(collection, separators=(",", ":")).encode()
    assert len(raw) < 3_000_000 and len(gzip.compress(raw)) < len(raw) / 3
    etag = answer.headers["etag"]
    assert etag.startswith('"') and answer.headers["cache-control"]
    again = client.get("/map/streets", headers={**operator, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    other = client.get("/map/streets", headers={**operator, "If-None-Match": '"other"'})
    assert other.status_code == 200


def test_map_stops_carry_name_feeds_and_routes(client: TestClient, operator: dict[str, str], users: Users) -> None:
    answer = client.get("/map/stops", headers=operator)
    assert answer.status_code == 200
    features = answer.json()["features"]
    station = next(f for f in features if f["properties"]["name"] == "Herrenberg Bahnhof")
    assert station["geometry"]["type"] == "Point"
    assert "S1" in station["properties"]["routes"] and "vvs-s1-only" in station["properties"]["feeds"]
    assert station["id"] in station["properties"]["stops"]
    assert client.get("/map/stops", headers={**operator, "If-None-Match": answer.headers["etag"]}).status_code == 304
    # The streets and the stops of one network share its ETag.
    assert client.get("/map/streets", headers=operator).headers["etag"] == answer.headers["etag"]
    assert client.get("/map/stops", headers=users.make("rider")[1]).status_code == 403
