"""What a journey plan is on the wire: the request, its endpoints, and the itineraries answered."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec

from routing.errors import RoutingError

Mode = Literal["walk", "transit", "bike_share", "on_demand"]


class PlanError(RoutingError):
    """A request that cannot be planned as asked; the message says what to change."""


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A stop (namespaced GTFS id) or a coordinate."""

    stop: str | None = None
    lat: float | None = None
    lon: float | None = None

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """`stop:<feed>:<stop_id>` or `lat,lon`."""
        if text.startswith("stop:"):
            return cls(stop=text[5:])
        parts = text.split(",")
        try:
            lat, lon = (float(p) for p in parts)
        except ValueError:
            raise PlanError(f"{text!r}: give 'lat,lon' (e.g. 48.5935,8.8630) or 'stop:<feed>:<stop_id>'") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise PlanError(f"{text!r}: latitude must be within -90..90 and longitude within -180..180")
        return cls(lat=lat, lon=lon)


class PlanRequest(msgspec.Struct, frozen=True, kw_only=True):
    origin: Endpoint
    destination: Endpoint
    depart: dt.datetime  # aware
    max_walk_m: float = 1000.0
    min_transfer_s: int | None = None  # default: 60 s, or 0 when walking is off (the pure timetable answer)
    max_transfers: int = 6
    wheelchair: bool = False
    bike_share: bool = True  # offer rentals from bike-share stations (needs GBFS and a bike street graph)


class Place(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    lat: float
    lon: float
    stop: str | None = None
    station: str | None = None  # a sharing station, `<system_id>:<station_id>`


class Window(msgspec.Struct, frozen=True, kw_only=True):
    """A promised time window; a drop-off window has no earliest time."""

    earliest: dt.datetime | None
    latest: dt.datetime


class RideOffer(msgspec.Struct, frozen=True, kw_only=True):
    """What the live fleet offers for an on-demand leg (the shape of the offers of `POST /quotes`):
    the promise a booking would carry, the expected times, and until when it can be booked."""

    id: str
    expires: dt.datetime
    pickup_window: Window
    dropoff_latest: dt.datetime
    pickup_estimate: dt.datetime
    dropoff_estimate: dt.datetime


class Leg(msgspec.Struct, frozen=True, kw_only=True, rename={"from_": "from"}):
    mode: Mode
    from_: Place
    to: Place
    departure: dt.datetime
    arrival: dt.datetime
    route: str | None
    route_name: str | None
    trip: str | None
    distance_m: float  # walked or cycled along the streets, straight line for on-demand rides, 0 for transit
    geometry: str
    system: str | None = None  # the GBFS system of a bike-share leg
    # On-demand legs: an offer of the live fleet, or (no fleet asked) times that are only estimated.
    offer: RideOffer | None = None
    estimated: bool = False
    # A transit leg's timetable times; `departure` and `arrival` differ from them on a realtime run.
    scheduled_departure: dt.datetime | None = None
    scheduled_arrival: dt.datetime | None = None
    realtime: bool = False  # its times are GTFS-Realtime predictions
    delay_s: int | None = None  # on a realtime run: seconds it leaves the boarding stop after the timetable


class Itinerary(msgspec.Struct, frozen=True, kw_only=True):
    id: str | None = None  # set by the service, which keeps the itinerary so that it can be booked
    departure: dt.datetime
    arrival: dt.datetime
    transfers: int
    walk_m: float
    legs: list[Leg]


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    itineraries: list[Itinerary]
