"""`maas bench realtime` as a user runs it: the real Caltrain recording applied, plans with and without it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from maas.cli import main
from routing.builder import BuildInputs, build_network
from tests.conftest import shared


@pytest.fixture(scope="module")
def caltrain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("caltrain") / "net"
    build_network(BuildInputs(gtfs=[str(shared("rt", "caltrain.gtfs.zip"))]), out)
    return out


def test_bench_realtime_times_applying_the_caltrain_recording(caltrain: Path) -> None:
    recording = shared("rt", "caltrain-trip-updates.pb")
    result = CliRunner().invoke(
        main, ["bench", "realtime", str(caltrain), str(recording), "--feed", "caltrain", "--queries", "30"]
    )
    assert result.exit_code == 0, result.output
    assert "19 runs retimed, 0 cancelled, 0 unknown trips" in " ".join(result.output.split())
    apply = next(line for line in result.output.splitlines() if "apply the message" in line)
    p50, p95 = (float(x) for x in apply.split("│")[3:5])
    assert 0 < p50 <= p95
    changed = next(line for line in result.output.splitlines() if "overlay changed" in line)
    assert int(changed.split("│")[2]) > 0, "the recording's delays change plans between its trains' stops"


def test_bench_realtime_refuses_a_message_for_another_network(caltrain: Path) -> None:
    recording = shared("rt", "caltrain-trip-updates.pb")
    result = CliRunner().invoke(main, ["bench", "realtime", str(caltrain), str(recording), "--feed", "vvs-s1-only"])
    assert result.exit_code == 2 and "the network has no GTFS feed 'vvs-s1-only'" in result.output
    assert "Traceback" not in result.output
