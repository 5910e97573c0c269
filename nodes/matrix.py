"""A square float matrix on the wire: float64, little-endian, row-major, base64 (the
covariance from the optimizer to the evaluators: JSON numbers would be 3 times larger)."""

from __future__ import annotations

import base64

import numpy as np


def encode(matrix: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(matrix, dtype="<f8").tobytes()).decode()


def decode(text: str, n: int) -> np.ndarray:
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 8 * n * n:
        raise ValueError(f"the matrix holds {len(raw) // 8} values, {n * n} expected")
    return np.frombuffer(raw, dtype="<f8").reshape(n, n)
