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
