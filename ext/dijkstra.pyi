import numpy as np
import numpy.typing as npt

class StreetSearch:
    n_nodes: int
    def __init__(
        self,
        indptr: npt.NDArray[np.int32],
        indices: npt.NDArray[np.int32],
        weight: npt.NDArray[np.float32],
    ) -> None: ...
    def search(
        self,
        sources: npt.NDArray[np.int32],
        source_costs: npt.NDArray[np.float64],
        budget: float,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float64], npt.NDArray[np.int32]]: ...
