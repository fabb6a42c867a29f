"""Operators: the re-optimisation runs of the live plans, and a run on demand."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from maas.auth import roles
from maas.model import ReoptimizationOutcome, ReoptimizationRecord, ReoptimizationTrigger, User
from maas.reoptimizing import MAX_RUNS_LISTED, FleetReoptimizer
from maas.wire import Timestamp, iso


class ReoptimizationOut(msgspec.Struct, frozen=True, kw_only=True):
    """One run: why it ran, the fleet's driving seconds before and in the search's plan, and whether
    that plan was adopted (`adopted_version`: the fleet version it committed as) or why not."""

    id: int
    started_at: Timestamp
    finished_at: Timestamp
    trigger: ReoptimizationTrigger
    outcome: ReoptimizationOutcome
    detail: str
    fleet_version: int
    adopted_version: int | None
    rides: int
    vehicles: int
    drive_before_s: float
    drive_after_s: float | None
    moved_rides: int
    search_s: float
    duration_s: float


def reoptimization_out(r: ReoptimizationRecord) -> ReoptimizationOut:
    return ReoptimizationOut(
        id=r.id,
        started_at=iso(r.started_at),
        finished_at=iso(r.finished_at),
        trigger=r.trigger,
        outcome=r.outcome,
        detail=r.detail,
        fleet_version=r.fleet_version,
        adopted_version=r.adopted_version,
        rides=r.rides,
        vehicles=r.vehicles,
        drive_before_s=r.drive_before_s,
        drive_after_s=r.drive_after_s,
        moved_rides=r.moved_rides,
        search_s=r.search_s,
        duration_s=r.duration_s,
    )


class ReoptimizationController(Controller):
    path = "/fleet/reoptimizations"
    guards = [roles("operator", "admin")]

    @get("/")
    async def runs(
        self,
        reoptimizer: NamedDependency[FleetReoptimizer],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_RUNS_LISTED)] = 50,
    ) -> list[ReoptimizationOut]:
        """The newest re-optimisation runs of every process, newest first."""
        return [reoptimization_out(r) for r in await reoptimizer.list_runs(limit)]

    @post("/")
    async def run_now(
        self, request: Request[User, Any, Any], reoptimizer: NamedDependency[FleetReoptimizer]
    ) -> ReoptimizationOut:
        """Re-optimise the live plans now (taking the definition's time limit) and answer the run; 409
        while another process is re-optimising."""
        return reoptimization_out(await reoptimizer.run_now(request.user.id))
