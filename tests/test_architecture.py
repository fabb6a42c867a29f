"""The layers hold: ext and feeds import nothing of ours; only routing.builder reaches feeds; only tests and
benchmarks import the oracles."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["importlinter"]["contracts"])


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(_contracts())} kept, 0 broken." in result.stdout, result.stdout
    assert not any("ignore_imports" in c for c in _contracts()), "a contract that ignores imports hides indirect paths"


def _routing_modules() -> set[str]:
    modules = {p.stem for p in (ROOT / "routing").glob("*.py") if p.stem != "__init__"}
    modules |= {p.name for p in (ROOT / "routing").iterdir() if (p / "__init__.py").exists()}
    return {f"routing.{m}" for m in modules}


def _forbidding(module: str) -> dict[str, object]:
    return next(c for c in _contracts() if module in c.get("forbidden_modules", []))


def test_the_query_time_contract_covers_every_routing_module_but_the_builder() -> None:
    assert set(_forbidding("routing.builder")["source_modules"]) == _routing_modules() - {"routing.builder"}


def test_the_oracle_contract_covers_every_routing_module_but_the_oracles() -> None:
    assert set(_forbidding("routing.oracles")["source_modules"]) == _routing_modules() - {"routing.oracles"}
