"""The command line as a user meets it: help on every command, the README's commands are what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from maas.cli import main

ROOT = Path(__file__).resolve().parents[3]


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


def test_serve_refuses_a_directory_that_is_not_a_network(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--network", str(tmp_path)])
    assert result.exit_code == 2 and "not a network directory" in result.output and "Traceback" not in result.output
