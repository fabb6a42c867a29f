"""The independent dial-a-ride checker from ../shared/tools, loaded once for every dispatch test."""

from __future__ import annotations

import importlib.util
import sys

from tests.conftest import SHARED_DATA

DARP = SHARED_DATA / "darp"
INSTANCES = sorted(DARP.glob("a*.txt"))

_spec = importlib.util.spec_from_file_location("darp_check", SHARED_DATA.parent / "tools" / "darp_check.py")
darp_check = importlib.util.module_from_spec(_spec)
sys.modules["darp_check"] = darp_check  # its dataclasses look their module up by name
_spec.loader.exec_module(darp_check)


def independent_check(name: str, routes: list[list[int]]) -> dict:
    """darp_check's exact report on a solution of instance `name`."""
    return darp_check.check(darp_check.read_instance(str(DARP / f"{name}.txt")), routes, "exact")
