"""Deployment settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from maas.settings import Settings, SettingsError, SettingsOverrides


def test_keep_networks_defaults_to_5_and_refuses_keeping_none(tmp_path: Path) -> None:
    env = {"MAAS_DATA_DIR": str(tmp_path), "MAAS_JWT_SECRET": "secret"}
    assert Settings.from_env(env).keep_networks == 5
    assert Settings.from_env({**env, "MAAS_KEEP_NETWORKS": "2"}).keep_networks == 2
    with pytest.raises(SettingsError, match="MAAS_KEEP_NETWORKS must be at least 1"):
        Settings.from_env({**env, "MAAS_KEEP_NETWORKS": "0"})
    with pytest.raises(SettingsError, match="MAAS_KEEP_NETWORKS must be a whole number"):
        Settings.from_env({**env, "MAAS_KEEP_NETWORKS": "five"})


def test_every_setting_can_be_overridden_and_overrides_win(tmp_path: Path) -> None:
    assert set(SettingsOverrides.__annotations__) == set(Settings.__struct_fields__)
    env = {"MAAS_DATA_DIR": str(tmp_path), "MAAS_JWT_SECRET": "secret", "MAAS_PORT": "9000"}
    settings = Settings.from_env(env, port=8123, network_dir=tmp_path / "net")
    assert settings.port == 8123 and settings.network_dir == tmp_path / "net" and settings.jwt_secret == "secret"
