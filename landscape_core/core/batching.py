"""Consecutive slices of a data set: the one batching helper of every evaluation loop and HVP."""
from __future__ import annotations

from typing import Iterator

from .spec import ParameterError

__all__ = ["batch_slices"]


def batch_slices(n: int, batch_size: int) -> Iterator[slice]:
    """``slice(0, b), slice(b, 2b), ...`` covering ``range(n)`` in order (the last one may be shorter)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ParameterError("batch_size", batch_size, "must be an integer >= 1")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


