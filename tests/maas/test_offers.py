"""Riders choose among a quote's offers: ordered by closeness to the asked time, each booked by its id
until it expires; Idempotency-Keys tell a retry from another request. Over HTTP, a fresh database,
the Herrenberg drive network."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import TestClient

from maas.app import create_app
from maas.settings import Settings
from tests.helpers import HERRENBERG_BAHNHOF, KUPPINGEN, NEBRINGEN, vehicle_on_shift
from tests.maas.conftest import Users, own_database


@pytest.fixture(scope="module")
def offer_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with own_database(settings, "maas_offers", settings.network_dir, tmp_path_factory.mktemp("offers-data")) as own:
        yield own


@pytest.fixture(scope="module")
def app(offer_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(offer_settings)) as client:
        yield client


@pytest.fixture(scope="module")
def users(offer_settings: Settings) -> Users:
    return Users(offer_settings)


def _at(hours: float) -> dt.datetime:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).replace(microsecond=0)


def _t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _quote(app: TestClient, rider: dict[str, str], **wish: Any) -> dict[str, Any]:
    answer = app.post("/quotes", headers=rider, json=wish)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_the_first_offer_picks_up_at_the_asked_time_when_a_bus_stands_idle_at_the_pickup(
    app: TestClient, users: Users
) -> None:
    _, operator = users.make("operator")
    _, rider = users.make("rider")
    asked = _at(3)
    # A bus from Herrenberg Bahnhof picks someone up in Nebringen 20 minutes after the asked time...
    vehicle_on_shift(app, operator, seats=8, depot=HERRENBERG_BAHNHOF)
    _, other = users.make("rider")
    later = {
        "origin": NEBRINGEN,
        "destination": HERRENBERG_BAHNHOF,
        "earliest_pickup": (asked + dt.timedelta(minutes=20)).isoformat(),
    }
    assert app.post("/bookings", headers=other, json=later).status_code == 201
    # ... and another stands idle at Nebringen.
    vehicle_on_shift(app, operator, seats=8, depot=NEBRINGEN)
    quote = _quote(app, rider, origin=NEBRINGEN, destination=HERRENBERG_BAHNHOF, earliest_pickup=asked.isoformat())
    first = quote["offers"][0]
    assert _t(first["pickup_estimate"]) - asked <= dt.timedelta(minutes=2)
    pickups = [_t(o["pickup_estimate"]) for o in quote["offers"]]
    assert pickups == sorted(pickups)
    # The old body books the first offer, at the asked time (the idle bus, or the other one if it can
    # come as soon at the same cost).
    booked = app.post(
        "/bookings",
        headers=rider,
        json={"origin": NEBRINGEN, "destination": HERRENBERG_BAHNHOF, "earliest_pickup": asked.isoformat()},
    )
    assert booked.status_code == 201, booked.text
    assert _t(booked.json()["pickup_window"]["earliest"]) - asked <= dt.timedelta(minutes=2)


def test_an_arrive_by_rider_is_dropped_off_shortly_before_the_asked_time(app: TestClient, users: Users) -> None:
    _, operator = users.make("operator")
    _, rider = users.make("rider")
    vehicle_on_shift(app, operator, seats=8, depot=KUPPINGEN)
    deadline = _at(4)
    quote = _quote(app, rider, origin=KUPPINGEN, destination=HERRENBERG_BAHNHOF, latest_arrival=deadline.isoformat())
    drops = [_t(o["dropoff_estimate"]) for o in quote["offers"]]
    assert drops == sorted(drops, reverse=True)
    # Within one pickup window (10 minutes by default) of the deadline, never after it.
    assert deadline - dt.timedelta(minutes=11) <= drops[0] <= deadline
    assert _t(quote["offers"][0]["dropoff_latest"]) <= deadline


def test_a_rider_books_the_offer_chosen_by_its_id_once_and_before_it_expires(
    app: TestClient, users: Users, offer_settings: Settings
) -> None:
    _, operator = users.make("operator")
    _, rider = users.make("rider")
    for depot in (KUPPINGEN, HERRENBERG_BAHNHOF):
        vehicle_on_shift(app, operator, seats=8, depot=depot)
    wish = {"origin": KUPPINGEN, "destination": NEBRINGEN, "earliest_pickup": _at(2).isoformat()}
    quote = _quote(app, rider, **wish)
    assert len(quote["offers"]) >= 2
    for offer in quote["offers"]:
        assert offer["id"] and _t(offer["expires"]) > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    chosen = quote["offers"][-1]
    booked = app.post("/bookings", headers={**rider, "Idempotency-Key": "chosen"}, json={"offer": chosen["id"]})
    assert booked.status_code == 201, booked.text
    assert booked.json()["pickup_window"] == chosen["pickup_window"]
    assert booked.json()["dropoff_latest"] == chosen["dropoff_latest"]
    # A retry gets the same booking; the same offer with another key is refused, as is another rider.
    again = app.post("/bookings", headers={**rider, "Idempotency-Key": "chosen"}, json={"offer": chosen["id"]})
    assert again.status_code == 200 and again.json()["id"] == booked.json()["id"]
    twice = app.post("/bookings", headers=rider, json={"offer": chosen["id"]})
    assert twice.status_code == 409 and "booked already" in twice.json()["detail"]
    _, stranger = users.make("rider")
    other = quote["offers"][0]["id"]
    assert app.post("/bookings", headers=stranger, json={"offer": other}).status_code == 404
    # Once it expired, an offer is refused with the reason.
    asyncio.run(_expire(offer_settings.database_url or "", other))
    expired = app.post("/bookings", headers=rider, json={"offer": other})
    assert expired.status_code == 409 and "expired" in expired.json()["detail"]
    both = app.post("/bookings", headers=rider, json={"offer": other, **wish})
    assert both.status_code == 422 and "not both" in both.json()["detail"]
    neither = app.post("/bookings", headers=rider, json={"seated": 2})
    assert neither.status_code == 422 and "origin and destination" in neither.json()["detail"]


async def _expire(url: str, offer_id: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "UPDATE offers SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 hour' WHERE id = $1",
            offer_id,
        )
    finally:
        await conn.close()


def test_an_idempotency_key_reused_for_another_ride_is_refused_with_422(app: TestClient, users: Users) -> None:
    _, operator = users.make("operator")
    _, rider = users.make("rider")
    vehicle_on_shift(app, operator, seats=8, depot=HERRENBERG_BAHNHOF)
    when = _at(5)
    wish = {"origin": NEBRINGEN, "destination": HERRENBERG_BAHNHOF, "earliest_pickup": when.isoformat()}
    first = app.post("/bookings", headers={**rider, "Idempotency-Key": "trip-7"}, json=wish)
    assert first.status_code == 201, first.text
    # The same request (the time written in another offset) is a retry.
    local = when.astimezone(dt.timezone(dt.timedelta(hours=1))).isoformat()
    retry = app.post(
        "/bookings", headers={**rider, "Idempotency-Key": "trip-7"}, json={**wish, "earliest_pickup": local}
    )
    assert retry.status_code == 200 and retry.json()["id"] == first.json()["id"]
    other = app.post("/bookings", headers={**rider, "Idempotency-Key": "trip-7"}, json={**wish, "seated": 2})
    assert other.status_code == 422, other.text
    assert other.headers["content-type"].startswith("application/problem+json")
    assert "trip-7" in other.json()["detail"] and "another request" in other.json()["detail"]
    stored = app.get("/bookings", headers=rider).json()
    assert [b["id"] for b in stored] == [first.json()["id"]] and stored[0]["passengers"]["seated"] == 1
