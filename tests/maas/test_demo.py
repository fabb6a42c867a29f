"""`maas demo` on a fresh machine: builds the bundled region, then reuses it."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from maas.cli import main
from routing.network import read_manifest


def test_demo_builds_the_bundled_region_and_plans_a_rural_journey(tmp_path: Path, database_url: str) -> None:
    out = tmp_path / "demo"
    env = {"MAAS_DATABASE_URL": database_url, "MAAS_DATA_DIR": str(tmp_path / "data")}
    before = dict(os.environ)
    first = CliRunner().invoke(main, ["demo", "--out", str(out), "--no-serve"], env=env)
    assert first.exit_code == 0, first.output
    assert dict(os.environ) == before, "the CLI passes settings down instead of writing the environment"
    assert "Herrenberg demo region" in first.output
    assert "on-demand to Herrenberg" in first.output and "S1 to Ehningen" in first.output
    manifest = read_manifest(out)
    assert len(manifest.feeds) == 5 and manifest.counts.sharing["systems"] == 5
    assert set(manifest.counts.streets) == {"walk", "bike", "drive"}
    assert "demo bookings:" in first.output and "Nebringen -> Herrenberg Bahnhof" in first.output
    tokens = dict(
        line.strip().split(": ", 1)
        for line in first.output.splitlines()
        if line.startswith("  ") and line.strip().split(":")[0] in {"admin", "operator", "rider", "driver"}
    )
    assert set(tokens) == {"admin", "operator", "rider", "driver"}
    again = CliRunner().invoke(main, ["demo", "--out", str(out), "--no-serve"], env=env)
    assert again.exit_code == 0 and "using the demo network" in again.output
    assert read_manifest(out).created == manifest.created
    # The printed rider token works against the API and sees the demo bookings.
    from litestar.testing import TestClient

    from maas.app import create_app
    from maas.settings import Settings

    settings = Settings.from_env({**env, "MAAS_NETWORK_DIR": str(out)})
    with TestClient(create_app(settings)) as client:
        mine = client.get("/bookings", headers={"Authorization": f"Bearer {tokens['rider']}"})
        assert mine.status_code == 200 and len(mine.json()) >= 3
