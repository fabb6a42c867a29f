"""Deployment settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from maas.settings import Settings, SettingsError


def test_keep_networks_defaults_to_5_and_refuses_keeping_none(tmp_path: Path) -> None:
    env = {"MAAS_DATA_DIR": str(tmp_path), "MAAS_JWT_SECRET": "secret"}
    assert Settings.from_env(env).keep_networks == 5
    assert Settings.from_env({**env, "MAAS_KEEP_NETWORKS": "2"}).keep_networks == 2
    with pytest.raises(SettingsError, match="MAAS_KEEP_NETWORKS must be at least 1"):
        Settings.from_env({**env, "MAAS_KEEP_NETWORKS": "0"})
    with pytest.raises(SettingsError, match="MAAS_KEEP_NETWORKS must be a whole number"):
        Settings.from_env({**env, "MAAS_KEEP_NETWORKS": "five"})
