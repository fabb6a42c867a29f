"""Deployment settings, read once from the environment (variables prefixed MAAS_)."""

from __future__ import annotations

import ipaddress
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
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
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
    token_max_ttl_s: int = 30 * 24 * 3600  # no token an admin issues lives longer
    sign_in_max_failures: int = 5  # per login in sign_in_window_s (four times as many per client address)
    sign_in_window_s: int = 15 * 60
    max_body_bytes: int = 50 * 1024 * 1024  # a GTFS upload fits; larger requests get 413
    rate_limit_per_minute: int = 6000  # the default budget of a user (or of an address, when anonymous)
    rate_limit_booking_per_minute: int = 120  # quotes, bookings, journeys and phone bookings
    rate_limit_sign_in_per_minute: int = 20
    rate_limit_upload_per_minute: int = 10  # feed uploads
    trusted_proxies: tuple[str, ...] = ()  # addresses or networks whose X-Forwarded-For/-Proto are believed
    hsts: bool = False  # Strict-Transport-Security on every response (also sent on requests that came over https)
    cors_origins: tuple[str, ...] = ()  # web app origins allowed to call the API from a browser; none by default
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

        def flag(name: str) -> bool:
            text = (env.get(name) or "").lower()
            if text not in ("", "0", "1", "false", "true"):
                raise SettingsError(f"{name} must be 1/true or 0/false, got {text!r}")
            return text in ("1", "true")

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
        token_max_ttl_s = o.get("token_max_ttl_s", number("MAAS_TOKEN_MAX_TTL_S", 30 * 24 * 3600))
        sign_in_max_failures = o.get("sign_in_max_failures", number("MAAS_SIGN_IN_MAX_FAILURES", 5))
        sign_in_window_s = o.get("sign_in_window_s", number("MAAS_SIGN_IN_WINDOW_S", 15 * 60))
        max_body_bytes = o.get("max_body_bytes", number("MAAS_MAX_BODY_BYTES", 50 * 1024 * 1024))
        rate_limit_per_minute = o.get("rate_limit_per_minute", number("MAAS_RATE_LIMIT_PER_MINUTE", 6000))
        rate_limit_booking_per_minute = o.get(
            "rate_limit_booking_per_minute", number("MAAS_RATE_LIMIT_BOOKING_PER_MINUTE", 120)
        )
        rate_limit_sign_in_per_minute = o.get(
            "rate_limit_sign_in_per_minute", number("MAAS_RATE_LIMIT_SIGN_IN_PER_MINUTE", 20)
        )
        rate_limit_upload_per_minute = o.get(
            "rate_limit_upload_per_minute", number("MAAS_RATE_LIMIT_UPLOAD_PER_MINUTE", 10)
        )
        trusted_proxies = o.get("trusted_proxies", proxy_networks(env.get("MAAS_TRUSTED_PROXIES") or ""))
        hsts = o.get("hsts", flag("MAAS_HSTS"))
        cors_origins = o.get("cors_origins", cors_origins_of(env.get("MAAS_CORS_ORIGINS") or ""))
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
        if not 1 <= token_ttl_s <= token_max_ttl_s:
            raise SettingsError(
                f"MAAS_TOKEN_TTL_S must be between 1 and MAAS_TOKEN_MAX_TTL_S ({token_max_ttl_s}), got {token_ttl_s}"
            )
        if sign_in_max_failures < 1 or sign_in_window_s < 1:
            raise SettingsError("MAAS_SIGN_IN_MAX_FAILURES and MAAS_SIGN_IN_WINDOW_S must be at least 1")
        for name, value in (
            ("MAAS_RATE_LIMIT_PER_MINUTE", rate_limit_per_minute),
            ("MAAS_RATE_LIMIT_BOOKING_PER_MINUTE", rate_limit_booking_per_minute),
            ("MAAS_RATE_LIMIT_SIGN_IN_PER_MINUTE", rate_limit_sign_in_per_minute),
            ("MAAS_RATE_LIMIT_UPLOAD_PER_MINUTE", rate_limit_upload_per_minute),
        ):
            if value < 1:
                raise SettingsError(f"{name} must be at least 1 (requests a minute), got {value}")
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
            token_max_ttl_s=token_max_ttl_s,
            sign_in_max_failures=sign_in_max_failures,
            sign_in_window_s=sign_in_window_s,
            max_body_bytes=max_body_bytes,
            rate_limit_per_minute=rate_limit_per_minute,
            rate_limit_booking_per_minute=rate_limit_booking_per_minute,
            rate_limit_sign_in_per_minute=rate_limit_sign_in_per_minute,
            rate_limit_upload_per_minute=rate_limit_upload_per_minute,
            trusted_proxies=trusted_proxies,
            hsts=hsts,
            cors_origins=cors_origins,
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
    token_max_ttl_s: int
    sign_in_max_failures: int
    sign_in_window_s: int
    max_body_bytes: int
    rate_limit_per_minute: int
    rate_limit_booking_per_minute: int
    rate_limit_sign_in_per_minute: int
    rate_limit_upload_per_minute: int
    trusted_proxies: tuple[str, ...]
    hsts: bool
    cors_origins: tuple[str, ...]
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


def proxy_networks(text: str) -> tuple[str, ...]:
    """`10.0.0.1,192.168.0.0/16` (MAAS_TRUSTED_PROXIES): the proxies in front of the service, as networks."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError as exc:
            raise SettingsError(f"MAAS_TRUSTED_PROXIES: {item!r} is not an address or network (10.0.0.0/8)") from exc
    return tuple(networks)


def cors_origins_of(text: str) -> tuple[str, ...]:
    """`https://app.example.org,https://console.example.org` (MAAS_CORS_ORIGINS): scheme, host and port only."""
    origins = tuple(part.strip().rstrip("/") for part in text.split(",") if part.strip())
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise SettingsError(f"MAAS_CORS_ORIGINS: {origin!r} is not an origin like https://app.example.org")
    return origins


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
