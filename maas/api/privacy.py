"""Operators: a phone caller's name and number erased on their request."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from maas.auth import roles
from maas.db.database import Database
from maas.model import User
from maas.privacy import CallerErasure, PrivacyService


class CallerBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    phone: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]  # as booked; spaces, dashes, "+" do not matter


class CallerController(Controller):
    path = "/operator/callers"
    guards = [roles("operator", "admin")]

    @post("/erase", status_code=200)
    async def erase(
        self, request: Request[User, Any, Any], db: NamedDependency[Database], data: JSONBody[CallerBody]
    ) -> CallerErasure:
        """Pseudonymise the name and number of every phone booking of this caller (and coarsen its places
        to about 100 m); audited without the number. 409 while one of their rides is still to be driven."""
        return await PrivacyService(db).erase_caller(request.user, data.phone)
