"""The Herrenberg router the routing.plan tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing.network import load_network
from routing.plan import Router


@pytest.fixture(scope="package")
def router(network_dir: Path) -> Router:
    return Router(load_network(network_dir))
