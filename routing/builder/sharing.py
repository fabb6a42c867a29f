"""GBFS systems -> the network's sharing arrays: stations and free vehicles snapped to walk and bike streets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from feeds.gbfs import SharingSystem
from routing.builder.timetable import string_array
from routing.model import SharingArrays
from routing.spatial import EdgeSnapper


def snap_points(
    points_lat: np.ndarray, points_lon: np.ndarray, snapper: EdgeSnapper, radius_m: float
) -> tuple[np.ndarray, np.ndarray]:
    node, dist = snapper.snap(points_lat, points_lon, radius_m)
    return node, dist.astype(np.float32)


def sharing_arrays(
    systems: Sequence[SharingSystem], snappers: dict[str, EdgeSnapper], radius_m: float
) -> SharingArrays:
    stations = [(k, s) for k, sys in enumerate(systems) for s in sys.stations]
    vehicles = [
        (k, v) for k, sys in enumerate(systems) for v in sys.vehicles if v.lat is not None and v.lon is not None
    ]
    form_factor: dict[tuple[int, str | None], str] = {
        (k, t.vehicle_type_id): t.form_factor for k, sys in enumerate(systems) for t in sys.vehicle_types
    }

    def opt(value: int | None) -> int:
        return -1 if value is None else int(value)

    st_lat = np.array([s.lat for _, s in stations], dtype=np.float64)
    st_lon = np.array([s.lon for _, s in stations], dtype=np.float64)
    ve_lat = np.array([v.lat for _, v in vehicles], dtype=np.float64)
    ve_lon = np.array([v.lon for _, v in vehicles], dtype=np.float64)
    nodes = {}
    for mode in ("walk", "bike"):
        for kind, lat, lon in (("station", st_lat, st_lon), ("vehicle", ve_lat, ve_lon)):
            if mode in snappers:
                node, dist = snap_points(lat, lon, snappers[mode], radius_m)
            else:
                node, dist = np.full(len(lat), -1, dtype=np.int32), np.full(len(lat), np.inf, dtype=np.float32)
            nodes[f"{kind}_{mode}_node"], nodes[f"{kind}_{mode}_m"] = node, dist
    return SharingArrays(
        system_id=string_array([s.system_id for s in systems]),
        system_name=string_array([s.name for s in systems]),
        system_form_factors=string_array([",".join(sorted({t.form_factor for t in s.vehicle_types})) for s in systems]),
        station_system=np.array([k for k, _ in stations], dtype=np.int16),
        station_id=string_array([s.station_id for _, s in stations]),
        station_name=string_array([s.name for _, s in stations]),
        station_lat=st_lat,
        station_lon=st_lon,
        station_capacity=np.array([opt(s.capacity) for _, s in stations], dtype=np.int32),
        station_vehicles=np.array([opt(s.vehicles_available) for _, s in stations], dtype=np.int32),
        station_docks=np.array([opt(s.docks_available) for _, s in stations], dtype=np.int32),
        station_renting=np.array([s.is_renting for _, s in stations], dtype=np.bool_),
        station_returning=np.array([s.is_returning for _, s in stations], dtype=np.bool_),
        vehicle_system=np.array([k for k, _ in vehicles], dtype=np.int16),
        vehicle_id=string_array([v.vehicle_id for _, v in vehicles]),
        vehicle_form_factor=string_array([form_factor.get((k, v.vehicle_type_id), "") for k, v in vehicles]),
        vehicle_available=np.array([not (v.is_reserved or v.is_disabled) for _, v in vehicles], dtype=np.bool_),
        vehicle_lat=ve_lat,
        vehicle_lon=ve_lon,
        **nodes,
    )
