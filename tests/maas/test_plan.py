"""Riders plan journeys over HTTP on the served Herrenberg network: the same answer as `maas plan --json`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from maas.cli import main
from tests.maas.conftest import Users

HERRENBERG_BAHNHOF = "48.5935,8.8630"
EHNINGEN = "48.6582,8.9408"
DEPART = "2020-10-06T07:30:00+02:00"


@pytest.fixture(scope="module")
def rider(users: Users) -> dict[str, str]:
    return users.make("rider")[1]


def test_the_s_bahn_takes_a_rider_from_herrenberg_to_ehningen(client: TestClient, rider: dict[str, str]) -> None:
    answer = client.get("/plan", headers=rider, params={"from": HERRENBERG_BAHNHOF, "to": EHNINGEN, "depart": DEPART})
    assert answer.status_code == 200, answer.text
    best = answer.json()["itineraries"][0]
    assert [leg["route_name"] for leg in best["legs"] if leg["mode"] == "transit"] == ["S1"]
    depart = dt.datetime.fromisoformat(DEPART)
    assert depart <= dt.datetime.fromisoformat(best["departure"]) < dt.datetime.fromisoformat(best["arrival"])
    assert dt.datetime.fromisoformat(best["arrival"]) - depart < dt.timedelta(minutes=45)
    assert best["legs"][0]["from"]["lat"] == pytest.approx(48.5935)
    for a, b in zip(best["legs"], best["legs"][1:], strict=False):
        assert a["arrival"] <= b["departure"]


def test_the_answer_is_what_maas_plan_json_prints(client: TestClient, rider: dict[str, str], network_dir: Path) -> None:
    for when in ({"depart": DEPART}, {"arrive_by": "2020-10-06T08:30:00+02:00"}):
        answer = client.get("/plan", headers=rider, params={"from": HERRENBERG_BAHNHOF, "to": EHNINGEN, **when})
        assert answer.status_code == 200, answer.text
        option, value = next(iter(when.items()))
        printed = CliRunner().invoke(
            main,
            [
                "plan",
                str(network_dir),
                "--from",
                HERRENBERG_BAHNHOF,
                "--to",
                EHNINGEN,
                f"--{option.replace('_', '-')}",
                value,
                "--json",
            ],
        )
        assert printed.exit_code == 0, printed.output
        shown = answer.json()["itineraries"]
        assert shown and all(it.pop("id") for it in shown), "the service keeps every itinerary under an id"
        assert shown == [{k: v for k, v in it.items() if k != "id"} for it in json.loads(printed.output)["itineraries"]]


def test_arrive_by_arrives_in_time_and_a_local_time_is_the_networks(client: TestClient, rider: dict[str, str]) -> None:
    deadline = dt.datetime.fromisoformat("2020-10-06T08:30:00+02:00")
    by = client.get(
        "/plan", headers=rider, params={"from": HERRENBERG_BAHNHOF, "to": EHNINGEN, "arrive_by": "2020-10-06T08:30"}
    )
    assert by.status_code == 200, by.text
    itineraries = by.json()["itineraries"]
    assert itineraries and all(dt.datetime.fromisoformat(it["arrival"]) <= deadline for it in itineraries)
    local = client.get(
        "/plan",
        headers=rider,
        params={
            "from": HERRENBERG_BAHNHOF,
            "to": EHNINGEN,
            "depart": "2020-10-06T07:30",
            "max_walk_m": 800,
            "wheelchair": "true",
        },
    )
    assert local.status_code == 200, local.text
    assert all(
        dt.datetime.fromisoformat(it["departure"]) >= dt.datetime.fromisoformat(DEPART)
        for it in local.json()["itineraries"]
    )


@pytest.mark.parametrize(
    "params, words",
    [
        ({"from": "48.5935;8.8630", "to": EHNINGEN, "depart": DEPART}, "lat,lon"),
        ({"from": "95,8.86", "to": EHNINGEN, "depart": DEPART}, "latitude"),
        ({"from": "52.52,13.40", "to": EHNINGEN, "depart": DEPART}, "outside this network"),
        ({"from": HERRENBERG_BAHNHOF, "to": EHNINGEN, "depart": "tomorrow morning"}, "ISO 8601"),
        ({"from": HERRENBERG_BAHNHOF, "to": EHNINGEN}, "exactly one of depart and arrive_by"),
        ({"from": HERRENBERG_BAHNHOF, "to": EHNINGEN, "depart": DEPART, "arrive_by": DEPART}, "exactly one"),
        ({"from": HERRENBERG_BAHNHOF, "to": EHNINGEN, "depart": DEPART, "max_walk_m": -1}, "max_walk_m"),
        ({"from": "stop:nowhere:1", "to": EHNINGEN, "depart": DEPART}, "no stop"),
    ],
)
def test_unusable_requests_are_422_problems(
    client: TestClient, rider: dict[str, str], params: dict[str, object], words: str
) -> None:
    answer = client.get("/plan", headers=rider, params=params)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert words in answer.json()["detail"]


def test_riders_operators_and_admins_plan_drivers_and_strangers_do_not(client: TestClient, users: Users) -> None:
    params = {"from": HERRENBERG_BAHNHOF, "to": EHNINGEN, "depart": DEPART}
    for role in ("operator", "admin"):
        assert client.get("/plan", headers=users.make(role)[1], params=params).status_code == 200
    assert client.get("/plan", headers=users.make("driver")[1], params=params).status_code == 403
    assert client.get("/plan", params=params).status_code == 401
