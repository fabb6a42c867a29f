"""The dispatcher's domain: vehicles, ride requests, promises, stop events, and the flat problem the
insertion kernel and the optimiser both plan on.

Capacity is two linear dimensions so that "a wheelchair may take the room of two seats" stays
linear: *room* (a seated rider 1, a wheelchair 2; a vehicle offers seats + 2 × wheelchair places)
and *seats* (seated riders only; a vehicle offers its seats). A wheelchair beyond the wheelchair
places therefore folds two seats, and seated riders never use a wheelchair place.
"""

from __future__ import annotations

import enum
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

from routing.errors import RoutingError

ROOM, SEATS = 0, 1
DIMENSIONS = 2

# DESIGN.md: maximum ride time = 1.5 × direct drive time + 10 min unless the service says otherwise.
DEFAULT_RIDE_FACTOR = 1.5
DEFAULT_RIDE_SLACK_S = 600.0
DEFAULT_PICKUP_WINDOW_S = 600.0


class DispatchError(RoutingError):
    """A request, vehicle or plan the dispatcher cannot work with; the message says what is wrong."""


class Passengers(msgspec.Struct, frozen=True, kw_only=True):
    seated: int = 1
    wheelchairs: int = 0

    def __post_init__(self) -> None:
        if self.seated < 0 or self.wheelchairs < 0 or self.seated + self.wheelchairs == 0:
            raise DispatchError("a request carries at least one passenger and no negative counts")

    def demand(self) -> tuple[int, int]:
        """(room, seats) taken on board."""
        return (self.seated + 2 * self.wheelchairs, self.seated)


class Break(msgspec.Struct, frozen=True, kw_only=True):
    """A driver's rest of `duration_s`, starting inside [earliest_s, latest_s], at the depot unless a node is given."""

    earliest_s: float
    latest_s: float
    duration_s: float
    node: int | None = None

    def __post_init__(self) -> None:
        if self.duration_s <= 0 or self.latest_s < self.earliest_s:
            raise DispatchError("a break needs a positive duration and a window that does not close before it opens")


class Vehicle(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    seats: int
    wheelchair_places: int = 0
    depot_node: int  # node of the drive graph where the shift starts and ends
    shift_start_s: float
    shift_end_s: float
    breaks: list[Break] = []

    def __post_init__(self) -> None:
        if self.seats < 0 or self.wheelchair_places < 0 or self.seats + self.wheelchair_places == 0:
            raise DispatchError(f"vehicle {self.id}: needs seats or wheelchair places, none negative")
        if self.shift_end_s <= self.shift_start_s:
            raise DispatchError(f"vehicle {self.id}: the shift ends before it starts")

    def capacity(self) -> tuple[int, int]:
        return (self.seats + 2 * self.wheelchair_places, self.seats)


class Weights(msgspec.Struct, frozen=True, kw_only=True):
    """What an insertion costs: seconds of driving added, of the new rider's wait past the pickup's
    earliest start, and of the new rider's time on board, each times its weight."""

    drive: float = 1.0
    wait: float = 0.0
    ride: float = 0.0

    def __post_init__(self) -> None:
        if min(self.drive, self.wait, self.ride) < 0:
            raise DispatchError("the objective's weights must be zero or more")


DRIVING = Weights()  # the driving added, alone (re-optimisation's objective)
# The service's default: a minute of a rider's waiting weighs three of driving, a minute on board one.
RIDER_FIRST = Weights(drive=1.0, wait=3.0, ride=1.0)


class RideRules(msgspec.Struct, frozen=True, kw_only=True):
    """Per-service rules for deriving a request's limits from its direct drive time."""

    ride_factor: float = DEFAULT_RIDE_FACTOR
    ride_slack_s: float = DEFAULT_RIDE_SLACK_S
    pickup_window_s: float = DEFAULT_PICKUP_WINDOW_S
    boarding_s: float = 60.0  # service time at a pickup or drop-off
    objective: Weights = RIDER_FIRST  # how a new ride's insertions are compared

    def max_ride_s(self, direct_s: float) -> float:
        return self.ride_factor * direct_s + self.ride_slack_s


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """A ride wish: origin and destination as drive-graph nodes; an earliest pickup, a latest arrival,
    or both (a leg of a journey: after the rider can be there, and in time for the train)."""

    id: str
    origin_node: int
    destination_node: int
    passengers: Passengers = Passengers()
    earliest_pickup_s: float | None = None
    latest_arrival_s: float | None = None
    # With both bounds: picked up as late as the latest arrival allows (a ride to a train), rather
    # than as soon after the earliest pickup as possible (a ride from one). Alone, a latest arrival
    # always means as late as possible.
    prefer_late: bool = False

    def __post_init__(self) -> None:
        if self.earliest_pickup_s is None and self.latest_arrival_s is None:
            raise DispatchError(f"request {self.id}: give an earliest pickup, a latest arrival or both")


class Promise(msgspec.Struct, frozen=True, kw_only=True):
    """What a confirmed booking was told: hard constraints for every later planning step."""

    pickup_earliest_s: float
    pickup_latest_s: float
    dropoff_latest_s: float


class StopEvent(enum.Enum):
    ARRIVED = "arrived"
    PICKED_UP = "picked_up"
    NO_SHOW = "no_show"
    DROPPED_OFF = "dropped_off"


# A vehicle's visiting order: node ids (of a Problem), start and end omitted.
Route = npt.NDArray[np.int32]

# A booked ride's life: confirmed, then picked up and completed, or cancelled or a no-show before
# pickup. The names are maas's BookingStatus, so the service can take this type over.
RideStatus = Literal["confirmed", "picked_up", "completed", "cancelled", "no_show"]


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a planner needs, as flat arrays over N nodes, R requests and V vehicles.

    A node is one visit: a vehicle's start or end, a pickup or a drop-off. `travel[a, b]` is the
    driving time (and cost) between visits; when `location` is given, visits share places and
    `travel` is indexed by place instead (`travel[location[a], location[b]]`), which lets a live
    plan grow without rebuilding an N×N matrix. Request r has pickup node `pickup[r]` and drop-off node
    `dropoff[r]`; a rider already on board has pickup -1 and its drop-off fixed to `onboard_vehicle[r]`.
    Ride time runs from the end of pickup service to the start of drop-off service.
    """

    travel: npt.NDArray[np.float64]  # [N, N]
    service_s: npt.NDArray[np.float64]  # [N]
    earliest_s: npt.NDArray[np.float64]  # [N]
    latest_s: npt.NDArray[np.float64]  # [N]
    demand: npt.NDArray[np.int32]  # [N, DIMENSIONS]: + at a pickup, - at a drop-off, 0 at vehicle nodes
    partner: npt.NDArray[np.int32]  # [N]: pickup <-> drop-off, -1 otherwise
    max_ride_s: npt.NDArray[np.float64]  # [N]: at a pickup, its request's limit; inf elsewhere
    vehicle_start: npt.NDArray[np.int32]  # [V]
    vehicle_end: npt.NDArray[np.int32]  # [V]
    capacity: npt.NDArray[np.int32]  # [V, DIMENSIONS]
    initial_load: npt.NDArray[np.int32]  # [V, DIMENSIONS]: riders on board at the start node
    max_duration_s: npt.NDArray[np.float64]  # [V]
    pickup: npt.NDArray[np.int32]  # [R], -1 when on board
    dropoff: npt.NDArray[np.int32]  # [R]
    onboard_vehicle: npt.NDArray[np.int32]  # [R], -1 unless on board
    location: npt.NDArray[np.int32] | None = None  # [N]: each visit's place; None means travel is per visit

    def travel_time(self, a: int, b: int) -> float:
        if self.location is None:
            return float(self.travel[a, b])
        return float(self.travel[self.location[a], self.location[b]])

    def visit_travel(self) -> npt.NDArray[np.float64]:
        """The N×N driving times between visits (a copy when visits share places)."""
        if self.location is None:
            return self.travel
        return np.ascontiguousarray(self.travel[np.ix_(self.location, self.location)])

    @property
    def n_vehicles(self) -> int:
        return len(self.vehicle_start)

    @property
    def n_requests(self) -> int:
        return len(self.pickup)

    def validate(self) -> None:
        """Raise DispatchError when the arrays do not describe a consistent problem."""
        n = len(self.service_s)
        if self.location is None and self.travel.shape != (n, n):
            raise DispatchError(f"travel must be {n}×{n}, got {self.travel.shape}")
        if self.location is not None:
            places = self.travel.shape[0]
            if self.travel.shape != (places, places) or len(self.location) != n:
                raise DispatchError("travel must be square over places and location needs one place per visit")
            if n and not (self.location.min() >= 0 and self.location.max() < places):
                raise DispatchError("a visit's location lies outside the travel matrix")
        for name in ("earliest_s", "latest_s", "partner", "max_ride_s"):
            if len(getattr(self, name)) != n:
                raise DispatchError(f"{name} needs one value per node ({n})")
        if self.demand.shape != (n, DIMENSIONS):
            raise DispatchError(f"demand must be {n}×{DIMENSIONS}")
        if not np.all(self.earliest_s <= self.latest_s):
            bad = int(np.argmax(self.earliest_s > self.latest_s))
            raise DispatchError(f"node {bad}: its time window closes before it opens")
        if not (np.isfinite(self.travel).all() and (self.travel >= 0).all()):
            raise DispatchError("travel times must be finite and non-negative (an unreachable place?)")
        for r, (p, d) in enumerate(zip(self.pickup.tolist(), self.dropoff.tolist(), strict=True)):
            if p >= 0 and (self.partner[p] != d or self.partner[d] != p):
                raise DispatchError(f"request {r}: pickup {p} and drop-off {d} are not partners")
            if p < 0 and not 0 <= self.onboard_vehicle[r] < self.n_vehicles:
                raise DispatchError(f"request {r}: a rider without pickup must be on board a vehicle")
