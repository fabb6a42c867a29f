"""The console in a real browser: Debian's headless Chromium driven by Playwright, against `maas serve` on a
database of its own serving the Herrenberg network whose timetables run this week. Every page the tests open
is watched: a script error, a refused Content-Security-Policy or a request to another origin fails the test."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, sync_playwright

from maas.bench.server import running_server
from maas.db.users import create_user
from maas.demo import demo_region
from maas.sessions import issue_token, set_credentials
from maas.settings import Settings
from tests.helpers import HERRENBERG_BAHNHOF
from tests.maas.conftest import RAISED_LIMITS_ENV, own_database

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
REGION = json.loads((demo_region() / "herrenberg-and-around.geojson").read_text())
PASSWORD = "correct horse battery staple"
VIEWPORT = {"width": 1366, "height": 900}


class Staff:
    """The console's operator (login and password), and API headers for the actors the tests play."""

    def __init__(self, login: str, name: str, operator: dict[str, str], rider: dict[str, str]) -> None:
        self.login = login
        self.name = name
        self.operator = operator
        self.rider = rider


def make_user(settings: Settings, role: str, name: str, login: str | None = None) -> tuple[str, dict[str, str]]:
    async def work() -> tuple[str, str]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            user = await create_user(conn, name, role)
            if login is not None:
                await set_credentials(conn, user, login, PASSWORD)
            return str(user.id), await issue_token(conn, settings, user)
        finally:
            await conn.close()

    # In a thread of its own: Playwright's synchronous API keeps an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        user_id, token = pool.submit(asyncio.run, work()).result()
    return user_id, {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="package")
def console_settings(
    settings: Settings, today_network_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    with own_database(settings, "maas_console", today_network_dir, tmp_path_factory.mktemp("console-data")) as own:
        yield own


@pytest.fixture(scope="package")
def base_url(console_settings: Settings) -> Iterator[str]:
    """`maas serve` with two workers (live messages cross processes through PostgreSQL)."""
    env = {
        **os.environ,
        "MAAS_DATABASE_URL": console_settings.database_url or "",
        "MAAS_JWT_SECRET": console_settings.jwt_secret,
        "MAAS_NETWORK_DIR": str(console_settings.network_dir),
        "MAAS_DATA_DIR": str(console_settings.data_dir),
        **RAISED_LIMITS_ENV,
    }
    with running_server(env, workers=2, timeout_s=120) as url:
        yield url


@pytest.fixture(scope="package")
def api(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="package")
def staff(console_settings: Settings, api: httpx.Client) -> Staff:
    """An operator who signs in with a password, a rider, and the service definition of the region."""
    login = f"leitstelle-{uuid.uuid4().hex[:4]}"
    _, operator = make_user(console_settings, "operator", "Erika Disponentin", login=login)
    _, rider = make_user(console_settings, "rider", "Rita Fahrgast")
    defined = api.put(
        "/service", headers=operator, json={"name": "Rufbus Gäu", "area": REGION, "rules": {"change_s": 180}}
    )
    assert defined.status_code == 200, defined.text
    return Staff(login, "Erika Disponentin", operator, rider)


def vehicle_with_shift(
    api: httpx.Client,
    operator: dict[str, str],
    name: str,
    *,
    seats: int = 8,
    wheelchair_places: int = 1,
    starts: dt.datetime | None = None,
    hours: float = 10,
    driver_id: str | None = None,
) -> tuple[str, str]:
    """(vehicle id, shift id) of a new vehicle at Herrenberg Bahnhof on shift from `starts` (half an hour ago)."""
    vehicle = api.post(
        "/vehicles",
        headers=operator,
        json={"name": name, "seats": seats, "wheelchair_places": wheelchair_places, "depot": HERRENBERG_BAHNHOF},
    )
    assert vehicle.status_code == 201, vehicle.text
    begin = starts or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
    body: dict[str, Any] = {
        "vehicle_id": vehicle.json()["id"],
        "starts_at": begin.isoformat(),
        "ends_at": (begin + dt.timedelta(hours=hours)).isoformat(),
    }
    if driver_id is not None:
        body["driver_id"] = driver_id
    shift = api.post("/shifts", headers=operator, json=body)
    assert shift.status_code == 201, shift.text
    return vehicle.json()["id"], shift.json()["id"]


@pytest.fixture(scope="package")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests put their screenshots: MAAS_SCREENSHOTS when set (docs/console is made so), else a
    temporary folder."""
    given = os.environ.get("MAAS_SCREENSHOTS")
    folder = Path(given) if given else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # --no-sandbox: the tests run as root in CI, where Chromium's sandbox refuses to start.
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    try:
        yield chromium
    finally:
        chromium.close()


class Watched:
    """A page and everything wrong it said: script errors, refused policies, requests to other origins."""

    def __init__(self, page: Page, base_url: str, screenshots: Path) -> None:
        self.page = page
        self.base_url = base_url
        self.screenshots = screenshots
        self.problems: list[str] = []
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("console", self._console)
        page.on("request", self._request)

    def _console(self, message: ConsoleMessage) -> None:
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or "Refused to" in text):
            self.problems.append(f"policy: {text}")

    def _request(self, request: Request) -> None:
        url = request.url
        same = url.startswith(self.base_url) or url.startswith(self.base_url.replace("http", "ws", 1))
        if not same and not url.startswith("data:"):
            self.problems.append(f"request left the origin: {url}")

    def shot(self, name: str, full_page: bool = False) -> Path:
        path = self.screenshots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def sign_in(self, login: str, password: str = PASSWORD) -> None:
        page = self.page
        page.goto(f"{self.base_url}/console/")
        page.fill("#signin-login", login)
        page.fill("#signin-password", password)
        page.click("#signin-form button[type=submit]")
        page.wait_for_selector("#view-map:not([hidden])")
        page.wait_for_selector("#live-status[data-state=on]")

    def axe(self, context: str) -> list[dict[str, Any]]:
        """The serious and critical violations axe-core finds in the page as it is now."""
        page = self.page
        if not page.evaluate("typeof window.axe === 'object'"):
            page.evaluate(AXE.read_text())  # evaluated by the driver: the page's own policy allows no inline script
        found = page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))"
        )
        return [dict(v, page=context) for v in found if v["impact"] in ("serious", "critical")]


@pytest.fixture
def console(staff: Staff, base_url: str, browser: Browser, screenshots: Path) -> Iterator[Watched]:
    """A fresh browser context (no stored token or language), in German like a dispatcher's desk in Herrenberg,
    on the service's clock. (The server and the database come first: Playwright's synchronous API keeps an
    event loop running in the test's thread from its start on.)"""
    context = browser.new_context(viewport=VIEWPORT, locale="de-DE", timezone_id="Europe/Berlin")
    page = context.new_page()
    page.set_default_timeout(20_000)
    watched = Watched(page, base_url, screenshots)
    try:
        yield watched
    finally:
        context.close()
    assert not watched.problems, watched.problems
