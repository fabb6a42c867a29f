from typing import TypedDict

import numpy as np
import numpy.typing as npt

UNREACHED: int
NO_DEPARTURE: int
PARENT_NONE: int
PARENT_SOURCE: int
PARENT_TRANSIT: int
PARENT_FOOTPATH: int
PARENT_KEPT: int

class SearchResult(TypedDict):
    # Per round and stop (arrays [rounds, stops]): the label and its parent; then the work counters.

    labels: npt.NDArray[np.int32]
    kind: npt.NDArray[np.int8]
    trip: npt.NDArray[np.int32]
    day: npt.NDArray[np.int8]
    board: npt.NDArray[np.int32]
    alight: npt.NDArray[np.int32]
    from_stop: npt.NDArray[np.int32]
    patterns_scanned: int
    stops_scanned: int

class RaptorTimetable:
    n_stops: int
    n_patterns: int
    n_trips: int
    def __init__(
        self,
        pattern_stop_offsets: npt.NDArray[np.int32],
        pattern_stops: npt.NDArray[np.int32],
        pattern_pickup: npt.NDArray[np.int8],
        pattern_dropoff: npt.NDArray[np.int8],
        pattern_trip_offsets: npt.NDArray[np.int32],
        pattern_stop_time_offsets: npt.NDArray[np.int64],
        arrival: npt.NDArray[np.int32],
        departure: npt.NDArray[np.int32],
        stop_pattern_offsets: npt.NDArray[np.int32],
        stop_patterns: npt.NDArray[np.int32],
        transfer_offsets: npt.NDArray[np.int32],
        transfer_to: npt.NDArray[np.int32],
        transfer_s: npt.NDArray[np.int32],
        transfer_in_offsets: npt.NDArray[np.int32],
        transfer_in_from: npt.NDArray[np.int32],
        transfer_in_s: npt.NDArray[np.int32],
    ) -> None: ...
    def active_rows(
        self, trip_active: npt.NDArray[np.uint8]
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]: ...
    def earliest_arrival(
        self,
        source_stops: npt.NDArray[np.int32],
        source_times: npt.NDArray[np.int32],
        max_rounds: int,
        next_active: npt.NDArray[np.int32],
        prev_active: npt.NDArray[np.int32],
        day_offset: npt.NDArray[np.int32],
        change_s: npt.NDArray[np.int32],
        stop_ok: npt.NDArray[np.uint8],
        use_footpaths: bool,
    ) -> SearchResult: ...
    def latest_departure(
        self,
        target_stops: npt.NDArray[np.int32],
        target_times: npt.NDArray[np.int32],
        max_rounds: int,
        next_active: npt.NDArray[np.int32],
        prev_active: npt.NDArray[np.int32],
        day_offset: npt.NDArray[np.int32],
        change_s: npt.NDArray[np.int32],
        stop_ok: npt.NDArray[np.uint8],
        use_footpaths: bool,
    ) -> SearchResult: ...
