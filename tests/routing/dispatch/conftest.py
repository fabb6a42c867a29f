"""The Herrenberg drive graph and its bus stops, shared by the live-plan tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from routing.dispatch.drive_times import DriveTimes
from routing.model import StreetArrays
from routing.network import load_network


@pytest.fixture(scope="module")
def drive(network_dir: Path) -> StreetArrays:
    return load_network(network_dir).streets["drive"]


@pytest.fixture(scope="module")
def stops(network_dir: Path, drive: StreetArrays) -> list[int]:
    """The bus stops of the region on the drive graph: the on-demand service's virtual stops."""
    routable = DriveTimes(drive).routable
    snapped = np.asarray(load_network(network_dir).snaps["drive"].node)
    return sorted({int(n) for n in snapped if n >= 0 and routable[n]})
