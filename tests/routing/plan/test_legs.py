"""Legs as drawn: Google's polyline encoding, and transit legs along their GTFS shapes."""

from __future__ import annotations

import datetime as dt

import numpy as np

from routing.plan import Endpoint, PlanRequest, Router, encode_polyline
from routing.spatial import haversine_m
from tests.helpers import BERLIN, decode_polyline


def test_encoded_polyline_matches_the_published_example() -> None:
    # The example of Google's polyline format documentation.
    lat = np.array([38.5, 40.7, 43.252])
    lon = np.array([-120.2, -120.95, -126.453])
    assert encode_polyline(lat, lon) == "_p~iF~ps|U_ulLnnqC_mqNvxq`@"


def test_transit_legs_follow_the_gtfs_shape(router: Router) -> None:
    depart = dt.datetime(2020, 10, 6, 7, 30, tzinfo=BERLIN)
    plan = router.plan(
        PlanRequest(
            origin=Endpoint(lat=48.5935, lon=8.8630), destination=Endpoint(lat=48.6582, lon=8.9408), depart=depart
        )
    )
    leg = next(leg for it in plan.itineraries for leg in it.legs if leg.mode == "transit")
    points = decode_polyline(leg.geometry)
    drawn = haversine_m(points[:-1, 0], points[:-1, 1], points[1:, 0], points[1:, 1]).sum()
    straight = float(haversine_m(leg.from_.lat, leg.from_.lon, leg.to.lat, leg.to.lon))
    # Herrenberg -> Ehningen (two stops on the S1) is drawn along the railway, not as one straight line.
    assert len(points) > 20
    assert straight < drawn < 1.6 * straight
