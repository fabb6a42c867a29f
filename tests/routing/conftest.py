"""The Herrenberg network (all five VVS feeds and the OSM extract), built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing.build.network import BuildInputs, build_network
from tests.conftest import HERRENBERG


@pytest.fixture(scope="session")
def network_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("herrenberg") / "net"
    build_network(BuildInputs(
        gtfs=[str(p) for p in sorted((HERRENBERG / "gtfs").glob("*.zip"))],
        osm=str(HERRENBERG / "herrenberg-and-around.osm.pbf"),
    ), out)
    return out
