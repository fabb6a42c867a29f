"""`maas demo` on a fresh machine: builds the bundled region, then reuses it."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from maas.cli import main
from routing.network import read_manifest


def test_demo_builds_the_bundled_region_and_plans_a_rural_journey(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    first = CliRunner().invoke(main, ["demo", "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert "Herrenberg demo region" in first.output
    assert "on-demand to Herrenberg" in first.output and "S1 to Ehningen" in first.output
    manifest = read_manifest(out)
    assert len(manifest.feeds) == 5 and manifest.counts.sharing["systems"] == 5
    assert set(manifest.counts.streets) == {"walk", "bike", "drive"}
    again = CliRunner().invoke(main, ["demo", "--out", str(out)])
    assert again.exit_code == 0 and "using the demo network" in again.output
    assert read_manifest(out).created == manifest.created
