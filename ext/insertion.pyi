import numpy as np
import numpy.typing as npt

DIMENSIONS: int

class RoutePlanner:
    def __init__(
        self,
        travel: npt.NDArray[np.float64],
        location: npt.NDArray[np.int32],
        service: npt.NDArray[np.float64],
        earliest: npt.NDArray[np.float64],
        latest: npt.NDArray[np.float64],
        demand: npt.NDArray[np.int32],
        partner: npt.NDArray[np.int32],
        fixed_vehicle: npt.NDArray[np.int32],
        max_ride: npt.NDArray[np.float64],
        vehicle_start: npt.NDArray[np.int32],
        vehicle_end: npt.NDArray[np.int32],
        capacity: npt.NDArray[np.int32],
        initial_load: npt.NDArray[np.int32],
        max_duration: npt.NDArray[np.float64],
    ) -> None: ...
    def schedule(self, v: int, route: npt.NDArray[np.int32]) -> npt.NDArray[np.float64] | None: ...
    def cost(self, v: int, route: npt.NDArray[np.int32]) -> float: ...
    def best_insertion(
        self,
        v: int,
        route: npt.NDArray[np.int32],
        pickup: int,
        dropoff: int,
        w_drive: float = 1.0,
        w_wait: float = 0.0,
        w_ride: float = 0.0,
    ) -> tuple[float, int, int]: ...
    def best_insertions(
        self,
        nodes: npt.NDArray[np.int32],
        offsets: npt.NDArray[np.int32],
        pickup: int,
        dropoff: int,
        w_drive: float = 1.0,
        w_wait: float = 0.0,
        w_ride: float = 0.0,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int32], npt.NDArray[np.int32]]: ...
    def repair(
        self,
        routes: npt.NDArray[np.int32],
        lengths: npt.NDArray[np.int32],
        pickups: npt.NDArray[np.int32],
        dropoffs: npt.NDArray[np.int32],
        regret: int,
        noise: float,
        seed: int,
        placed: npt.NDArray[np.int32],
    ) -> int: ...
