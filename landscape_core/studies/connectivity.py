"""06_connectivity: Sec 6, App C.2.5 - Bezier curves between two minima, clean and adversarial.

The end points are the zoo's models at ε = 0 and at the largest ε whose model converged (end points
must be minima; the converged regime of :mod:`landscape_core.analysis.dynamics`), each with a second
seed.  Each curve is trained in the run store (resumable), then the loss and error are scanned along
the straight line and the trained curve; the barrier height is the maximum along a path minus the mean
of its end points.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..analysis.curve_training import CurveRunSpec, CurveTrainSpec, get_or_train_curve
from ..analysis.curves import BezierCurve, PathScan, barrier_height, bn_layers, scan_path
from ..analysis.dynamics import Health, health
from ..attacks import make_attack
from ..core.progress import report
from ..core.spec import param
from ..data import Split
from ..training import OPTIMIZERS, get_or_train
from .base import ZooStudyParams, at_most
from .base import load_zoo

__all__ = ["ConnectivityParams", "Connection", "connect", "budgets", "choose_ends", "curve_run_spec", "connect_zoo",
           "train_curves", "end_points", "barrier_rows"]


@dataclass(frozen=True)
class ConnectivityParams(ZooStudyParams):
    """06_connectivity: Sec 6, App C.2.5 (end points: the models of 02 and a second seed of each)."""

    curve_epochs: int = param(1, ge=1, doc="epochs of Bezier curve training")
    curve_lr: float = param(1.0e-3, gt=0.0)
    curve_optimizer: str = param("adam", choices=OPTIMIZERS)
    curve_milestones: tuple[float, ...] = param((), each=dict(gt=0.0, lt=1.0), added=True,
                                                doc="lr / 10 at these fractions of the curve's epochs (the original "
                                                    "README's CIFAR10 curves: 0.5, 0.75 of 200)")
    n_bends: int = param(1, ge=1, doc="interior control points (1: quadratic)")
    points: int = param(5, ge=3, doc="evenly spaced t in [0, 1] scanned")
    n_eval: int = param(100, ge=10, doc="training examples scanned along the paths")

    def validate(self):
        at_most("n_eval", self.n_eval, self.zoo.training.train_size, "the training set", "06_connectivity")

    def training_specs(self) -> list:
        """02's zoo and a second seed of every budget (which budget's curve is drawn depends on which
        models train, so every candidate end point is listed); the curves are :func:`train_curves`' (``make runs``'
        second phase) or the notebook's."""
        return super().training_specs() + [self.zoo.spec(e, seed=self.zoo.seed + 1) for e in self.zoo.eps_list]

    def curve_spec(self) -> CurveTrainSpec:
        milestones = tuple(sorted({max(1, round(f * self.curve_epochs)) for f in self.curve_milestones}))
        return CurveTrainSpec(epochs=self.curve_epochs, batch_size=self.zoo.training.batch_size, lr=self.curve_lr,
                              optimizer=self.curve_optimizer, n_bends=self.n_bends, seed=self.seed,
                              lr_milestones=milestones)


@dataclass
class Connection:
    """A trained curve between two minima with its training history and the scans along both paths."""

    eps: float
    ends: tuple[Health, Health]          # how the two end points' training ended
    curve: BezierCurve
    history: dict[str, list]
    line: PathScan
    bezier: PathScan

    def path(self, name: str) -> PathScan:
        return {"line": self.line, "curve": self.bezier}[name]


def connect(start, end, x, y, x_eval, y_eval, spec: CurveRunSpec, store: Path, ts, *,
            progress: bool = False, ends: tuple[Health, Health] | None = None) -> Connection:
    """Train (or load) the curve of ``spec`` between the runs ``start`` and ``end`` and scan the loss and
    error along it and along the straight line (App C.2.5).  BatchNorm statistics are recomputed at every
    t when the model has BatchNorm."""
    start_model, end_model = start.model(device=x.device), end.model(device=x.device)
    run = get_or_train_curve(spec, store, start_model, end_model, x, y, progress=progress)
    attack = None if spec.attack.name == "none" else make_attack(spec.attack)
    bn = x if bn_layers(start_model) else None
    scans = {name: scan_path(fn, ts, x_eval, y_eval, base_model=start_model, buffers=run.curve.bn_state,
                             attack=attack, bn_data=bn, generator=torch.Generator().manual_seed(spec.seed + 1),
                             progress=progress)
             for name, fn in (("line", run.curve.line), ("curve", run.curve.point))}
    return Connection(spec.attack.eps, ends, run.curve, run.history, scans["line"], scans["curve"])


def budgets(zoo_health: dict[float, Health]) -> list[float]:
    """The adversarial budgets whose zoo model (first seed) converged, largest first: the candidates for the
    adversarial end points (they must be minima); when none converged, those that left the initial plateau;
    when none did, the largest budget alone (the claims are then untestable). Decided by training health
    alone, before any barrier is measured."""
    converged = sorted((e for e, h in zoo_health.items() if e > 0 and h.converged), reverse=True)
    trained = sorted((e for e, h in zoo_health.items() if e > 0 and h.trained), reverse=True)
    return converged or trained or [max(zoo_health)]


def choose_ends(P: ConnectivityParams, store: Path, *, device="cpu",
                data: tuple[Split, Split]) -> dict[float, tuple]:
    """The end points of 06's curves, ``{eps: (zoo run, second-seed run, their two healths)}``: at ε = 0,
    and at the largest budget of :func:`budgets` whose second seed is in the same regime (both end points
    must be minima; a second seed that does not converge moves the curve to the next smaller budget,
    decided by training health alone).  Second seeds missing from the store are trained."""
    zoo = load_zoo(P.zoo, store, device=device, data=data)

    def second(eps):
        run = get_or_train(P.zoo.spec(eps, seed=P.zoo.seed + 1), store, device=device, data=data)
        return run, health(run, data[0], device)

    chosen = {0.0: second(0.0)}
    candidates = budgets(zoo.health)
    for eps in candidates:
        chosen_eps = second(eps)
        same = chosen_eps[1].converged if zoo.health[eps].converged else chosen_eps[1].trained
        if same or eps == candidates[-1]:
            chosen[eps] = chosen_eps
            break
    return {eps: (zoo.runs[eps], run, (zoo.health[eps], h)) for eps, (run, h) in chosen.items()}


def curve_run_spec(P: ConnectivityParams, start, end) -> CurveRunSpec:
    """The run-store spec of the curve between the runs ``start`` and ``end`` (trained under the start's attack)."""
    return CurveRunSpec(start=start.path.name, end=end.path.name, training=P.curve_spec(), attack=start.spec.attack,
                        seed=P.seed)


def connect_zoo(P: ConnectivityParams, store: Path, *, device="cpu",
                data: tuple[Split, Split]) -> dict[float, Connection]:
    """Two curves, each between a zoo model and its second seed (:func:`choose_ends`), trained (or loaded)
    and scanned along the curve and the straight line."""
    x, y = data[0].x.to(device), data[0].y.to(device)
    ts = np.linspace(0, 1, P.points)
    out = {}
    for eps, (start, end, ends) in choose_ends(P, store, device=device, data=data).items():
        report(f"Bezier curve and line between two seeds, eps {eps:g}: started")
        out[eps] = connect(start, end, x, y, x[: P.n_eval], y[: P.n_eval], curve_run_spec(P, start, end), store, ts,
                           progress=P.progress, ends=ends)
    return out


def train_curves(P: ConnectivityParams, store: Path, *, device="cpu", data: tuple[Split, Split]) -> dict[float, tuple[str, bool]]:
    """06's curves trained ahead into the run store, without the scans (``make runs``' second phase, once
    the end points exist): ``{eps: (curve run key, trained now)}``.  The notebook then loads them."""
    x, y = data[0].x.to(device), data[0].y.to(device)
    out = {}
    for eps, (start, end, _) in choose_ends(P, store, device=device, data=data).items():
        run = get_or_train_curve(curve_run_spec(P, start, end), store, start.model(device=device),
                                 end.model(device=device), x, y, progress=P.progress)
        out[eps] = (run.path.name, run.trained)
    return out


def end_points(paths: dict[float, Connection]) -> dict[str, Health]:
    """Every end point's health, labelled (the regime of the connectivity claims)."""
    return {f"eps={eps:g} seed {i}": h for eps, c in paths.items() for i, h in enumerate(c.ends)}


def barrier_rows(paths: dict[float, Connection]) -> list[dict]:
    """One row per (budget, path): the end points' mean loss (adversarial for ε > 0), the barrier, the
    barrier relative to the end points, and the largest error along the path (%)."""
    rows = []
    for eps, res in paths.items():
        for name in ("line", "curve"):
            sc = res.path(name)
            loss = sc.clean_loss if eps == 0 else sc.adv_loss
            err = sc.clean_err if eps == 0 else sc.adv_err
            ends = 0.5 * (loss[0] + loss[-1])
            b = barrier_height(loss)
            rows.append({"training": "clean" if eps == 0 else "adversarial", "eps": eps, "path": name,
                         "endpoint loss": ends, "barrier": b, "relative barrier": b / ends,
                         "max error (%)": 100 * err.max()})
    return rows


BARRIER_FORMATS = {"eps": "g", "endpoint loss": ".4f", "barrier": ".4f", "relative barrier": ".3f",
                   "max error (%)": ".1f"}
