"""Deployment settings, read once from the environment (variables prefixed MAAS_)."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict, Unpack

import msgspec

from maas.errors import MaasError

DEFAULT_DATA_DIR = Path.home() / ".local" / "share" / "maas"
# GTFS-Realtime: a producer updates every 15-60 s; predictions older than five minutes (ten missed polls at
# the default interval) describe a situation that has moved on, and the timetable is the better guess.
DEFAULT_GTFS_RT_INTERVAL_S = 30
DEFAULT_GTFS_RT_MAX_AGE_S = 300
DEFAULT_GTFS_RT_MAX_BYTES = 16 * 1024 * 1024  # the largest city feeds are a few MB; the database allows 64 MB
GTFS_RT_MAX_BYTES_LIMIT = 64 * 1024 * 1024  # migration 0018's CHECK on gtfs_rt_messages.body
_FEED_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class SettingsError(MaasError):
    """A setting that cannot be used; the message names the variable."""


class GtfsRtSource(msgspec.Struct, frozen=True, kw_only=True):
    """A GTFS-Realtime URL the service polls, and the GTFS feed (network feed id) its messages belong to."""

    feed_id: str
    url: str


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
    gtfs_rt: tuple[GtfsRtSource, ...] = ()  # polled by one process of the database
    gtfs_rt_interval_s: int = DEFAULT_GTFS_RT_INTERVAL_S
    gtfs_rt_max_age_s: int = DEFAULT_GTFS_RT_MAX_AGE_S  # older messages are ignored by the router
    gtfs_rt_max_bytes: int = DEFAULT_GTFS_RT_MAX_BYTES  # larger messages are refused (413) or not fetched
    feed_check_memory_mb: int = 1024  # address space of the child process validating one GTFS upload
    feed_check_cpu_s: int = 300  # its CPU seconds; past either the upload is rejected with a report saying so
    agency_quota_bytes: int = 1024**3  # feed versions an agency may store (rejected ones count their first 64 KiB)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Unpack[SettingsOverrides]) -> Settings:
        """The settings of `env` (default: the process environment); `overrides` win over its variables."""
        env = os.environ if env is None else env

        def number(name: str, default: int) -> int:
            text = env.get(name)
            if text is None or text == "":
                return default
            try:
                return int(text)
            except ValueError as exc:
                raise SettingsError(f"{name} must be a whole number, got {text!r}") from exc

        def path(name: str) -> Path | None:
            text = env.get(name)
            return Path(text) if text else None

        # Every variable is read (and a malformed one refused) even when an override replaces it.
        o = overrides
        data_dir = o.get("data_dir", Path(env.get("MAAS_DATA_DIR") or DEFAULT_DATA_DIR))
        database_url = o.get("database_url", env.get("MAAS_DATABASE_URL") or None)
        network_dir = o.get("network_dir", path("MAAS_NETWORK_DIR"))
        service_file = o.get("service_file", path("MAAS_SERVICE_FILE"))
        osm_file = o.get("osm_file", path("MAAS_OSM_FILE"))
        keep_networks = o.get("keep_networks", number("MAAS_KEEP_NETWORKS", 5))
        jwt_secret = o.get("jwt_secret", env.get("MAAS_JWT_SECRET") or "")
        token_ttl_s = o.get("token_ttl_s", number("MAAS_TOKEN_TTL_S", 12 * 3600))
        max_body_bytes = o.get("max_body_bytes", number("MAAS_MAX_BODY_BYTES", 50 * 1024 * 1024))
        rate_limit_per_minute = o.get("rate_limit_per_minute", number("MAAS_RATE_LIMIT_PER_MINUTE", 6000))
        host = o.get("host", env.get("MAAS_HOST") or "127.0.0.1")
        port = o.get("port", number("MAAS_PORT", 8000))
        gtfs_rt = o.get("gtfs_rt", gtfs_rt_sources(env.get("MAAS_GTFS_RT") or ""))
        gtfs_rt_interval_s = o.get("gtfs_rt_interval_s", number("MAAS_GTFS_RT_INTERVAL_S", DEFAULT_GTFS_RT_INTERVAL_S))
        gtfs_rt_max_age_s = o.get("gtfs_rt_max_age_s", number("MAAS_GTFS_RT_MAX_AGE_S", DEFAULT_GTFS_RT_MAX_AGE_S))
        gtfs_rt_max_bytes = o.get("gtfs_rt_max_bytes", number("MAAS_GTFS_RT_MAX_BYTES", DEFAULT_GTFS_RT_MAX_BYTES))
        feed_check_memory_mb = o.get("feed_check_memory_mb", number("MAAS_FEED_CHECK_MEMORY_MB", 1024))
        feed_check_cpu_s = o.get("feed_check_cpu_s", number("MAAS_FEED_CHECK_CPU_S", 300))
        agency_quota_bytes = o.get("agency_quota_bytes", number("MAAS_AGENCY_QUOTA_BYTES", 1024**3))
        for name, value in (
            ("MAAS_GTFS_RT_INTERVAL_S", gtfs_rt_interval_s),
            ("MAAS_GTFS_RT_MAX_AGE_S", gtfs_rt_max_age_s),
            ("MAAS_FEED_CHECK_CPU_S", feed_check_cpu_s),
        ):
            if value < 1:
                raise SettingsError(f"{name} must be at least 1 (seconds), got {value}")
        if not 1 <= gtfs_rt_max_bytes <= GTFS_RT_MAX_BYTES_LIMIT:
            raise SettingsError(
                f"MAAS_GTFS_RT_MAX_BYTES must be between 1 and {GTFS_RT_MAX_BYTES_LIMIT} (what the database stores),"
                f" got {gtfs_rt_max_bytes}"
            )
        if feed_check_memory_mb < 256:
            raise SettingsError(
                f"MAAS_FEED_CHECK_MEMORY_MB must be at least 256 (Python and pandas), got {feed_check_memory_mb}"
            )
        if agency_quota_bytes < 0:
            raise SettingsError(f"MAAS_AGENCY_QUOTA_BYTES must not be negative, got {agency_quota_bytes}")
        if keep_networks < 1:
            raise SettingsError(f"MAAS_KEEP_NETWORKS must be at least 1 (the network just built), got {keep_networks}")
        return cls(
            database_url=database_url,
            data_dir=data_dir,
            network_dir=network_dir,
            service_file=service_file,
            osm_file=osm_file,
            keep_networks=keep_networks,
            jwt_secret=jwt_secret or _stored_secret(data_dir),
            token_ttl_s=token_ttl_s,
            max_body_bytes=max_body_bytes,
            rate_limit_per_minute=rate_limit_per_minute,
            host=host,
            port=port,
            gtfs_rt=gtfs_rt,
            gtfs_rt_interval_s=gtfs_rt_interval_s,
            gtfs_rt_max_age_s=gtfs_rt_max_age_s,
            gtfs_rt_max_bytes=gtfs_rt_max_bytes,
            feed_check_memory_mb=feed_check_memory_mb,
            feed_check_cpu_s=feed_check_cpu_s,
            agency_quota_bytes=agency_quota_bytes,
        )


class SettingsOverrides(TypedDict, total=False):
    """Fields of `Settings` a caller sets instead of the environment (the CLI's options, tests)."""

    database_url: str | None
    data_dir: Path
    network_dir: Path | None
    service_file: Path | None
    osm_file: Path | None
    keep_networks: int
    jwt_secret: str
    token_ttl_s: int
    max_body_bytes: int
    rate_limit_per_minute: int
    host: str
    port: int
    gtfs_rt: tuple[GtfsRtSource, ...]
    gtfs_rt_interval_s: int
    gtfs_rt_max_age_s: int
    gtfs_rt_max_bytes: int
    feed_check_memory_mb: int
    feed_check_cpu_s: int
    agency_quota_bytes: int


def gtfs_rt_sources(text: str) -> tuple[GtfsRtSource, ...]:
    """`feed_id=url,feed_id=url` (MAAS_GTFS_RT): a feed id may come twice, for trip updates and vehicle positions
    served apart; a comma inside a URL is written %2C."""
    sources = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        feed_id, equals, url = item.partition("=")
        feed_id, url = feed_id.strip(), url.strip()
        if not equals or not _FEED_ID.match(feed_id) or not url.startswith(("http://", "https://")):
            raise SettingsError(
                f"MAAS_GTFS_RT: {item!r} is not feed_id=http(s)://... (e.g. caltrain=https://example.org/tu.pb)"
            )
        sources.append(GtfsRtSource(feed_id=feed_id, url=url))
    return tuple(sources)


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
