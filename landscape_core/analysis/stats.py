"""The statistics behind the claims and tables: mean(std) over runs and rank correlation of a trend."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.stats import spearmanr

from ..core.spec import ParameterError

__all__ = ["mean_std", "rank_correlation"]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1) of the runs; std 0 for a single run."""
    vals = [float(v) for v in values]
    if not vals:
        raise ParameterError("values", values, "must hold at least one number")
    mean = sum(vals) / len(vals)
    if len(vals) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))


def rank_correlation(x, y) -> float:
    """Spearman's rank correlation (the claims' test of a monotone trend), rounded to 9 decimals so that
    a value exactly on a rule's boundary (e.g. 0.9: one adjacent swap among five) is not lost to
    floating-point error."""
    return round(float(spearmanr(np.asarray(x, float), np.asarray(y, float)).statistic), 9)
