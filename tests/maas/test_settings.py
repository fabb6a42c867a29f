"""Deployment settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from maas.settings import GtfsRtSource, Settings, SettingsError, SettingsOverrides


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


def test_gtfs_rt_sources_intervals_and_limits(tmp_path: Path) -> None:
    env = {"MAAS_DATA_DIR": str(tmp_path), "MAAS_JWT_SECRET": "secret"}
    default = Settings.from_env(env)
    assert (default.gtfs_rt, default.gtfs_rt_interval_s, default.gtfs_rt_max_age_s) == ((), 30, 300)
    settings = Settings.from_env(
        {
            **env,
            "MAAS_GTFS_RT": "caltrain=https://example.org/tu.pb?key=a%2Cb, caltrain=https://example.org/vp.pb,"
            "vvs-s1-only=http://localhost:9000/s1",
            "MAAS_GTFS_RT_INTERVAL_S": "15",
            "MAAS_GTFS_RT_MAX_AGE_S": "120",
        }
    )
    assert settings.gtfs_rt == (
        GtfsRtSource(feed_id="caltrain", url="https://example.org/tu.pb?key=a%2Cb"),
        GtfsRtSource(feed_id="caltrain", url="https://example.org/vp.pb"),
        GtfsRtSource(feed_id="vvs-s1-only", url="http://localhost:9000/s1"),
    )
    assert (settings.gtfs_rt_interval_s, settings.gtfs_rt_max_age_s) == (15, 120)
    for bad in ("https://example.org/tu.pb", "caltrain=ftp://example.org/tu.pb", "-x=https://example.org"):
        with pytest.raises(SettingsError, match=r"MAAS_GTFS_RT: .* is not feed_id=http"):
            Settings.from_env({**env, "MAAS_GTFS_RT": bad})
    with pytest.raises(SettingsError, match="MAAS_GTFS_RT_MAX_AGE_S must be at least 1"):
        Settings.from_env({**env, "MAAS_GTFS_RT_MAX_AGE_S": "0"})
    with pytest.raises(SettingsError, match="MAAS_GTFS_RT_MAX_BYTES must be between 1 and 67108864"):
        Settings.from_env({**env, "MAAS_GTFS_RT_MAX_BYTES": str(128 * 1024 * 1024)})
