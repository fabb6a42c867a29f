"""A corpus of malformed and meaningless inputs against every write endpoint of a real server (two
workers): each is refused with a 4xx problem+json saying what is wrong, nothing of it is stored, and
the server answers /health between every two of them."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from maas.settings import Settings
from tests.helpers import HERRENBERG_BAHNHOF, KUPPINGEN, NEBRINGEN
from tests.maas.conftest import Users

NUL = "a\x00b"
MB = "x" * 1_000_000
# The tables a write endpoint can add to; each case must leave every count as it was.
TABLES = (
    "users",
    "vehicles",
    "shifts",
    "bookings",
    "booking_events",
    "positions",
    "service_areas",
    "offers",
    "journeys",
    "audit_log",
    "feed_versions",
    "gtfs_rt_messages",
)
SQUARE = [[[8.85, 48.58], [8.90, 48.58], [8.90, 48.61], [8.85, 48.61], [8.85, 48.58]]]


def _at(days: float = 0, hours: float = 1) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days, hours=hours)).isoformat()


def _ride(**changes: Any) -> dict[str, Any]:
    return {"origin": NEBRINGEN, "destination": HERRENBERG_BAHNHOF, "earliest_pickup": _at(), **changes}


def _vehicle(**changes: Any) -> dict[str, Any]:
    return {"name": f"bus-{uuid.uuid4().hex[:6]}", "seats": 4, "depot": HERRENBERG_BAHNHOF, **changes}


def _deep(levels: int) -> bytes:
    return b'{"name": ' + b"[" * levels + b"]" * levels + b"}"


class Case:
    """One malformed request: who sends it (a role), where, and the body (JSON, or raw bytes with a type)."""

    def __init__(
        self, label: str, role: str, method: str, path: str, json: Any = None, raw: bytes | None = None, **kw: Any
    ) -> None:
        self.label, self.role, self.method, self.path = label, role, method, path
        self.json, self.raw = json, raw
        self.content_type: str = kw.get("content_type", "application/json")
        self.params: dict[str, str] = kw.get("params", {})
        self.headers: dict[str, str] = kw.get("headers", {})
        self.words: str = kw.get("words", "")  # what the detail must say, where it matters


def corpus(vehicle_id: str, booking_id: str) -> list[Case]:
    """Every class of the issue and a few more, over every write endpoint."""
    plan = {"from": "48.5627,8.8481", "to": "48.5935,8.8630", "depart": "2021-06-15T08:00"}
    shift = {"vehicle_id": vehicle_id}
    return [
        # NUL bytes in stored text and in GeoJSON
        Case("NUL in a vehicle name", "operator", "POST", "/vehicles", _vehicle(name=NUL)),
        Case("NUL in a user name", "admin", "POST", "/admin/users", {"name": NUL, "role": "rider"}),
        Case("NUL in a phone", "admin", "POST", "/admin/users", {"name": "Anna", "role": "rider", "phone": "\x00"}),
        Case("NUL in an agency", "admin", "POST", "/admin/users", {"name": "A", "role": "agency", "agency": NUL}),
        Case(
            "NUL in a caller",
            "operator",
            "POST",
            "/operator/bookings",
            {"caller": {"name": NUL, "phone": "1"}, "ride": _ride()},
        ),
        Case("NUL in a cancel reason", "rider", "POST", f"/bookings/{booking_id}/cancel", {"reason": NUL}),
        Case("NUL in a journey's cancel reason", "rider", "POST", f"/journeys/{booking_id}/cancel", {"reason": NUL}),
        Case("a malformed shift id", "driver", "POST", "/driver/shifts/not-a-uuid/sign-in"),
        Case("a malformed feed version id", "agency", "POST", "/feeds/123/publish"),
        Case(
            "NUL in a reassign reason",
            "operator",
            "POST",
            f"/operator/bookings/{booking_id}/reassign",
            {"vehicle_id": vehicle_id, "reason": NUL},
        ),
        Case(
            "NUL in an area name",
            "operator",
            "PUT",
            "/service-area",
            {"name": NUL, "geometry": {"type": "Polygon", "coordinates": SQUARE}},
        ),
        Case(
            "NUL in GeoJSON properties",
            "operator",
            "PUT",
            "/service",
            {
                "name": "Gäu",
                "area": {
                    "type": "Feature",
                    "properties": {"name": NUL},
                    "geometry": {"type": "Polygon", "coordinates": SQUARE},
                },
            },
        ),
        Case(
            "NUL in a GeoJSON key",
            "operator",
            "PUT",
            "/service-area",
            {
                "name": "a",
                "geometry": {
                    "type": "Feature",
                    "properties": {NUL: 1},
                    "geometry": {"type": "Polygon", "coordinates": SQUARE},
                },
            },
        ),
        Case(
            "NUL in a GTFS-RT feed id",
            "operator",
            "POST",
            "/realtime/gtfs-rt/a%00b",
            raw=b"\x00",
            content_type="application/x-protobuf",
        ),
        # JSON nested 1,000 deep
        Case("nested 1000 deep: vehicle", "operator", "POST", "/vehicles", raw=_deep(1000)),
        Case("nested 1000 deep: booking", "rider", "POST", "/bookings", raw=_deep(1000), words="nested"),
        Case("nested 1000 deep: area", "operator", "PUT", "/service-area", raw=_deep(1000)),
        Case("nested 1000 deep: positions", "driver", "POST", "/driver/positions", raw=_deep(1000)),
        Case(
            "nested coordinates",
            "operator",
            "PUT",
            "/service-area",
            {"name": "a", "geometry": {"type": "Polygon", "coordinates": [[[[[[8.8]]]]]]}},
        ),
        # integers beyond 32 bits, ids beyond 64 bits, malformed UUIDs
        Case("seats beyond 32 bits", "operator", "POST", "/vehicles", _vehicle(seats=2**40)),
        Case("wheelchair places beyond 64 bits", "operator", "POST", "/vehicles", _vehicle(wheelchair_places=2**70)),
        Case("passengers beyond 32 bits", "rider", "POST", "/quotes", _ride(seated=2**33)),
        Case("network id beyond 64 bits", "operator", "POST", "/networks/99999999999999999999999/activate"),
        Case("network id beyond 32 bits", "operator", "POST", "/networks/2147483648/activate"),
        Case("audit limit beyond 64 bits", "operator", "GET", "/audit", params={"limit": "99999999999999999999"}),
        Case("malformed offer id", "rider", "POST", "/bookings", {"offer": "not-a-uuid"}),
        Case(
            "malformed vehicle id",
            "operator",
            "POST",
            "/shifts",
            {**shift, "vehicle_id": "12345", "starts_at": _at(), "ends_at": _at(hours=5)},
        ),
        Case("malformed itinerary id", "rider", "POST", "/journeys", {"itinerary": "1" * 40}),
        Case(
            "a caller's journey with a malformed itinerary id",
            "operator",
            "POST",
            "/operator/journeys",
            {"itinerary": "1" * 40, "caller": {"name": "Erika", "phone": "+49 7032 0"}},
        ),
        Case(
            "a caller's journey without a caller",
            "operator",
            "POST",
            "/operator/journeys",
            {"itinerary": str(uuid.uuid4())},
        ),
        Case(
            "a caller's journey for a 1 MB caller name",
            "operator",
            "POST",
            "/operator/journeys",
            {"itinerary": str(uuid.uuid4()), "caller": {"name": MB, "phone": "1"}},
        ),
        Case(
            "a caller's journey with NUL in the phone number",
            "operator",
            "POST",
            "/operator/journeys",
            {"itinerary": str(uuid.uuid4()), "caller": {"name": "Erika", "phone": NUL}},
        ),
        Case(
            "a caller's journey with an unknown field",
            "operator",
            "POST",
            "/operator/journeys",
            {"itinerary": str(uuid.uuid4()), "caller": {"name": "Erika", "phone": "1"}, "rider": "me"},
        ),
        # floats like 1e308 and NaN for coordinates
        Case("1e308 depot", "operator", "POST", "/vehicles", _vehicle(depot={"lat": 1e308, "lon": 8.8})),
        Case("NaN origin", "rider", "POST", "/bookings", _ride(origin={"lat": "NaN", "lon": 8.8})),
        Case(
            "Infinity destination",
            "rider",
            "POST",
            "/quotes",
            raw=b'{"origin": {"lat": 48.56, "lon": 8.84}, "destination": {"lat": 1e999, "lon": 8.86}, "earliest_pickup": "%s"}'
            % _at().encode(),
        ),
        Case(
            "1e308 in GeoJSON",
            "operator",
            "PUT",
            "/service-area",
            {
                "name": "a",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[1e308, 48.0], [9.0, 48.0], [9.0, 49.0], [1e308, 48.0]]],
                },
            },
        ),
        Case("NaN plan origin", "rider", "GET", "/plan", params={**plan, "from": "nan,nan"}),
        Case("1e308 position", "driver", "POST", "/driver/positions", {"lat": 1e308, "lon": 8.8, "at": _at(hours=0)}),
        # dates in year 1 or 9999
        Case(
            "plan in year 9999", "rider", "GET", "/plan", params={**plan, "depart": "9999-12-31T23:59"}, words="cover"
        ),
        Case(
            "plan in year 1",
            "rider",
            "GET",
            "/plan",
            params={"from": plan["from"], "to": plan["to"], "arrive_by": "0001-01-01T00:00+01:00"},
        ),
        Case("booking in year 1", "rider", "POST", "/bookings", _ride(earliest_pickup="0001-01-01T00:00:00+01:00")),
        Case("booking in year 9999", "rider", "POST", "/bookings", _ride(earliest_pickup="9999-12-31T23:59:59-05:00")),
        Case(
            "phone booking in year 9999",
            "operator",
            "POST",
            "/operator/bookings",
            {
                "caller": {"name": "Erika", "phone": "+49 7032 0"},
                "ride": _ride(earliest_pickup=None, latest_arrival="9999-12-31T23:00:00+00:00"),
            },
        ),
        Case("quote in year 1", "rider", "POST", "/quotes", _ride(earliest_pickup="0001-01-01T00:00:00+00:00")),
        Case(
            "stop event in year 1",
            "driver",
            "POST",
            "/driver/events",
            {"booking_id": booking_id, "event": "arrived", "at": "0001-01-01T00:00:00+00:00"},
        ),
        # shifts in 1900 and 9999
        Case(
            "shift in 1900",
            "operator",
            "POST",
            "/shifts",
            {**shift, "starts_at": "1900-01-01T06:00:00+00:00", "ends_at": "1900-01-01T14:00:00+00:00"},
            words="too far from now",
        ),
        Case(
            "shift in 9999",
            "operator",
            "POST",
            "/shifts",
            {**shift, "starts_at": "9999-12-31T06:00:00+00:00", "ends_at": "9999-12-31T14:00:00+00:00"},
        ),
        Case(
            "shift of 8000 years",
            "operator",
            "POST",
            "/shifts",
            {**shift, "starts_at": _at(), "ends_at": "9999-12-31T14:00:00+00:00"},
        ),
        # meaningless values
        Case(
            "a vehicle with 1,000,000 seats", "operator", "POST", "/vehicles", _vehicle(seats=1_000_000), words="seats"
        ),
        Case("a vehicle with no places", "operator", "POST", "/vehicles", _vehicle(seats=0)),
        Case("a 1 MB vehicle name", "operator", "POST", "/vehicles", _vehicle(name=MB)),
        Case(
            "a line break ending a caller",
            "operator",
            "POST",
            "/operator/bookings",
            {"caller": {"name": "Erika\n", "phone": "1"}, "ride": _ride()},
        ),
        Case("a 1 MB user name", "admin", "POST", "/admin/users", {"name": MB, "role": "rider"}),
        Case(
            "a 1 MB caller name",
            "operator",
            "POST",
            "/operator/bookings",
            {"caller": {"name": MB, "phone": "1"}, "ride": _ride()},
        ),
        Case("a 1 MB area name", "operator", "PUT", "/service", {"name": MB}),
        Case(
            "a booking from a place to itself",
            "rider",
            "POST",
            "/bookings",
            _ride(destination=NEBRINGEN),
            words="0 m apart",
        ),
        Case(
            "a phone booking from a place to itself",
            "operator",
            "POST",
            "/operator/bookings",
            {"caller": {"name": "Erika", "phone": "1"}, "ride": _ride(origin=KUPPINGEN, destination=KUPPINGEN)},
        ),
        Case("a booking for 40 riders", "rider", "POST", "/bookings", _ride(seated=40)),
        Case(
            "a driver position at 0,0",
            "driver",
            "POST",
            "/driver/positions",
            {"lat": 0.0, "lon": 0.0, "at": _at(hours=0)},
        ),
        Case(
            "a booking body as text/plain",
            "rider",
            "POST",
            "/bookings",
            raw=b'{"origin": {"lat": 48.5627, "lon": 8.8481}, "destination": {"lat": 48.5935, "lon": 8.863}, "earliest_pickup": "%s"}'
            % _at().encode(),
            content_type="text/plain",
            words="application/json",
        ),
        Case(
            "a vehicle as a form",
            "operator",
            "POST",
            "/vehicles",
            raw=b"name=x&seats=3",
            content_type="application/x-www-form-urlencoded",
        ),
        Case(
            "a phone number of letters",
            "operator",
            "POST",
            "/operator/bookings",
            {"caller": {"name": "Erika", "phone": "call me maybe"}, "ride": _ride()},
        ),
        Case("a negative wheelchair count", "rider", "POST", "/quotes", _ride(wheelchairs=-1)),
        Case(
            "a speed of light",
            "driver",
            "POST",
            "/driver/positions",
            {**KUPPINGEN, "at": _at(hours=0), "speed_mps": 3e8},
        ),
        Case(
            "a 1 MB Idempotency-Key", "rider", "POST", "/bookings", _ride(), headers={"Idempotency-Key": "k" * 100_000}
        ),
        Case(
            "an unknown GeoJSON type",
            "operator",
            "PUT",
            "/service-area",
            {"name": "a", "geometry": {"type": "Point", "coordinates": [8.8, 48.6]}},
        ),
        Case("a rule beyond 64 bits", "operator", "PUT", "/service", {"name": "a", "rules": {"max_days_ahead": 2**64}}),
        Case("a walk of 1e308 m", "rider", "GET", "/plan", params={**plan, "max_walk_m": "1e308"}),
        # the feed upload: hardened elsewhere; only a 4xx is asked of it here
        Case(
            "an empty feed upload",
            "agency",
            "POST",
            "/feeds",
            raw=b"",
            content_type="application/zip",
            params={"feed_id": "e"},
        ),
        Case(
            "a feed upload with a NUL feed id",
            "agency",
            "POST",
            "/feeds",
            raw=b"PK\x05\x06" + b"\x00" * 18,
            content_type="application/zip",
            params={"feed_id": NUL},
        ),
    ]


async def _counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def actors(users: Users) -> dict[str, dict[str, str]]:
    return {role: users.make(role)[1] for role in ("admin", "operator", "rider", "driver", "agency")}


def _send(http: httpx.Client, headers: dict[str, str], case: Case) -> httpx.Response:
    extra = {**headers, **case.headers}
    if case.raw is not None:
        extra["Content-Type"] = case.content_type
        return http.request(case.method, case.path, headers=extra, params=case.params, content=case.raw)
    if case.json is not None:
        return http.request(case.method, case.path, headers=extra, params=case.params, json=case.json)
    return http.request(case.method, case.path, headers=extra, params=case.params)


def test_malformed_inputs_are_refused_with_a_problem_and_store_nothing(
    server: str, settings: Settings, actors: dict[str, dict[str, str]]
) -> None:
    assert settings.database_url is not None
    with httpx.Client(base_url=server, timeout=60) as http:
        vehicle = http.post("/vehicles", headers=actors["operator"], json=_vehicle())
        assert vehicle.status_code == 201, vehicle.text
        cases = corpus(vehicle.json()["id"], str(uuid.uuid4()))
        assert len(cases) >= 40
        before = asyncio.run(_counts(settings.database_url))
        wrong = []
        for case in cases:
            answer = _send(http, actors[case.role], case)
            problem = answer.headers.get("content-type", "").startswith("application/problem+json")
            detail = answer.json().get("detail") if problem else None
            if not (400 <= answer.status_code < 500 and problem and detail and case.words in detail):
                wrong.append(f"{case.label}: {answer.status_code} {answer.text[:200]}")
            assert http.get("/health").status_code == 200, f"the server stopped answering after {case.label}"
        after = asyncio.run(_counts(settings.database_url))
    assert not wrong, "\n".join(wrong)
    assert after == before, {t: (before[t], after[t]) for t in TABLES if before[t] != after[t]}


def test_a_signed_in_driver_at_0_0_is_refused_and_nothing_is_stored(
    server: str, settings: Settings, users: Users, actors: dict[str, dict[str, str]]
) -> None:
    # A phone without a GPS fix reports 0,0: it is off every road of the served network.
    assert settings.database_url is not None
    driver, headers = users.make("driver")
    with httpx.Client(base_url=server, timeout=60) as http:
        vehicle = http.post("/vehicles", headers=actors["operator"], json=_vehicle()).json()
        shift = http.post(
            "/shifts",
            headers=actors["operator"],
            json={
                "vehicle_id": vehicle["id"],
                "starts_at": _at(hours=-0.5),
                "ends_at": _at(hours=4),
                "driver_id": str(driver.id),
            },
        )
        assert shift.status_code == 201, shift.text
        assert http.post(f"/driver/shifts/{shift.json()['id']}/sign-in", headers=headers).status_code == 200
        before = asyncio.run(_counts(settings.database_url))["positions"]
        null_island = http.post("/driver/positions", headers=headers, json={"lat": 0.0, "lon": 0.0, "at": _at(hours=0)})
        assert null_island.status_code == 422 and "off the served roads" in null_island.json()["detail"], (
            null_island.text
        )
        on_the_road = http.post("/driver/positions", headers=headers, json={**KUPPINGEN, "at": _at(hours=0)})
        assert on_the_road.status_code == 202, on_the_road.text
        assert http.post(f"/driver/shifts/{shift.json()['id']}/sign-out", headers=headers).status_code == 200
    assert asyncio.run(_counts(settings.database_url))["positions"] == before + 1
