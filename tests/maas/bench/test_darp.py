"""`maas bench darp` as a user runs it: a table of gaps against the best known solutions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from maas.cli import main
from tests.routing.dispatch.checker import DARP


def test_bench_darp_reports_gaps_for_every_instance(tmp_path: Path) -> None:
    for name in ("a2-16", "a3-18"):
        shutil.copy(DARP / f"{name}.txt", tmp_path)
    bks = json.loads((DARP / "bks.json").read_text())
    (tmp_path / "bks.json").write_text(json.dumps({k: bks[k] for k in ("a2-16", "a3-18")}))
    result = CliRunner().invoke(
        main, ["bench", "darp", str(tmp_path), "--time-limit", "0.3", "--runs", "2", "--jobs", "2"]
    )
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 5}
    assert {"a2-16", "a3-18", "all"} <= set(rows)
    assert "2/2" in rows["a2-16"] and "4/4" in rows["all"]
    best_gap = float(rows["a2-16"].split("│")[4])
    assert 0.0 <= best_gap < 5.0


def test_bench_darp_names_a_missing_reference(tmp_path: Path) -> None:
    shutil.copy(DARP / "a2-16.txt", tmp_path)
    result = CliRunner().invoke(main, ["bench", "darp", str(tmp_path), "--time-limit", "0.1"])
    assert result.exit_code == 2 and "bks.json" in result.output
