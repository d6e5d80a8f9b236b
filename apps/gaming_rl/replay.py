"""The ring buffer both replay memories are: fixed-size numpy fields, the newest rows over the oldest, saved in a
checkpoint's `arrays.npz` as `replay/<field>` (plain arrays, read without pickle)."""

import numpy as np


class RingBuffer:
    """`fields`: name -> (row shape, dtype). `size` rows are filled; the next goes to `position`."""

    def __init__(self, capacity, fields):
        self.capacity, self.size, self.position = capacity, 0, 0
        self.fields = tuple(fields)
        for name, (shape, dtype) in fields.items():
            setattr(self, name, np.zeros((capacity, *shape), dtype))

    def to_arrays(self):
        arrays = {f"replay/{field}": getattr(self, field)[: self.size] for field in self.fields}
        arrays["replay/position"] = np.asarray(self.position)
        return arrays

    def load_arrays(self, arrays):
        self.size = len(arrays[f"replay/{self.fields[0]}"])
        self.position = int(arrays["replay/position"])
        for field in self.fields:
            getattr(self, field)[: self.size] = arrays[f"replay/{field}"]
