"""The operator console's lists over HTTP against a real PostgreSQL: every booking searched, sorted and
paged (GET /bookings), and each shift's day as a timeline (GET /fleet/plans), on a fleet of its own."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from tests.helpers import BERLIN
from tests.maas.live_world import (
    HERRENBERG_BAHNHOF,
    HERRENBERG_VERENAWEG,
    KUPPINGEN,
    NEBRINGEN,
    ROHRAU,
    World,
    own_settings,
    soon,
    world,
)

__all__ = ["own_settings", "world"]  # fixtures


def _t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


class Booked:
    """The bookings made once for this module's tests: riders' and phone callers', and one ride served."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.big = world.bus(HERRENBERG_BAHNHOF, seats=8)  # the only bus a party of four fits
        self.small = world.bus(KUPPINGEN)
        suffix = uuid.uuid4().hex[:6]
        self.rosa, self.rosa_headers = world.users.make("rider", name=f"Rosa Reiter {suffix}")
        self.other, self.other_headers = world.users.make("rider", name=f"Otto Ander {suffix}")
        # Served at once: a party of four at the big bus's depot, picked up and dropped off.
        self.served = world.book(self.rosa_headers, HERRENBERG_BAHNHOF, KUPPINGEN, seated=4, earliest_pickup=soon(0.03))
        assert world.bus_of(self.served) == self.big
        for event in ("arrived", "picked_up", "dropped_off"):
            reported = world.client.post(
                "/driver/events", headers=self.big.headers, json={"booking_id": self.served["id"], "event": event}
            )
            assert reported.status_code == 200, reported.text
        self.rides = [
            world.book(self.rosa_headers, NEBRINGEN, HERRENBERG_BAHNHOF, earliest_pickup=soon(1)),
            world.book(self.other_headers, ROHRAU, HERRENBERG_VERENAWEG, earliest_pickup=soon(2)),
        ]
        self.calls = [
            self.phone("Erika Muster", "+49 7032 555-0101", KUPPINGEN, HERRENBERG_BAHNHOF, soon(1.5)),
            self.phone("Hans Anrufer", "07032 5550202", NEBRINGEN, KUPPINGEN, soon(3)),
        ]
        cancelled = world.client.post(f"/bookings/{self.rides[1]['id']}/cancel", headers=self.other_headers)
        assert cancelled.status_code == 200, cancelled.text
        self.rides[1] = cancelled.json()
        self.all = [self.served, *self.rides, *self.calls]

    def phone(
        self, name: str, phone: str, origin: dict[str, float], destination: dict[str, float], at: str
    ) -> dict[str, Any]:
        booked = self.world.client.post(
            "/operator/bookings",
            headers=self.world.operator,
            json={
                "caller": {"name": name, "phone": phone},
                "ride": {"origin": origin, "destination": destination, "earliest_pickup": at},
            },
        )
        assert booked.status_code == 201, booked.text
        return dict(booked.json())

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        return self.world.client.get(path, headers=headers or self.world.operator, params=params)

    def ids(self, **params: Any) -> list[str]:
        answer = self.get("/bookings", **params)
        assert answer.status_code == 200, answer.text
        return [b["id"] for b in answer.json()]


@pytest.fixture(scope="module")
def booked(world: World) -> Booked:
    return Booked(world)


def test_operators_filter_every_booking_by_status_name_phone_vehicle_and_time(booked: Booked) -> None:
    served, (waiting, cancelled), (erika, hans) = booked.served, booked.rides, booked.calls
    assert set(booked.ids()) == {b["id"] for b in booked.all}
    assert booked.ids(status="completed") == [served["id"]]
    assert booked.ids(status="cancelled") == [cancelled["id"]]
    assert set(booked.ids(status="confirmed,cancelled")) == {waiting["id"], cancelled["id"], erika["id"], hans["id"]}
    # q: a caller's name in any case, a rider's name, part of a phone number however it is spelt, an id's start.
    assert booked.ids(q="erika muster") == [erika["id"]]
    assert booked.ids(q="ANRUFER") == [hans["id"]]
    assert set(booked.ids(q="Rosa Reiter")) == {served["id"], waiting["id"]}
    assert booked.ids(q="5550101") == [erika["id"]]
    assert booked.ids(q="7032 555 0202") == [hans["id"]]
    assert booked.ids(q=hans["id"][:8].upper()) == [hans["id"]]
    assert booked.ids(q="nobody-called-this") == []
    assert booked.ids(q="%") == []  # LIKE's wildcards are matched as themselves
    # By vehicle: the served ride was the big bus's.
    assert served["id"] in booked.ids(vehicle_id=booked.big.vehicle_id)
    assert all(
        b["vehicle_id"] == booked.small.vehicle_id
        for b in booked.get("/bookings", vehicle_id=booked.small.vehicle_id).json()
    )
    # The pickup window overlaps from..to: only the rides around 1.5 hours from now.
    window = booked.ids(**{"from": soon(1.4), "to": soon(1.6)})
    assert erika["id"] in window and served["id"] not in window and hans["id"] not in window
    # A time without offset is Herrenberg's: an hour off if it were read as UTC.
    hans_latest = _t(hans["pickup_window"]["latest"]).astimezone(BERLIN).replace(tzinfo=None)
    assert hans["id"] in booked.ids(**{"from": (hans_latest - dt.timedelta(minutes=1)).isoformat()})
    assert hans["id"] not in booked.ids(**{"from": (hans_latest + dt.timedelta(minutes=1)).isoformat()})
    assert booked.ids(**{"from": soon(10)}) == []
    # Not tied to any train: every one of these rides.
    assert set(booked.ids(connection="none")) == {b["id"] for b in booked.all}
    assert booked.ids(connection="any") == [] and booked.ids(connection="first_mile") == []


def test_the_table_shows_names_vehicle_and_the_plans_times(booked: Booked) -> None:
    listed = {b["id"]: b for b in booked.get("/bookings").json()}
    erika = listed[booked.calls[0]["id"]]
    assert erika["caller"] == {"name": "Erika Muster", "phone": "+49 7032 555-0101"} and erika["rider_name"] is None
    assert erika["vehicle_name"].startswith("rufbus-") and erika["journey_id"] is None and erika["connection"] is None
    # A ride waiting for its pickup has the plan's times, inside its promise; a served one none.
    pickup, dropoff = _t(erika["pickup_estimate"]), _t(erika["dropoff_estimate"])
    assert _t(erika["pickup_window"]["earliest"]) <= pickup <= _t(erika["pickup_window"]["latest"])
    assert pickup < dropoff <= _t(erika["dropoff_latest"])
    served = listed[booked.served["id"]]
    assert served["rider_name"] == booked.rosa.name and served["status"] == "completed"
    assert served["pickup_estimate"] is None and served["dropoff_estimate"] is None
    # The single booking reads the same.
    assert booked.get(f"/bookings/{erika['id']}").json() == erika


def test_sorted_both_ways_and_paged_with_the_total(booked: Booked) -> None:
    everyone = booked.get("/bookings", sort="pickup")
    assert everyone.headers["x-total-count"] == str(len(booked.all))
    pickups = [_t(b["pickup_window"]["earliest"]) for b in everyone.json()]
    assert pickups == sorted(pickups)
    backwards = booked.ids(sort="-pickup")
    assert backwards == [b["id"] for b in reversed(everyone.json())]
    created = booked.ids(sort="created")
    assert created == [b["id"] for b in booked.all] and booked.ids(sort="-created") == created[::-1]
    statuses = [b["status"] for b in booked.get("/bookings", sort="status").json()]
    assert statuses == sorted(statuses, key=["confirmed", "picked_up", "completed", "no_show", "cancelled"].index)
    names = [b["vehicle_name"] for b in booked.get("/bookings", sort="vehicle").json() if b["vehicle_name"]]
    assert names == sorted(names)
    # Pages of two: together every booking once, in order; past the end empty, still with the total.
    pages = [booked.get("/bookings", sort="pickup", limit=2, offset=k) for k in (0, 2, 4)]
    assert [b["id"] for p in pages for b in p.json()] == [b["id"] for b in everyone.json()]
    assert all(p.headers["x-total-count"] == str(len(booked.all)) for p in pages)
    beyond = booked.get("/bookings", limit=2, offset=100)
    assert beyond.json() == [] and beyond.headers["x-total-count"] == str(len(booked.all))
    narrow = booked.get("/bookings", status="confirmed", limit=1)
    assert len(narrow.json()) == 1 and narrow.headers["x-total-count"] == "3"  # waiting, Erika, Hans


def test_a_rider_sees_only_their_own(booked: Booked) -> None:
    own = booked.get("/bookings", booked.rosa_headers)
    assert {b["id"] for b in own.json()} == {booked.served["id"], booked.rides[0]["id"]}
    assert own.headers["x-total-count"] == "2"
    assert all(b["rider_name"] is None for b in own.json())  # names are for operators
    assert booked.get("/bookings", booked.rosa_headers, q="Erika").json() == []
    assert booked.get(f"/bookings/{booked.calls[0]['id']}", booked.rosa_headers).status_code == 404
    assert booked.get("/fleet/plans", booked.rosa_headers).status_code == 403


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/bookings", {"status": "lost"}, "status"),
        ("/bookings", {"status": "confirmed,"}, "status"),
        ("/bookings", {"limit": "0"}, "limit"),
        ("/bookings", {"limit": "501"}, "limit"),
        ("/bookings", {"offset": "-1"}, "offset"),
        ("/bookings", {"sort": "price"}, "sort"),
        ("/bookings", {"connection": "train"}, "connection"),
        ("/bookings", {"vehicle_id": "bus-1"}, "vehicle_id"),
        ("/bookings", {"from": "yesterday"}, "from"),
        ("/bookings", {"q": "x" * 101}, "q"),
        ("/bookings", {"q": ""}, "q"),
        ("/journeys", {"status": "booked"}, "status"),
        ("/journeys", {"sort": "pickup"}, "sort"),
        ("/fleet/plans", {"date": "2026-13-01"}, "date"),
        ("/fleet/plans", {"date": "tomorrow"}, "date"),
    ],
)
def test_bad_parameters_are_refused_naming_them(booked: Booked, path: str, params: dict[str, str], named: str) -> None:
    answer = booked.get(path, **params)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert named in answer.json()["detail"], answer.json()


def test_times_that_cannot_be_meant_are_refused_with_the_reason(booked: Booked) -> None:
    reversed_range = booked.get("/bookings", **{"from": soon(2), "to": soon(1)})
    assert reversed_range.status_code == 422 and reversed_range.json()["detail"].startswith("to:")
    far = booked.get("/fleet/plans", date="2031-01-01")
    assert far.status_code == 422 and "a year" in far.json()["detail"]


def test_each_shift_s_day_lists_served_then_planned_stops_inside_their_windows(booked: Booked) -> None:
    answer = booked.get("/fleet/plans")
    assert answer.status_code == 200, answer.text
    plans = {p["shift_id"]: p for p in answer.json()}
    assert {booked.big.shift_id, booked.small.shift_id} <= set(plans)
    big = plans[booked.big.shift_id]
    assert big["vehicle"]["id"] == booked.big.vehicle_id and big["vehicle"]["seats"] == 8
    assert big["driver"]["id"] == str(booked.big.driver.id) and big["driver"]["name"] == booked.big.driver.name
    stops = big["stops"]
    assert stops[0]["kind"] == stops[-1]["kind"] == "depot"
    assert stops[0]["planned_at"] == big["starts_at"] and stops[-1]["planned_at"] == big["ends_at"]
    # The ride served today: its pickup and drop-off at the driver's times, first.
    served = [s for s in stops if s["booking_id"] == booked.served["id"]]
    assert [s["kind"] for s in served] == ["pickup", "dropoff"] and stops[1:3] == served
    assert all(s["status"] == "completed" and s["served_at"] and s["planned_at"] is None for s in served)
    assert _t(served[0]["served_at"]) <= _t(served[1]["served_at"])
    assert served[0]["label"] == booked.rosa.name and served[0]["passengers"] == {"seated": 4, "wheelchairs": 0}
    assert (served[0]["lat"], served[0]["lon"]) == (HERRENBERG_BAHNHOF["lat"], HERRENBERG_BAHNHOF["lon"])
    # Every shift: the planned stops in the plan's order (the driver's own plan), times inside their promises.
    cancelled = booked.rides[1]["id"]
    for shift in (booked.big, booked.small):
        timeline = plans[shift.shift_id]["stops"]
        planned = [s for s in timeline if s["kind"] in ("pickup", "dropoff") and s["served_at"] is None]
        driver_plan = booked.world.client.get("/driver/plan", headers=shift.headers).json()["stops"]
        assert [(s["booking_id"], s["kind"]) for s in planned] == [(s["booking_id"], s["kind"]) for s in driver_plan]
        times = [_t(s["planned_at"]) for s in planned]
        assert times == sorted(times)
        for stop in planned:
            assert stop["booking_id"] != cancelled and stop["status"] == "confirmed"
            at, window = _t(stop["planned_at"]), stop["window"]
            if stop["kind"] == "pickup":
                assert _t(window["earliest"]) <= at <= _t(window["latest"])
            else:
                assert window["earliest"] is None and at <= _t(window["latest"])
    erika = booked.calls[0]
    pickup = next(
        s for p in plans.values() for s in p["stops"] if s["booking_id"] == erika["id"] and s["kind"] == "pickup"
    )
    assert pickup["label"] == "Erika Muster" and (pickup["lat"], pickup["lon"]) == (KUPPINGEN["lat"], KUPPINGEN["lon"])
    # Another day has none of today's shifts.
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).date().isoformat()
    assert booked.big.shift_id not in {p["shift_id"] for p in booked.get("/fleet/plans", date=tomorrow).json()}
