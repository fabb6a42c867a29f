"""The console's files as the service serves them: without a token, under the console's own policy, with the
right types, revalidated on each load, and nothing outside its folder."""

from __future__ import annotations

import re

import httpx
from litestar.testing import TestClient

from maas.console import STATIC
from tests.maas.console.conftest import Staff


def test_the_console_is_served_without_a_token_under_a_strict_policy(client: TestClient) -> None:
    page = client.get("/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy and "connect-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY" and "no-cache" in page.headers["cache-control"]
    script = client.get("/console/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert client.get("/console/vendor/leaflet/leaflet-src.esm.js").status_code == 200
    # The API keeps its own policy: nothing of it is a page.
    assert client.get("/health").headers["content-security-policy"].startswith("default-src 'none'; frame-ancestors")


def test_nothing_outside_the_console_folder_is_served(client: TestClient) -> None:
    for path in ("/console/../maas/settings.py", "/console/%2e%2e/%2e%2e/pyproject.toml", "/console/nothing.js"):
        answer = client.get(path)
        assert answer.status_code == 404, path


def test_the_page_has_no_inline_script_or_style_and_every_module_it_imports_exists() -> None:
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "an inline script would be refused by the policy"
    assert "<style" not in html and " style=" not in html and " on" + "click=" not in html
    for module in STATIC.rglob("*.js"):
        if "vendor" in module.parts:
            continue
        for imported in re.findall(r'^import .* from "(\.{1,2}/[^"]+)";$', module.read_text(), re.M):
            assert (module.parent / imported).resolve().is_file(), f"{module.name} imports {imported}"


def test_the_service_names_the_clock_the_console_shows_times_on(api: httpx.Client, staff: Staff) -> None:
    # A time typed without an offset is read on this clock, and the console formats every time in it.
    answer = api.get("/service", headers=staff.operator)
    assert answer.status_code == 200, answer.text
    assert answer.json()["timezone"] == "Europe/Berlin"
