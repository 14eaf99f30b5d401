"""Schedules of the adversarial budget and of the learning rate (paper Sec. 5, eq. (5); PAS).

A schedule is a pure function of the FRACTIONAL epoch ``t`` (``3.25`` = a quarter through the fourth
epoch), described by a validated :class:`ScheduleSpec`.  The same machinery serves the adversarial
budget (warm-up, eq. (5)) and the learning rate (constant, step decay, cosine annealing).

Periods.  Training ``[0, epochs]`` is cut into periods at ``resets``: the boundaries are
``0 = b_0 < b_1 < ... < b_K = epochs`` with ``(b_1, ..., b_{K-1}) = resets``.  Inside period
``[b_i, b_{i+1})`` every schedule sees the ratio ``r = (t - b_i) / (b_{i+1} - b_i)`` in ``[0, 1)``:
"the value of learning rate and the adversarial budget size are calculated based on the ratio of the
current epoch index to the current period length" (paper Sec. 5).  ``t = epochs`` is the end of the
last period (``r = 1``).  Without resets there is one period, ``D = epochs``.

Kinds (``v_max`` defaults to ``value``):

* ``constant``       ``value``.
* ``linear``         eq. (5) ``eps_lin = (v_max - v_min) r + v_min``, clipped to ``[0, value]``.
* ``cosine``         eq. (5) ``eps_cos = 1/2 (1 - cos(pi r)) (v_max - v_min) + v_min``, clipped to
  ``[0, value]``.  With ``v_min <= 0`` and ``v_max > value`` the budget starts at 0, rises and stays
  at the target ``value`` for the rest of the period.
* ``step``           ``value * gamma ** #{m in milestones : r >= m}``; ``milestones`` are FRACTIONS of
  the period (as the original ``cycle_jump``), so ``milestones=(0.5, 0.75)`` over 200 epochs decays at
  epochs 100 and 150 (the original's ``jump``, min_jump_pt=100, jump_freq=50, power=0.1).
* ``cosine_anneal``  ``v_min + 1/2 (value - v_min)(1 + cos(pi r))``: from ``value`` down to ``v_min``
  in every period (periodic learning rate of snapshot ensembles, paper ref. [25]).

``update="epoch"`` evaluates at ``floor(t)`` (the original's default ``schedule_update_mode``: one
value per epoch); ``update="batch"`` evaluates at ``t`` itself.

Mapping from the original code (``util/seq_parser.py``, semantics only)::

    cycle_cos,eps_min=0,eps_max=0.6,ckpt_list=0:100,max=0.4  (MNIST cosine, 100 epochs)
        == ScheduleSpec(kind="cosine", value=0.4, v_min=0.0, v_max=0.6, epochs=100, update="epoch")
    cycle_linear,start_v=0,slope=0.8,ckpt_list=0:100,max=0.4  (MNIST linear)
        == ScheduleSpec(kind="linear", value=0.4, v_min=0.0, v_max=0.8, epochs=100, update="epoch")
    ckpt_list=0:100:150:200 (CIFAR10 PAS)  ==  resets=(100, 150), epochs=200

The original clips only at ``max`` (its ``min`` defaults to -inf); the paper (and this module) also
clips at 0, which changes nothing unless ``v_min < 0``.  The original raises at ``t`` exactly equal to
its last checkpoint; here that is the end of the last period.  In the MNIST cosine example the budget
reaches the target 0.4 at ``r = acos(-1/3)/pi ~ 0.608`` (epoch 61 with epoch updates); the linear one
at ``r = 0.5`` (epoch 50).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..core.spec import ParameterError, Spec, param

__all__ = ["ScheduleSpec", "KINDS", "schedule_value", "schedule_values", "period_bounds"]

KINDS = ("constant", "linear", "cosine", "step", "cosine_anneal")
WARMUP_KINDS = ("linear", "cosine")


@dataclass(frozen=True)
class ScheduleSpec(Spec):
    """A budget or learning-rate schedule over ``[0, epochs]`` (see the module docstring)."""

    kind: str = param("constant", choices=KINDS, doc="shape of the schedule")
    value: float = param(0.0, ge=0.0, doc="target budget eps_target (warm-up clip) or base learning rate")
    v_min: float = param(0.0, doc="eps_min of eq. (5) (may be <= 0); cosine_anneal: the lowest value")
    v_max: float | None = param(None, doc="eps_max of eq. (5); None means value")
    epochs: int = param(100, ge=1, doc="total length; the last period ends here")
    resets: tuple[float, ...] = param((), each=dict(gt=0.0), doc="epochs where a new period starts (PAS)")
    milestones: tuple[float, ...] = param((), each=dict(gt=0.0, lt=1.0),
                                          doc="step decay points, as fractions of the period")
    gamma: float = param(0.1, gt=0.0, doc="step decay factor")
    update: str = param("epoch", choices=("batch", "epoch"), doc="'epoch' evaluates at floor(t)")

    def validate(self) -> None:
        if self.kind in WARMUP_KINDS and self.top < self.v_min:
            raise ParameterError("v_max", self.top, f"must be >= v_min = {self.v_min} for a warm-up")
        if self.kind == "cosine_anneal":
            if self.v_min < 0:
                raise ParameterError("v_min", self.v_min, "must be >= 0 for cosine_anneal")
            if self.v_min > self.value:
                raise ParameterError("v_min", self.v_min, f"must be <= value = {self.value} for cosine_anneal")
        if any(b <= a for a, b in zip(self.resets, self.resets[1:])):
            raise ParameterError("resets", self.resets, "must be strictly increasing")
        if self.resets and self.resets[-1] >= self.epochs:
            raise ParameterError("resets", self.resets, f"must all be < epochs = {self.epochs}")
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:])):
            raise ParameterError("milestones", self.milestones, "must be strictly increasing")

    @property
    def top(self) -> float:
        """``v_max``, or ``value`` when it is not given."""
        return self.value if self.v_max is None else self.v_max


def period_bounds(spec: ScheduleSpec) -> tuple[float, ...]:
    """Period boundaries ``(0, *resets, epochs)``; a PAS ensemble takes the models at ``[1:]``."""
    return (0.0, *map(float, spec.resets), float(spec.epochs))


def _ratio(spec: ScheduleSpec, t: np.ndarray) -> np.ndarray:
    """Position ``r`` of each ``t`` inside its period, in ``[0, 1]``."""
    bounds = np.asarray(period_bounds(spec))
    t = np.minimum(t, bounds[-1])
    idx = np.clip(np.searchsorted(bounds, t, side="right") - 1, 0, len(bounds) - 2)
    return (t - bounds[idx]) / (bounds[idx + 1] - bounds[idx])


def schedule_values(spec: ScheduleSpec, ts: Iterable[float] | np.ndarray) -> np.ndarray:
    """The schedule at every fractional epoch in ``ts`` (float64 array, same shape)."""
    t = np.asarray(ts, dtype=np.float64)
    if np.any(~np.isfinite(t)) or np.any(t < 0):
        raise ValueError(f"fractional epochs must be finite and >= 0, got min {np.min(t) if t.size else t}")
    if spec.update == "epoch":
        t = np.floor(t)
    r = _ratio(spec, t)
    if spec.kind == "constant":
        out = np.full_like(r, spec.value)
    elif spec.kind == "linear":
        out = np.clip((spec.top - spec.v_min) * r + spec.v_min, 0.0, spec.value)
    elif spec.kind == "cosine":
        out = np.clip(0.5 * (1.0 - np.cos(np.pi * r)) * (spec.top - spec.v_min) + spec.v_min, 0.0, spec.value)
    elif spec.kind == "step":
        drops = (r[..., None] >= np.asarray(spec.milestones, dtype=np.float64)).sum(-1)
        out = spec.value * spec.gamma ** drops.astype(np.float64)
    elif spec.kind == "cosine_anneal":
        out = spec.v_min + 0.5 * (spec.value - spec.v_min) * (1.0 + np.cos(np.pi * r))
    else:  # pragma: no cover - excluded by the spec's choices
        raise ParameterError("kind", spec.kind, f"must be one of {list(KINDS)}")
    return np.asarray(out, dtype=np.float64)


def schedule_value(spec: ScheduleSpec, t: float) -> float:
    """The schedule at one fractional epoch ``t``."""
    if not isinstance(t, (int, float, np.integer, np.floating)) or isinstance(t, bool) or not math.isfinite(t):
        raise ValueError(f"t must be a finite number, got {t!r}")
    return float(schedule_values(spec, np.asarray([t], dtype=np.float64))[0])
