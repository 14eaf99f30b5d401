"""Mode connectivity: Bezier curves between two trained models (Liu et al. 2020, Sec 6 and App C.2.5).

Garipov et al. (NeurIPS 2018, "Loss surfaces, mode connectivity, and fast ensembling of DNNs") connect
two minima theta_0 and theta_n of a loss by a Bezier curve of degree n

    phi(t) = sum_{k=0..n} binom(n, k) t^k (1 - t)^(n - k) theta_k,       t in [0, 1],

whose end points are the two FIXED trained models and whose interior control points theta_1..theta_{n-1}
(``n_bends`` of them; ``n_bends = 1`` is the quadratic curve) are trained to minimise the expected loss
E_{t ~ U(0,1)} L(phi(t)).  One t is drawn per mini-batch, the weight decay acts on the point phi(t) (not
on the control points), and the control points start on the straight line, so before training the curve
IS the line.  Liu et al. train such curves under the clean loss and under the adversarial loss (PGD
generated at phi(t)) and find that adversarially trained minima are less connected: the trained path
still climbs over a barrier of adversarial loss (Sec 6, App C.2.5).

Pieces, top to bottom:

* :func:`line_point` and :func:`bezier_coefficients`: the two paths in closed form.
* :class:`BezierCurve`: the curve model; any ``nn.Module`` is the base, its parameters are never trained
  (the curve calls it with :func:`torch.func.functional_call`).  ``curve.at(t)`` is a
  :class:`PointModel`, a plain-looking model with phi(t) loaded (detached), for attacks and evaluation.
* :func:`recompute_bn`: BatchNorm statistics are not on the curve; they are recomputed at each evaluated
  t from a pass over training data (Garipov et al., Sec 3.3), then the model is put in eval mode.
* curve training (clean or adversarial, resumable, in the run store) is in :mod:`.curve_training`.
* :func:`scan_path` and :func:`barrier_height`: loss and error along the curve or the line.

Differences from the original code (semantics reference ``util/curves.py``, ``run/train_curve.py``,
``run/scan_curve.py``), on purpose: t is drawn from a seeded generator; weight decay is on phi(t) as in
Garipov et al. (the original puts SGD weight decay on the control points); BatchNorm statistics for a
scanned point are recomputed on clean training data (the original recomputes them on adversarial examples
when it scans under attack).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm
from tqdm.auto import tqdm

from ..attacks import sweep
from ..attacks.evaluation import AttackLike
from ..core.params import flatten_named, param_layout
from ..core.spec import ParameterError

__all__ = ["line_point", "bezier_coefficients", "BezierCurve", "PointModel", "recompute_bn", "bn_layers",
           "PathScan", "scan_path", "barrier_height"]


# --- the two paths in closed form ----------------------------------------------------------------
def line_point(start, end, t: float):
    """(1 - t) start + t end, for flat tensors or dicts of tensors (exact at t = 0 and t = 1)."""
    t = float(t)
    if isinstance(start, Mapping):
        return {k: (1.0 - t) * start[k] + t * end[k] for k in start}
    return (1.0 - t) * start + t * end


def bezier_coefficients(t: float, degree: int) -> list[float]:
    """The Bernstein weights binom(n, k) t^k (1 - t)^(n - k), k = 0..n (1 and 0s at the end points)."""
    t = float(t)
    if not 0.0 <= t <= 1.0:
        raise ParameterError("t", t, "must lie in [0, 1]")
    return [math.comb(degree, k) * t ** k * (1.0 - t) ** (degree - k) for k in range(degree + 1)]


# --- the base's buffers ------------------------------------------------------------------------
def _buffers_from(base: nn.Module, source=None) -> dict[str, Tensor]:
    """The base's buffers (BN running statistics), taken from ``source`` (a state dict) where present."""
    if isinstance(source, nn.Module):
        source = source.state_dict()
    out = {}
    for name, buf in base.named_buffers():
        take = source[name] if isinstance(source, Mapping) and name in source else buf
        out[name] = take.detach().clone()
    return out


# --- a model with given parameters ---------------------------------------------------------------
class PointModel(nn.Module):
    """The base model evaluated at fixed parameters and buffers (e.g. one point phi(t) of a curve).

    It behaves as a plain model for attacks and evaluation: ``model(x)`` runs ``functional_call`` with
    ``params`` and ``bn_state``, in this module's train/eval mode.  It has no parameters of its own (the
    base is not registered as a submodule), so nothing an attack does can reach the curve's control
    points; take the device from the input.  In train mode BatchNorm updates ``bn_state`` in place.
    """

    def __init__(self, base: nn.Module, params: Mapping[str, Tensor], buffers: Mapping[str, Tensor]):
        super().__init__()
        object.__setattr__(self, "base", base)  # not a submodule: its own tensors are never used
        self.params = dict(params)
        self.bn_state = dict(buffers)

    def forward(self, x: Tensor) -> Tensor:
        self.base.train(self.training)
        return functional_call(self.base, {**self.params, **self.bn_state}, (x,))


# --- the curve -----------------------------------------------------------------------------------
class BezierCurve(nn.Module):
    """A Bezier curve in the parameter space of ``base_model`` between two fixed end points.

    ``start`` and ``end`` are state dicts, parameter dicts, models or flat parameter vectors (in the
    order of ``base_model.named_parameters()``).  Registered tensors: the buffers ``start`` and ``end``
    (flat, fixed) and the parameter ``controls`` of shape (n_bends, P), initialised on the straight line
    theta_k = theta_0 + k/n (theta_n - theta_0).  ``bn_state`` holds the base's buffers (BatchNorm
    running statistics) used by :meth:`forward` and :meth:`at`; it starts as ``start``'s (or the
    base's) and is saved in the state dict as extra state.
    """

    def __init__(self, base_model: nn.Module, start, end, n_bends: int = 1):
        super().__init__()
        if isinstance(n_bends, bool) or not isinstance(n_bends, int) or n_bends < 1:
            raise ParameterError("n_bends", n_bends, "must be an integer >= 1")
        object.__setattr__(self, "base", base_model)  # not a submodule: its parameters are not trained
        self.names, self.shapes = param_layout(base_model)
        self.numels = [math.prod(s) for s in self.shapes]
        self.n_bends = n_bends
        self.degree = n_bends + 1
        self.register_buffer("start", flatten_named(start, self.names, self.shapes, "start"))
        self.register_buffer("end", flatten_named(end, self.names, self.shapes, "end"))
        if self.start.dtype != self.end.dtype or self.start.device != self.end.device:
            raise ValueError("start and end must share dtype and device")
        fractions = torch.arange(1, n_bends + 1, dtype=self.start.dtype, device=self.start.device)
        fractions = (fractions / self.degree).unsqueeze(1)
        self.controls = nn.Parameter(self.start + fractions * (self.end - self.start))
        self.bn_state = _buffers_from(base_model, start if not isinstance(start, Tensor) else None)

    # parameters on the curve
    def point_flat(self, t: float) -> Tensor:
        """phi(t) as a flat vector, differentiable in the control points."""
        c = bezier_coefficients(t, self.degree)
        inner = torch.tensor(c[1:-1], dtype=self.controls.dtype, device=self.controls.device)
        return c[0] * self.start + c[-1] * self.end + inner @ self.controls

    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        """A flat parameter vector as ``{name: tensor}`` in the base's shapes (views, keeps autograd)."""
        return {n: p.view(s) for n, p, s in zip(self.names, torch.split(flat, self.numels), self.shapes)}

    def point(self, t: float) -> dict[str, Tensor]:
        """phi(t) as a parameter dict, differentiable in the control points."""
        return self.unflatten(self.point_flat(t))

    def line(self, t: float) -> dict[str, Tensor]:
        """The straight line between the end points, as a parameter dict."""
        return self.unflatten(line_point(self.start, self.end, t))

    def forward(self, x: Tensor, t: float) -> Tensor:
        return self.forward_flat(x, self.point_flat(t))

    def forward_flat(self, x: Tensor, flat: Tensor) -> Tensor:
        """The base model at the flat parameter vector ``flat``, in this curve's train/eval mode."""
        self.base.train(self.training)
        return functional_call(self.base, {**self.unflatten(flat), **self.bn_state}, (x,))

    def at(self, t: float, buffers: Mapping[str, Tensor] | None = None) -> PointModel:
        """A :class:`PointModel` with phi(t) (detached) loaded, in this curve's train/eval mode.

        It shares the tensors of ``bn_state`` (or of ``buffers``, filtered to the base's buffer
        names); :func:`recompute_bn` on it replaces them in the point model only.
        """
        with torch.no_grad():
            params = {k: v.detach() for k, v in self.point(t).items()}
        bufs = self.bn_state if buffers is None else {k: buffers[k] for k in self.bn_state}
        return PointModel(self.base, params, bufs).train(self.training)

    # state: BN buffers travel with the module
    def get_extra_state(self):
        return {"bn_state": dict(self.bn_state)}

    def set_extra_state(self, state) -> None:
        self.bn_state = {k: v.clone() for k, v in state["bn_state"].items()}

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        self.bn_state = {k: fn(v) for k, v in self.bn_state.items()}
        return out


# --- BatchNorm statistics at a point -------------------------------------------------------------
def bn_layers(model: nn.Module) -> list[tuple[str, _BatchNorm]]:
    root = model.base if isinstance(model, PointModel) else model
    return [(n, m) for n, m in root.named_modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recompute_bn(model: nn.Module, x_train: Tensor, batch_size: int) -> nn.Module:
    """Reset BatchNorm running statistics and recompute them from ``x_train``; return the model in eval mode.

    One pass in train mode, in order, with a cumulative average (each batch weighted by its size, which
    is PyTorch's ``momentum=None`` when batches are equal).  Works on plain models and on a
    :class:`PointModel` (whose ``bn_state`` entries are replaced, never modified in place, so tensors
    shared with a curve stay untouched).  A model without BatchNorm is only put in eval mode.
    """
    layers = bn_layers(model)
    if not layers:
        return model.eval()
    if batch_size < 1:
        raise ParameterError("batch_size", batch_size, "must be >= 1")
    if len(x_train) == 0:
        raise ValueError("recompute_bn needs training data")
    momenta = {m: m.momentum for _, m in layers}
    for name, m in layers:
        if isinstance(model, PointModel):
            key = (name + ".") if name else ""
            for buf in ("running_mean", "running_var", "num_batches_tracked"):
                old = model.bn_state[key + buf]
                model.bn_state[key + buf] = torch.ones_like(old) if buf == "running_var" else torch.zeros_like(old)
        else:
            m.reset_running_stats()
    model.train()
    seen = 0
    try:
        for i in range(0, len(x_train), batch_size):
            xb = x_train[i:i + batch_size]
            for _, m in layers:
                m.momentum = len(xb) / (seen + len(xb))
            model(xb)
            seen += len(xb)
    finally:
        for m, value in momenta.items():
            m.momentum = value
    return model.eval()


# --- scanning a path -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PathScan:
    """Mean cross-entropy and error rate at each t (adversarial ones are None without an attack)."""

    ts: np.ndarray
    clean_loss: np.ndarray
    clean_err: np.ndarray
    adv_loss: np.ndarray | None = None
    adv_err: np.ndarray | None = None


def scan_path(point_fn: Callable[[float], Mapping[str, Tensor]], ts: Sequence[float], x: Tensor, y: Tensor,
              *, base_model: nn.Module, buffers: Mapping[str, Tensor] | None = None,
              attack: AttackLike | None = None, bn_data: Tensor | None = None, batch_size: int = 100,
              bn_batch_size: int | None = None, generator: torch.Generator | None = None,
              progress: bool = False) -> PathScan:
    """Loss and error of ``base_model`` with parameters ``point_fn(t)`` for each t in ``ts``.

    ``point_fn`` is e.g. ``curve.point`` (the trained curve) or ``curve.line`` (the straight line).
    With ``bn_data`` the BatchNorm statistics are recomputed at every t (:func:`recompute_bn`, clean
    data); otherwise ``buffers`` (default: the base's own) are used.  Evaluation is in eval mode; with an
    attack, adversarial examples are generated at each point with ``attack(model, xb, yb, generator)``.
    """
    if batch_size < 1:
        raise ParameterError("batch_size", batch_size, "must be >= 1")
    if len(x) == 0 or len(x) != len(y):
        raise ValueError("x and y must be non-empty and of one length")
    base_buffers = _buffers_from(base_model, buffers)
    rows = []
    for t in tqdm(list(ts), desc="scan", disable=not progress):
        params = {k: v.detach() for k, v in point_fn(float(t)).items()}
        device = next(iter(params.values())).device
        model = PointModel(base_model, params, {k: v.to(device, copy=True) for k, v in base_buffers.items()})
        if bn_data is not None:
            recompute_bn(model, bn_data.to(device), bn_batch_size or batch_size)
        r = sweep(model.eval(), x.to(device), y.to(device), attack, batch_size=batch_size, generator=generator)
        rows.append((r.clean_loss, r.clean_error, r.adv_loss, r.adv_error))
    cols = list(zip(*rows))
    arr = lambda c: np.asarray(c, dtype=float)  # noqa: E731
    return PathScan(ts=arr(list(ts)), clean_loss=arr(cols[0]), clean_err=arr(cols[1]),
                    adv_loss=arr(cols[2]) if attack is not None else None,
                    adv_err=arr(cols[3]) if attack is not None else None)


def barrier_height(values: Sequence[float]) -> float:
    """max(values) - (values[0] + values[-1]) / 2: how far a path climbs above its end points' mean."""
    v = np.asarray(values, dtype=float).reshape(-1)
    if v.size < 2:
        raise ValueError("a barrier needs at least the two end points")
    return float(v.max() - 0.5 * (v[0] + v[-1]))
