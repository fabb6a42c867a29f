"""What the wire Structs of several controllers and the live messages share: times as the API spells them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from litestar.openapi.spec import OpenAPIFormat

# ISO 8601 with the offset spelled out ("+00:00", as datetime.isoformat writes it): msgspec would
# write "Z" for UTC, and clients have seen "+00:00" since the first release.
Timestamp = Annotated[
    str,
    msgspec.Meta(
        extra_json_schema={"description": "ISO 8601 time with offset", "extra": {"format": OpenAPIFormat.DATE_TIME}}
    ),
]


def iso(at: dt.datetime) -> str:
    return at.isoformat()


def iso_or_none(at: dt.datetime | None) -> str | None:
    return None if at is None else at.isoformat()


# Bounds every request field shares (sanity, not policy: service policy such as how far ahead a ride
# may be booked or how many ride together lives in maas.model.ServiceRules). Each is part of the
# OpenAPI document, so a request the schema allows is never refused as malformed (400); migration
# 0027 holds the database to the same bounds.
MAX_NAME = 200  # names of vehicles, users, callers, services
MAX_TEXT = 500  # free text: reasons
MAX_ID = 200  # external ids: agencies, feed ids, Idempotency-Key
MAX_INT32 = 2**31 - 1
# No control characters (NUL above all: PostgreSQL cannot store it in text or jsonb).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME, pattern=PRINTABLE)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT, pattern=PRINTABLE)]
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID, pattern=PRINTABLE)]
Phone = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\+?[0-9][0-9 ()/.-]{0,31}$", description="a phone number: digits, spaces, ()/.- and a leading +"
    ),
]
Latitude = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0, description="WGS84 degrees")]
Longitude = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0, description="WGS84 degrees")]
Count = Annotated[int, msgspec.Meta(ge=0, le=1000)]  # passengers, seats, places: checked further by the service
SeatCount = Annotated[int, msgspec.Meta(ge=0, le=100)]  # a vehicle's seats or wheelchair places
