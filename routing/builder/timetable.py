"""GTFS feeds -> timetable arrays: stops, routes, route patterns with FIFO trips, stop times, services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from feeds.gtfs import GtfsFeed
from routing.fifo import fifo_chains


class TimetableParts:
    """The timetable arrays before footpaths are added (they need the street graph)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.first_date = dt.date(2000, 1, 1)
        self.n_days = 0
        self.stop_index: dict[str, int] = {}
        # Same-stop and stop-to-stop rules of transfers.txt, with namespaced stop ids.
        self.transfer_rules: pd.DataFrame = pd.DataFrame(
            columns=["from_stop_id", "to_stop_id", "transfer_type", "min_transfer_time"]
        )


def string_array(values: Sequence[str] | pd.Series | np.ndarray) -> np.ndarray:
    array = np.asarray(list(values), dtype=str)
    return array if array.size else np.zeros(0, dtype="<U1")


def _column(df: pd.DataFrame, name: str, default: object) -> pd.Series:
    return df[name] if name in df.columns else pd.Series([default] * len(df), index=df.index)


def _merge_services(feeds: Sequence[GtfsFeed]) -> tuple[list[str], dt.date, int, np.ndarray]:
    """One service calendar for all feeds, anchored at the earliest date of any of them."""
    calendars = [f.services for f in feeds if f.services.service_ids]
    if not calendars:
        return [], dt.date(2000, 1, 1), 0, np.zeros((0, 0), dtype=np.uint8)
    first = min(c.first_date for c in calendars)
    end = max(c.first_date + dt.timedelta(days=c.n_days) for c in calendars)
    n_days = (end - first).days
    ids: list[str] = []
    active = np.zeros((sum(len(c.service_ids) for c in calendars), n_days), dtype=bool)
    row = 0
    for cal in calendars:
        shift = (cal.first_date - first).days
        active[row : row + len(cal.service_ids), shift : shift + cal.n_days] = cal.active
        ids.extend(cal.service_ids)
        row += len(cal.service_ids)
    return ids, first, n_days, np.packbits(active, axis=1, bitorder="little")


def build_timetable(feeds: Sequence[GtfsFeed], tick: Callable[[int], None] | None = None) -> TimetableParts:
    """Map validated feeds to the RAPTOR layout; trips with fewer than two stops carry no one and are left out."""
    parts = TimetableParts()
    tick = tick or (lambda n: None)

    # Stops ---------------------------------------------------------------------------------
    stop_frames = []
    for k, feed in enumerate(feeds):
        stops = feed.tables.stops
        if stops is None or stops.empty:
            continue
        frame = stops[
            ["stop_id", "stop_lat", "stop_lon", "parent_station", "location_type", "wheelchair_boarding"]
        ].copy()
        frame["stop_name"] = _column(stops, "stop_name", "").to_numpy()
        frame["feed"] = k
        stop_frames.append(frame)
    stops = (
        pd.concat(stop_frames, ignore_index=True)
        if stop_frames
        else pd.DataFrame(
            columns=[
                "stop_id",
                "stop_lat",
                "stop_lon",
                "parent_station",
                "location_type",
                "wheelchair_boarding",
                "stop_name",
                "feed",
            ]
        )
    )
    parts.stop_index = {sid: i for i, sid in enumerate(stops["stop_id"])}
    parent = np.array([parts.stop_index.get(p, -1) for p in stops["parent_station"]], dtype=np.int32)
    a = parts.arrays
    a["stop_id"] = string_array(stops["stop_id"])
    a["stop_name"] = string_array(stops["stop_name"])
    a["stop_lat"] = stops["stop_lat"].to_numpy(dtype=np.float64)
    a["stop_lon"] = stops["stop_lon"].to_numpy(dtype=np.float64)
    a["stop_parent"] = parent
    a["stop_location_type"] = stops["location_type"].to_numpy(dtype=np.int8)
    a["stop_wheelchair"] = stops["wheelchair_boarding"].to_numpy(dtype=np.int8)
    a["stop_feed"] = stops["feed"].to_numpy(dtype=np.int16)

    # Routes --------------------------------------------------------------------------------
    route_frames = []
    for feed in feeds:
        routes = feed.tables.routes
        agency = feed.tables.agency
        names = dict(zip(_column(agency, "agency_id", ""), agency["agency_name"], strict=True))
        default_agency = str(agency["agency_name"].iloc[0]) if len(agency) else ""
        frame = pd.DataFrame(
            {
                "route_id": routes["route_id"],
                "route_short_name": _column(routes, "route_short_name", ""),
                "route_long_name": _column(routes, "route_long_name", ""),
                "route_type": routes["route_type"],
                "route_agency": [
                    names.get(x, default_agency) if x else default_agency for x in _column(routes, "agency_id", "")
                ],
            }
        )
        route_frames.append(frame)
    routes = pd.concat(route_frames, ignore_index=True)
    route_index = {rid: i for i, rid in enumerate(routes["route_id"])}
    a["route_id"] = string_array(routes["route_id"])
    a["route_short_name"] = string_array(routes["route_short_name"])
    a["route_long_name"] = string_array(routes["route_long_name"])
    a["route_type"] = routes["route_type"].to_numpy(dtype=np.int16)
    a["route_agency"] = string_array(routes["route_agency"])

    # Services ------------------------------------------------------------------------------
    service_ids, parts.first_date, parts.n_days, service_days = _merge_services(feeds)
    service_index = {sid: i for i, sid in enumerate(service_ids)}
    a["service_id"] = string_array(service_ids)
    a["service_days"] = np.ascontiguousarray(service_days)

    # Trips and stop times --------------------------------------------------------------------
    trip_frames, st_frames = [], []
    for feed in feeds:
        trips = feed.tables.trips
        st = feed.tables.stop_times
        if trips is None or st is None or trips.empty or st.empty:
            continue
        trip_frames.append(
            trips[["trip_id", "route_id", "service_id", "wheelchair_accessible", "trip_headsign", "shape_id"]]
        )
        st_frames.append(
            st[["trip_id", "stop_id", "stop_sequence", "arrival_s", "departure_s", "pickup_type", "drop_off_type"]]
        )
        rules = feed.tables.transfers
        if rules is not None and len(rules):
            trip_specific = np.zeros(len(rules), dtype=bool)
            for col in ("from_route_id", "to_route_id", "from_trip_id", "to_trip_id"):
                if col in rules.columns:
                    trip_specific |= (rules[col] != "").to_numpy()
            stop_rules = rules[~trip_specific & (rules["from_stop_id"] != "") & (rules["to_stop_id"] != "")]
            parts.transfer_rules = pd.concat(
                [
                    parts.transfer_rules,
                    stop_rules[["from_stop_id", "to_stop_id", "transfer_type", "min_transfer_time"]],
                ],
                ignore_index=True,
            )
    if trip_frames:
        trips = pd.concat(trip_frames, ignore_index=True).set_index("trip_id")
        st = pd.concat(st_frames, ignore_index=True)
    else:
        trips = pd.DataFrame(columns=["route_id", "service_id", "wheelchair_accessible", "trip_headsign", "shape_id"])
        st = pd.DataFrame(
            columns=["trip_id", "stop_id", "stop_sequence", "arrival_s", "departure_s", "pickup_type", "drop_off_type"]
        )
    st = st.sort_values(["trip_id", "stop_sequence"], kind="stable")
    stop_of = st["stop_id"].map(parts.stop_index).to_numpy(dtype=np.int64)
    arr = st["arrival_s"].to_numpy(dtype=np.int32)
    dep = st["departure_s"].to_numpy(dtype=np.int32)
    pick = st["pickup_type"].to_numpy(dtype=np.int8)
    drop = st["drop_off_type"].to_numpy(dtype=np.int8)
    sequence = st["stop_sequence"].to_numpy(dtype=np.int32)
    trip_ids = st["trip_id"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, trip_ids[1:] != trip_ids[:-1], True]) if len(st) else np.array([0])

    # Group trips by (route, stop sequence, pickup/drop-off types) into candidate patterns.
    candidates: dict[tuple[int, bytes, bytes, bytes], list[tuple[int, int, str]]] = {}
    for k in range(len(bounds) - 1):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        if hi - lo < 2:
            continue
        tid = trip_ids[lo]
        route = route_index[trips.at[tid, "route_id"]]
        key = (route, stop_of[lo:hi].tobytes(), pick[lo:hi].tobytes(), drop[lo:hi].tobytes())
        candidates.setdefault(key, []).append((lo, hi, tid))

    pattern_route, pattern_stops, pattern_pick, pattern_drop = [], [], [], []
    pattern_trips: list[list[tuple[int, int, str]]] = []
    for key, members in candidates.items():
        members.sort(key=lambda m: m[2])  # trips leaving and arriving at the same times keep their ids' order
        rows = np.stack([np.arange(lo, hi) for lo, hi, _ in members])
        lo0, hi0, _ = members[0]
        # Trips that overtake one another go to separate patterns so that RAPTOR may assume FIFO.
        for chain in fifo_chains(arr[rows], dep[rows]):
            pattern_route.append(key[0])
            pattern_stops.append(stop_of[lo0:hi0].astype(np.int32))
            pattern_pick.append(pick[lo0:hi0])
            pattern_drop.append(drop[lo0:hi0])
            pattern_trips.append([members[k] for k in chain])
        tick(1)

    n_patterns = len(pattern_route)
    a["pattern_route"] = np.asarray(pattern_route, dtype=np.int32)
    sizes = np.array([len(s) for s in pattern_stops], dtype=np.int64)
    a["pattern_stop_offsets"] = np.r_[0, np.cumsum(sizes)].astype(np.int32)
    a["pattern_stops"] = np.concatenate(pattern_stops) if n_patterns else np.zeros(0, dtype=np.int32)
    a["pattern_pickup"] = np.concatenate(pattern_pick) if n_patterns else np.zeros(0, dtype=np.int8)
    a["pattern_dropoff"] = np.concatenate(pattern_drop) if n_patterns else np.zeros(0, dtype=np.int8)
    n_trips = np.array([len(t) for t in pattern_trips], dtype=np.int64)
    a["pattern_trip_offsets"] = np.r_[0, np.cumsum(n_trips)].astype(np.int32)
    a["pattern_stop_time_offsets"] = np.r_[0, np.cumsum(n_trips * sizes)].astype(np.int64)

    ordered = [m for group in pattern_trips for m in group]
    rows = np.concatenate([np.arange(lo, hi) for lo, hi, _ in ordered]) if ordered else np.zeros(0, dtype=np.int64)
    a["arrival"] = np.ascontiguousarray(arr[rows])
    a["departure"] = np.ascontiguousarray(dep[rows])
    a["stop_sequence"] = np.ascontiguousarray(sequence[rows])
    tids = [tid for _, _, tid in ordered]
    trip_rows = trips.loc[tids] if tids else trips.iloc[0:0]
    a["trip_id"] = string_array(tids)
    a["trip_service"] = np.array([service_index[s] for s in trip_rows["service_id"]], dtype=np.int32)
    a["trip_wheelchair"] = trip_rows["wheelchair_accessible"].to_numpy(dtype=np.int8)
    a["trip_headsign"] = string_array(trip_rows["trip_headsign"].astype(str))
    shape_frames = [f.tables.shapes for f in feeds if f.tables.shapes is not None and len(f.tables.shapes)]
    if shape_frames:
        shapes = pd.concat(shape_frames, ignore_index=True).sort_values(
            ["shape_id", "shape_pt_sequence"], kind="stable"
        )
        ids, starts = np.unique(shapes["shape_id"].to_numpy(dtype=str), return_index=True)
        a["shape_id"] = ids.astype(str)
        a["shape_offsets"] = np.r_[starts, len(shapes)].astype(np.int32)
        a["shape_lat"] = shapes["shape_pt_lat"].to_numpy(dtype=np.float64)
        a["shape_lon"] = shapes["shape_pt_lon"].to_numpy(dtype=np.float64)
    else:
        a["shape_id"] = string_array([])
        a["shape_offsets"] = np.zeros(1, dtype=np.int32)
        a["shape_lat"] = np.zeros(0)
        a["shape_lon"] = np.zeros(0)
    shape_index = {sid: i for i, sid in enumerate(a["shape_id"].tolist())}
    a["trip_shape"] = np.array([shape_index.get(str(x), -1) for x in trip_rows["shape_id"]], dtype=np.int32)

    # Patterns serving each stop (each pattern once per stop, even on loops).
    pairs = (
        np.unique(
            np.stack(
                [
                    a["pattern_stops"].astype(np.int64),
                    np.repeat(np.arange(n_patterns, dtype=np.int64), sizes),
                ]
            ),
            axis=1,
        )
        if n_patterns
        else np.zeros((2, 0), dtype=np.int64)
    )
    counts = np.bincount(pairs[0], minlength=len(a["stop_id"]))
    a["stop_pattern_offsets"] = np.r_[0, np.cumsum(counts)].astype(np.int32)
    a["stop_patterns"] = pairs[1].astype(np.int32)
    return parts
