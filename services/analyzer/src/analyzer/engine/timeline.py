"""A per-frame float timeline with a hard memory cap."""

from __future__ import annotations

from array import array

import numpy as np
from numpy.typing import NDArray

# 2**15 samples is ~18 minutes at 30 fps before the first halving; the cap keeps even
# multi-hour videos at a few hundred kB per timeline.
DEFAULT_CAPACITY = 1 << 15


class DecimatingTimeline:
    """Stores per-frame values; when full, averages neighbouring pairs and halves the rate.

    Memory is bounded by ``capacity`` doubles regardless of how many values are appended.
    ``decimation`` says how many input frames each stored sample averages.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 2 or capacity % 2:
            raise ValueError("capacity must be an even number >= 2")
        self._capacity = capacity
        self._data = array("d")
        self._pending_sum = 0.0
        self._pending_count = 0
        self.decimation = 1

    def append(self, value: float) -> None:
        self._pending_sum += value
        self._pending_count += 1
        if self._pending_count < self.decimation:
            return
        self._data.append(self._pending_sum / self._pending_count)
        self._pending_sum = 0.0
        self._pending_count = 0
        if len(self._data) >= self._capacity:
            halved = np.frombuffer(self._data, dtype=np.float64).reshape(-1, 2).mean(axis=1)
            self._data = array("d", halved.tobytes())
            self.decimation *= 2

    def __len__(self) -> int:
        return len(self._data)

    def values(self) -> NDArray[np.float64]:
        return np.frombuffer(self._data, dtype=np.float64).copy()
