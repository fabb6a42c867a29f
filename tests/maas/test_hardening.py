"""Every response carries the hardening headers; HTML pages may load only what they need; browsers on other
origins are refused unless an operator names them."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import httpx
import msgspec
import pytest
from litestar.testing import TestClient

from maas.app import create_app
from maas.hardening import client_address, over_tls, trusted_networks
from maas.settings import Settings, SettingsError

_NOWHERE = Path("/nonexistent-maas-data")  # settings tests that never touch the data folder


def _hardened(headers: httpx.Headers) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-request-id"]


def test_every_response_carries_the_hardening_headers(client: TestClient) -> None:
    for answer in (client.get("/health"), client.get("/no-such-page"), client.get("/bookings")):
        _hardened(answer.headers)
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")
        assert "strict-transport-security" not in answer.headers  # plain http, no setting: no HSTS
        assert "server" not in answer.headers
    assert client.get("/health").headers["x-request-id"] != client.get("/health").headers["x-request-id"]


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger", "/schema/elements", "/schema/rapidoc"])
def test_the_api_documentation_pages_may_load_exactly_their_sources(client: TestClient, page: str) -> None:
    answer = client.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    _hardened(answer.headers)
    policy = {
        directive.split()[0]: directive.split()[1:]
        for directive in answer.headers["content-security-policy"].split("; ")
    }
    scripts = re.findall(r'<script[^>]*\ssrc="([^"]+)"', answer.text)
    styles = re.findall(
        r'<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"|<link[^>]*href="([^"]+)"[^>]*rel="stylesheet"', answer.text
    )
    assert scripts, "the page loads its viewer from a CDN"
    for url in scripts:
        assert _origin(url) in policy["script-src"], url
    for url in (a or b for a, b in styles):
        assert _origin(url) in policy["style-src"], url
    assert policy["connect-src"] == ["'self'"]  # the OpenAPI document comes from here, nothing else is fetched


def test_hsts_when_behind_tls_and_cors_only_for_the_origins_named(settings: Settings) -> None:
    app = "https://app.example.org"
    named = msgspec.structs.replace(settings, hsts=True, cors_origins=(app,))
    with TestClient(create_app(named)) as client:
        assert client.get("/health").headers["strict-transport-security"].startswith("max-age=")
        preflight = {"Origin": app, "Access-Control-Request-Method": "POST"}
        allowed = client.options("/bookings", headers={**preflight, "Access-Control-Request-Headers": "authorization"})
        assert allowed.status_code in (200, 204) and allowed.headers["access-control-allow-origin"] == app
        other = client.get("/health", headers={"Origin": "https://evil.example.org"})
        assert "access-control-allow-origin" not in other.headers
    with TestClient(create_app(settings), base_url="https://testserver.local") as client:
        assert "strict-transport-security" in client.get("/health").headers  # the request came over https
        assert "access-control-allow-origin" not in client.get("/health", headers={"Origin": app}).headers


def test_forwarded_headers_count_only_from_trusted_proxies() -> None:
    trusted = trusted_networks(
        Settings.from_env({}, trusted_proxies=("10.0.0.0/8",), data_dir=_NOWHERE, jwt_secret="s")
    )

    def scope(peer: str, **headers: str) -> dict[str, object]:
        return {
            "client": (peer, 4711),
            "scheme": "http",
            "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
        }

    via_proxy = scope("10.1.2.3", x_forwarded_for="198.51.100.1, 203.0.113.7, 10.9.9.9", x_forwarded_proto="https")
    assert client_address(via_proxy, trusted) == "203.0.113.7"  # type: ignore[arg-type]
    assert over_tls(via_proxy, trusted)  # type: ignore[arg-type]
    direct = scope("203.0.113.9", x_forwarded_for="10.0.0.1", x_forwarded_proto="https")
    assert client_address(direct, trusted) == "203.0.113.9"  # type: ignore[arg-type]
    assert not over_tls(direct, trusted)  # type: ignore[arg-type]


def test_settings_refuse_unusable_proxies_origins_and_budgets() -> None:
    with pytest.raises(SettingsError, match="MAAS_TRUSTED_PROXIES"):
        Settings.from_env({"MAAS_TRUSTED_PROXIES": "10.0.0.1,proxy.example.org"}, jwt_secret="s", data_dir=_NOWHERE)
    with pytest.raises(SettingsError, match="MAAS_CORS_ORIGINS"):
        Settings.from_env({"MAAS_CORS_ORIGINS": "*"}, jwt_secret="s", data_dir=_NOWHERE)
    with pytest.raises(SettingsError, match="MAAS_RATE_LIMIT_BOOKING_PER_MINUTE"):
        Settings.from_env({"MAAS_RATE_LIMIT_BOOKING_PER_MINUTE": "0"}, jwt_secret="s", data_dir=_NOWHERE)
    with pytest.raises(SettingsError, match="MAAS_HSTS"):
        Settings.from_env({"MAAS_HSTS": "maybe"}, jwt_secret="s", data_dir=_NOWHERE)
    given = Settings.from_env(
        {
            "MAAS_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16",
            "MAAS_CORS_ORIGINS": "https://app.example.org/",
            "MAAS_HSTS": "1",
        },
        jwt_secret="s",
        data_dir=_NOWHERE,
    )
    assert given.trusted_proxies == ("10.0.0.1/32", "192.168.0.0/16")
    assert given.cors_origins == ("https://app.example.org",) and given.hsts
