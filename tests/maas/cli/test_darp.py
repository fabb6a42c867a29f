"""`maas darp solve`: a solution the independent checker accepts; a bad file named with its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from maas.cli import main


def test_darp_solve_prints_a_solution_the_independent_checker_accepts(tmp_path: Path) -> None:
    from tests.routing.dispatch.checker import DARP, independent_check

    result = CliRunner().invoke(main, ["darp", "solve", str(DARP / "a2-16.txt"), "--time-limit", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    solution = json.loads(result.output)
    assert set(solution) == {"cost", "routes", "feasible"} and solution["feasible"] is True
    report = independent_check("a2-16", solution["routes"])
    assert report["feasible"] and report["total_distance"] == pytest.approx(solution["cost"])
    bad = tmp_path / "a2-16.txt"
    bad.write_text((DARP / "a2-16.txt").read_text().replace("-1.198", "-1.l98", 1))
    result = CliRunner().invoke(main, ["darp", "solve", str(bad), "--time-limit", "0.5"])
    assert result.exit_code == 2 and f"{bad}:3: not a number" in result.output and "Traceback" not in result.output
