"""Place search on the real Herrenberg network: stops, streets and localities by name, accents folded."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing.network import load_network
from routing.places import PlaceIndex, fold
from routing.spatial import haversine_m


@pytest.fixture(scope="module")
def index(network_dir: Path) -> PlaceIndex:
    return PlaceIndex(load_network(network_dir))


def test_folding_spells_umlauts_out_and_drops_accents() -> None:
    assert fold("Hindenburgstraße") == ["hindenburgstrasse"]
    assert fold("Gärtringen Bf.") == ["gaertringen bf", "gartringen bf"]
    assert fold("Café-Élysée") == ["cafe elysee"]


def test_herrenberg_station_is_found_as_a_stop_at_the_station(index: PlaceIndex) -> None:
    first = index.search("Herrenberg Bahnhof")[0]
    assert (first.kind, first.label) == ("stop", "Herrenberg Bahnhof")
    assert first.id.startswith("stop:")
    assert haversine_m(first.lat, first.lon, 48.5935, 8.8630) < 150
    # Its GTFS name ("Herrenberg") finds it too, above the town of that name.
    kinds = [(p.kind, p.label) for p in index.search("herrenberg", 3)]
    assert kinds[:2] == [("stop", "Herrenberg Bahnhof"), ("locality", "Herrenberg")]


@pytest.mark.parametrize("query", ["Hindenburgstrasse Herrenb", "hindenburgstr", "Hindenburgstraße"])
def test_a_street_of_herrenberg_by_a_prefix_with_umlauts_spelled_out(index: PlaceIndex, query: str) -> None:
    streets = [p for p in index.search(query, 20) if p.kind == "street"]
    assert "Hindenburgstraße, Herrenberg" in [p.label for p in streets]


def test_oe_and_ae_spellings_find_the_same_places(index: PlaceIndex) -> None:
    assert index.search("Gaertringen") == index.search("Gärtringen")
    assert index.search("Gaertringen")[0].label.startswith("Gärtringen")
    # ö written as oe, and as a plain o.
    labels = [p.label for p in index.search("Oeschelbronn", 50)]
    assert any(label.startswith("Öschelbronn") or label.endswith(", Öschelbronn") for label in labels)
    assert index.search("Oeschelbronn", 50) == index.search("Öschelbronn", 50)


def test_every_word_must_match_and_rank_is_exact_prefix_then_words(index: PlaceIndex) -> None:
    assert index.search("qxzv") == []
    assert index.search("Herrenberg qxzv") == []
    found = index.search("Bahnhofstrasse Herrenberg", 50)
    assert found and all("Herrenberg" in p.label or "Herrenb" in p.label for p in found)
    exact = index.search("Horber Straße, Herrenberg")[0]
    assert exact.label == "Horber Straße, Herrenberg"


def test_near_ranks_the_nearer_of_equal_names_first(index: PlaceIndex) -> None:
    gaertringen, herrenberg = (48.6403, 8.9006), (48.5958, 8.8662)
    near_g = [p for p in index.search("Hindenburgstraße", 10, near=gaertringen) if p.kind == "street"]
    near_h = [p for p in index.search("Hindenburgstraße", 10, near=herrenberg) if p.kind == "street"]
    assert near_h[0].label == "Hindenburgstraße, Herrenberg"
    assert near_g[0].label != near_h[0].label
    assert len(index.search("bahnhof", 50)) == 50


def test_a_stop_place_named_differently_by_its_feeds_is_found_by_its_town_and_every_name(index: PlaceIndex) -> None:
    # Ehningen's station is "Ehningen" in the S1 feed, "Ehningen Bf" and "Bahnhof" in the bus feeds.
    station = index.search("Ehningen Bahnhof", limit=1)
    assert [p.label for p in station] == ["Ehningen Bahnhof"] and station[0].kind == "stop"
    assert haversine_m(station[0].lat, station[0].lon, 48.6625, 8.9439) < 200
    assert index.search("Ehningen Bf", limit=1)[0].id == station[0].id
    # One bus feed calls a stop "IBM", another "Ehningen IBM": the place has the full name, found by either.
    assert [p.label for p in index.search("IBM", limit=1)] == ["Ehningen IBM"]
    assert index.search("Ehningen IBM", limit=1)[0].label == "Ehningen IBM"
