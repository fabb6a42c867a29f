"""Journey planning on a loaded network: `Router.plan` and the wire types it answers with."""

from routing.plan.bike_share import BIKE_FORM_FACTORS, BIKE_RENT_S, BIKE_RETURN_S, MAX_BIKE_RIDE_S
from routing.plan.legs import encode_polyline
from routing.plan.router import Router, ScheduledRideEstimator
from routing.plan.scratch import RouterScratch
from routing.plan.wire import Endpoint, Itinerary, Leg, Mode, Place, Plan, PlanError, PlanRequest

__all__ = [
    "BIKE_FORM_FACTORS",
    "BIKE_RENT_S",
    "BIKE_RETURN_S",
    "MAX_BIKE_RIDE_S",
    "Endpoint",
    "Itinerary",
    "Leg",
    "Mode",
    "Place",
    "Plan",
    "PlanError",
    "PlanRequest",
    "Router",
    "RouterScratch",
    "ScheduledRideEstimator",
    "encode_polyline",
]
