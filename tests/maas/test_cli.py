"""The command line as a user meets it: help everywhere, exit statuses, JSON, no tracebacks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from maas.cli import main
from tests.conftest import derive_feed
from tests.feeds.test_gtfs import _edit_line

ROOT = Path(__file__).resolve().parents[2]


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


@pytest.mark.parametrize("command", _commands(main), ids=lambda c: " ".join(c) or "maas")
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip() and not ln.startswith("Usage")]
    assert lines, "the help says what the command does"


def test_readme_commands_are_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    fenced = re.findall(r"```\n(.*?)\n```", readme, re.S)
    test_cmd = next(c for c in fenced if c.endswith("&& pytest"))
    demo_cmd = next(c for c in fenced if c.endswith("&& maas demo"))
    assert f"\n{test_cmd}\n" in ci, "CI runs the README's test command as written"
    assert demo_cmd.startswith("python3 -m venv .venv")


def test_validate_exit_status_and_json(small_feed: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["feeds", "validate", str(small_feed), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["valid"] is True
    broken = derive_feed(small_feed, tmp_path / "broken.zip", {"stop_times.txt": _edit_line(3, "arrival_time", "7h")})
    bad = runner.invoke(main, ["feeds", "validate", str(broken), "--json"])
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    assert report["valid"] is False
    assert {
        "severity": "error",
        "code": "invalid_time",
        "file": "stop_times.txt",
        "line": 3,
        "field": "arrival_time",
    }.items() <= report["findings"][0].items()
    not_zip = tmp_path / "x.zip"
    not_zip.write_text("hello")
    res = runner.invoke(main, ["feeds", "validate", str(not_zip)])
    assert res.exit_code == 1
    assert "not a zip archive" in res.output
    assert "Traceback" not in res.output


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
