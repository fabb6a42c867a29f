"""`maas demo` on a fresh machine: builds the bundled region with its timetables moved to run this week,
then reuses it until a new week starts; and the network of the tests that runs today."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from maas.cli import main
from maas.demo import _forget_other_shifts, _up_to_date, demo_feeds_dir, demo_inputs, next_weekday_morning
from routing.network import load_network, read_manifest
from routing.plan import Endpoint, PlanRequest, Router
from tests.helpers import BERLIN, assert_sound
from tests.maas.conftest import fresh_database


@pytest.fixture
def demo_database(database_url: str) -> Iterator[str]:
    """A database of the demo's own: the demo activates its network, whose timetables run this week,
    and the network the other service tests share must stay the one of 2020 and 2021."""
    with fresh_database(database_url, "maas_demo") as url:
        yield url


def test_demo_builds_the_bundled_region_and_plans_a_rural_journey(tmp_path: Path, demo_database: str) -> None:
    out = tmp_path / "demo"
    env = {"MAAS_DATABASE_URL": demo_database, "MAAS_DATA_DIR": str(tmp_path / "data")}
    before = dict(os.environ)
    first = CliRunner().invoke(main, ["demo", "--out", str(out), "--no-serve"], env=env)
    assert first.exit_code == 0, first.output
    assert dict(os.environ) == before, "the CLI passes settings down instead of writing the environment"
    assert "Herrenberg demo region" in first.output
    assert "on-demand to Herrenberg" in first.output and "S1 to Ehningen" in first.output
    manifest = read_manifest(out)
    assert len(manifest.feeds) == 5 and manifest.counts.sharing["systems"] == 5
    assert set(manifest.counts.streets) == {"walk", "bike", "drive"}
    assert "demo bookings:" in first.output and "Nebringen -> Herrenberg Bahnhof" in first.output
    tokens = dict(
        line.strip().split(": ", 1)
        for line in first.output.splitlines()
        if line.startswith("  ") and line.strip().split(":")[0] in {"admin", "operator", "rider", "driver"}
    )
    assert set(tokens) == {"admin", "operator", "rider", "driver"}
    again = CliRunner().invoke(main, ["demo", "--out", str(out), "--no-serve"], env=env)
    assert again.exit_code == 0 and "using the demo network" in again.output
    assert read_manifest(out).created == manifest.created
    # The printed rider token works against the API and sees the demo bookings.
    from litestar.testing import TestClient

    from maas.app import create_app
    from maas.settings import Settings

    settings = Settings.from_env({**env, "MAAS_NETWORK_DIR": str(out)})
    shown = re.search(r"operator console: (\S+)/console/ +\(sign in as '([^']+)', password '([^']+)'\)", first.output)
    assert shown, first.output
    login, password = shown.group(2), shown.group(3)
    assert password in again.output, "a second run prints the same sign-in"
    with TestClient(create_app(settings)) as client:
        mine = client.get("/bookings", headers={"Authorization": f"Bearer {tokens['rider']}"})
        assert mine.status_code == 200 and len(mine.json()) >= 3
        # The printed sign-in opens the console as an operator.
        page = client.get("/console/")
        assert page.status_code == 200 and '<script type="module" src="/console/app.js">' in page.text
        signed = client.post("/sessions", json={"login": login, "password": password})
        assert signed.status_code == 201 and signed.json()["session"]["role"] == "operator"


def test_demo_json_prints_one_object_for_scripts_and_the_rest_on_stderr(tmp_path: Path, demo_database: str) -> None:
    out = tmp_path / "demo"
    env = {"MAAS_DATABASE_URL": demo_database, "MAAS_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--no-serve", "--json"], env=env)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)  # exactly one JSON document, nothing else on stdout
    assert set(answer) == {"network", "now", "tokens", "console"}
    assert answer["console"]["url"].endswith("/console/") and answer["console"]["login"] == "leitstelle"
    assert set(answer["tokens"]) == {"admin", "operator", "rider", "driver", "agency"}
    assert answer["network"] == str(out.resolve())
    manifest = read_manifest(answer["network"])
    now = dt.datetime.fromisoformat(answer["now"])
    zone = zoneinfo.ZoneInfo(manifest.timezone)
    assert now.utcoffset() == dt.datetime.now(zone).utcoffset()
    assert abs(now - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    for shown in ("Herrenberg demo region", "sample journey", "S1 to Ehningen", "demo tokens", "rider: "):
        assert shown in result.stderr
    # Each feed is moved by whole weeks into a folder that names the shift, and runs today.
    for feed in manifest.feeds:
        assert re.fullmatch(r"shift\+\d+w", Path(feed.source).parent.name), feed.source
        assert feed.service_start is not None and feed.service_end is not None
        assert feed.service_start <= now.date() <= feed.service_end
    # A week later the shifts differ and the network is built again; today it is reused.
    assert _up_to_date(out, demo_inputs(demo_feeds_dir(out), now)) == manifest
    assert _up_to_date(out, demo_inputs(demo_feeds_dir(out), now + dt.timedelta(weeks=1))) is None
    # What a script does next: serve that network and plan a journey for the next weekday morning as a rider.
    from litestar.testing import TestClient

    from maas.app import create_app
    from maas.settings import Settings

    depart = next_weekday_morning(now)
    settings = Settings.from_env({**env, "MAAS_NETWORK_DIR": answer["network"]})
    with TestClient(create_app(settings)) as client:
        plan = client.get(
            "/plan",
            params={"from": "48.5935,8.8630", "to": "48.6582,8.9408", "depart": depart.isoformat()},
            headers={"Authorization": f"Bearer {answer['tokens']['rider']}"},
        )
        assert plan.status_code == 200, plan.text
        routes = {leg["route_name"] for it in plan.json()["itineraries"] for leg in it["legs"]}
        assert "S1" in routes, plan.json()


def _weeks(path: str) -> int:
    """The shift a demo feed's folder names (`shift+337w` -> 337)."""
    match = re.fullmatch(r"shift([+-]\d+)w", Path(path).parent.name)
    assert match, path
    return int(match.group(1))


def test_the_shifts_change_when_a_new_week_starts_and_old_copies_go(tmp_path: Path) -> None:
    """A network built last week has other shifts than today's, so `maas demo` does not reuse it
    (test_demo_json_... sees `_up_to_date` refuse it); within a week the shifts stay."""
    feeds = demo_feeds_dir(tmp_path / "demo")
    monday = dt.datetime(2026, 6, 1, 0, 30, tzinfo=BERLIN)
    this_week = demo_inputs(feeds, monday)
    assert demo_inputs(feeds, monday + dt.timedelta(days=6, hours=23)).gtfs == this_week.gtfs  # Sunday 23:30
    next_week = demo_inputs(feeds, monday + dt.timedelta(days=7))
    assert [_weeks(p) + 1 for p in this_week.gtfs] == [_weeks(p) for p in next_week.gtfs]
    assert all(Path(p).exists() for p in [*this_week.gtfs, *next_week.gtfs])
    _forget_other_shifts(feeds, next_week)
    assert {p.parent for p in feeds.glob("*/*.zip")} == {Path(p).parent for p in next_week.gtfs}


def _trips_running(network_dir: Path, days: list[dt.date]) -> list[dict[str, int]]:
    """How many trips of each feed of a built network run on each of the days."""
    network = load_network(network_dir)
    t = network.timetable
    feed_of_trip = np.char.partition(t.trip_id.astype(str), ":")[:, 0]
    counts = []
    for day in days:
        d = (day - network.manifest.first_date).days
        runs = np.zeros(len(t.trip_id), dtype=bool)
        if 0 <= d < network.manifest.n_days:
            runs = ((t.service_days[t.trip_service, d // 8] >> (d % 8)) & 1).astype(bool)
        counts.append({f.id: int((runs & (feed_of_trip == f.id)).sum()) for f in network.manifest.feeds})
    return counts


def test_every_feed_of_todays_network_runs_on_the_weekdays_of_the_coming_weeks(
    today_network_dir: Path, network_dir: Path
) -> None:
    today = dt.datetime.now(BERLIN).date()
    days = [today + dt.timedelta(days=k) for k in range(21)]
    for day, running in zip(days, _trips_running(today_network_dir, days), strict=True):
        assert len(running) == 5
        if day.weekday() < 5:
            assert all(running.values()), (day, running)
        else:
            assert running["vvs-s1-only"] > 0, (day, running)
    published = _trips_running(network_dir, days)
    assert not any(n for running in published for n in running.values()), "as published they run in 2020 and 2021"


def test_the_s1_leaves_herrenberg_for_stuttgart_on_the_next_weekday_morning(
    today_network_dir: Path, network_dir: Path
) -> None:
    depart = next_weekday_morning(dt.datetime.now(BERLIN))
    assert depart.weekday() < 5 and depart.time() == dt.time(7, 30)
    request = PlanRequest(
        origin=Endpoint(lat=48.5935, lon=8.8630),
        destination=Endpoint(stop="vvs-s1-only:de:08111:6118:1:102"),  # Stuttgart Hbf (tief), towards Plochingen
        depart=depart,
    )
    plan = Router(load_network(today_network_dir)).plan(request)
    by_s1 = [it for it in plan.itineraries if [leg.route_name for leg in it.legs if leg.mode == "transit"] == ["S1"]]
    assert by_s1, [[(leg.mode, leg.route_name) for leg in it.legs] for it in plan.itineraries]
    first = by_s1[0]
    assert_sound(first, depart)
    assert first.departure - depart < dt.timedelta(minutes=40), "the S1 runs every half hour in the morning"
    assert dt.timedelta(minutes=30) < first.arrival - first.departure < dt.timedelta(minutes=75)
    assert first.legs[-1].to.name == "Stuttgart Hauptbahnhof (tief)"
    old = Router(load_network(network_dir)).plan(request)
    assert not [it for it in old.itineraries if any(leg.mode == "transit" for leg in it.legs)]
