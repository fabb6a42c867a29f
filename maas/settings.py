"""Deployment settings, read once from the environment (variables prefixed MAAS_)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import msgspec

DEFAULT_DATA_DIR = Path.home() / ".local" / "share" / "maas"


class SettingsError(Exception):
    """A setting that cannot be used; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str | None  # None: an embedded PostgreSQL (pgserver) in data_dir/postgres
    data_dir: Path
    network_dir: Path | None  # the network the router and dispatcher use
    service_file: Path | None  # the on-demand service definition (TOML)
    osm_file: Path | None = None  # streets of networks built on publishing; None: the OSM of network_dir's manifest
    keep_networks: int = 5  # the newest networks built here keep their directories (and the serving one)
    jwt_secret: str
    token_ttl_s: int = 12 * 3600
    max_body_bytes: int = 50 * 1024 * 1024  # a GTFS upload fits; larger requests get 413
    rate_limit_per_minute: int = 6000
    host: str = "127.0.0.1"
    port: int = 8000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("MAAS_DATA_DIR") or DEFAULT_DATA_DIR)

        def number(name: str, default: int) -> int:
            text = env.get(name)
            if text is None or text == "":
                return default
            try:
                return int(text)
            except ValueError as exc:
                raise SettingsError(f"{name} must be a whole number, got {text!r}") from exc

        values: dict[str, object] = {
            "database_url": env.get("MAAS_DATABASE_URL") or None,
            "data_dir": data_dir,
            "network_dir": Path(env["MAAS_NETWORK_DIR"]) if env.get("MAAS_NETWORK_DIR") else None,
            "service_file": Path(env["MAAS_SERVICE_FILE"]) if env.get("MAAS_SERVICE_FILE") else None,
            "osm_file": Path(env["MAAS_OSM_FILE"]) if env.get("MAAS_OSM_FILE") else None,
            "keep_networks": number("MAAS_KEEP_NETWORKS", 5),
            "jwt_secret": env.get("MAAS_JWT_SECRET") or "",
            "token_ttl_s": number("MAAS_TOKEN_TTL_S", 12 * 3600),
            "max_body_bytes": number("MAAS_MAX_BODY_BYTES", 50 * 1024 * 1024),
            "rate_limit_per_minute": number("MAAS_RATE_LIMIT_PER_MINUTE", 6000),
            "host": env.get("MAAS_HOST") or "127.0.0.1",
            "port": number("MAAS_PORT", 8000),
        }
        values.update(overrides)
        if values["keep_networks"] < 1:  # type: ignore[operator]
            raise SettingsError(
                f"MAAS_KEEP_NETWORKS must be at least 1 (the network just built), got {values['keep_networks']}"
            )
        if not values["jwt_secret"]:
            values["jwt_secret"] = _stored_secret(Path(values["data_dir"]))  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]


def _stored_secret(data_dir: Path) -> str:
    """A signing secret kept in the data directory, so that tokens survive restarts."""
    path = data_dir / "jwt-secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return secret
