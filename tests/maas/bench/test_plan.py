"""`maas bench plan`: live on-demand plans against plain ones, same requests, one table."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from maas.cli import main


def test_bench_plan_times_live_plans_against_plain_ones(network_dir: Path) -> None:
    result = CliRunner().invoke(
        main, ["bench", "plan", str(network_dir), "--vehicles", "3", "--booked", "20", "--plans", "20"]
    )
    assert result.exit_code == 0, result.output
    title = " ".join(result.output.split())  # the table's title wraps with the path's length
    assert "3 vehicles" in title and "20 requests" in title
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 5}
    assert {"reference: walk + transit only", "with live on-demand offers", "live / reference"} <= set(rows)
    offered = re.search(r"(\d+) of 20 plans offered a ride of the live fleet", result.output)
    assert offered and int(offered.group(1)) > 0, "a live fleet of three buses serves some of the requests"


def test_bench_plan_refuses_bad_options_and_a_network_without_streets(tmp_path: Path, network_dir: Path) -> None:
    bad = CliRunner().invoke(main, ["bench", "plan", str(network_dir), "--vehicles", "0"])
    assert bad.exit_code != 0 and "--vehicles" in bad.output
    missing = CliRunner().invoke(main, ["bench", "plan", str(tmp_path)])
    assert missing.exit_code != 0 and str(tmp_path) in missing.output
