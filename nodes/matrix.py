"""Arrays on the wire as base64: a square float64 matrix (the covariance from the
optimizer to the evaluators: JSON numbers would be 3 times larger), the planner's
sequence rows (int16 action indexes, -1 after a sequence's end: `schemas.planning.SequenceRows`)
and plain vectors (a beam's scores and places). Little-endian and row-major all."""

from __future__ import annotations

import base64

import numpy as np


def encode_vector(values: np.ndarray, dtype: str) -> str:
    """Any array as base64 of its values in `dtype`, row-major."""
    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode()


def decode_vector(text: str, dtype: str, count: int) -> np.ndarray:
    """`count` values of `dtype` (read-only); ValueError if the text is not base64 or holds another number."""
    raw = base64.b64decode(text, validate=True)
    size = np.dtype(dtype).itemsize
    if len(raw) != size * count:
        raise ValueError(f"the data holds {len(raw)} bytes; {count} values of {size} bytes are {size * count}")
    return np.frombuffer(raw, dtype=dtype)


def encode(matrix: np.ndarray) -> str:
    return encode_vector(matrix, "<f8")


def decode(text: str, n: int) -> np.ndarray:
    return decode_vector(text, "<f8", n * n).reshape(n, n)


def encode_rows(rows: np.ndarray) -> dict[str, int | str]:
    """The fields of a `SequenceRows` message for a B x K matrix of action indexes."""
    count, width = rows.shape
    return {"count": count, "width": width, "rows_b64": encode_vector(rows, "<i2")}


def decode_rows(text: str, count: int, width: int) -> np.ndarray:
    """A `SequenceRows` message's matrix (read-only); ValueError if its size or values are wrong."""
    rows = decode_vector(text, "<i2", count * width).reshape(count, width)
    if rows.size and rows.min() < -1:
        raise ValueError(f"action index {int(rows.min())}: indexes are 0 or more (-1 after a sequence's end)")
    return rows
