"""Sec 4.1 / App C.2.1 / C.2.4: what the per-mini-batch probes of a training run say.

:func:`windows` summarises the probes over the first and last updates (Fig 2 / Fig 8); :func:`health`
tells whether a run got stuck at a constant classifier or behind a dead ReLU layer (App C.2.4), or
left the initial plateau: the regime that the claims about trained models require.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..attacks import sweep
from ..data import Split, dataset_info
from ..training import Run
from ..training.schedules import schedule_values

__all__ = ["Windows", "windows", "Health", "health", "TRAINED_FRACTION_OF_CHANCE", "CONVERGED_FRACTION", "late_fall"]


@dataclass(frozen=True)
class Windows:
    """Mean of each probe over the first and last ``n`` updates, and the distance at update ``n``."""

    eps: float
    early_grad: float
    late_grad: float
    early_err: float
    late_err: float
    early_fall: float         # robust training error: first tenth of the first window - its last tenth
    dist_at_n: float
    final_dist: float


def windows(eps: float, probes: dict, first_n: int, last_n: int) -> Windows:
    g, e, d = probes["grad_norm"], probes["robust_err"], probes["dist"]
    n = min(first_n, len(g))
    tenth = max(n // 10, 1)
    return Windows(eps=eps, early_grad=float(g[:n].mean()), late_grad=float(g[-last_n:].mean()),
                   early_err=float(e[:n].mean()), late_err=float(e[-last_n:].mean()),
                   early_fall=float(e[:tenth].mean() - e[n - tenth:n].mean()),
                   dist_at_n=float(d[n - 1]), final_dist=float(d[-1]))


# A model has left the initial plateau (is "trained") when it does not predict one class for every
# training input and its robust training error over the last epoch is at most this fraction of the
# chance error 1 - 1/K (0.72 for 10 classes).  Claims that need trained models declare it as their
# regime; the value is fixed here, not chosen per claim or per result.
TRAINED_FRACTION_OF_CHANCE = 0.8

# A trained model has reached its final stage ("converged", the regime of the claims about minima and the
# end of training: Fig 2d / Thm 2, Fig 3, Fig 4, the barriers, Table 1) when its learning curve has
# flattened. The curve is read at the target budget only (a warm-up's first epochs are at a smaller eps,
# a periodic run restarts its budget): over the last stretch of training at the target, from half-way on
# at the earliest, the mean robust training error of its second half is lower than that of its first half
# by at most this fraction of the whole fall from chance (1 - 1/K) to that second half, nor higher by more
# (an error still rising at the end is not a final stage either). For a constant budget the two halves are
# the third and the last quarter of training. It asks the end of training, not zero change: a model still
# bouncing around its minimum (Thm 2) keeps a noisy error, while one still escaping the plateau loses a
# large share of its error at the end (quick zoo, 30 epochs: eps 0.3 still 0.43 -> 0.32 between epochs
# 19 and 28). Fixed here before any claim was read, never per claim or per result.
CONVERGED_FRACTION = 0.1


@dataclass(frozen=True)
class Health:
    """Where a training run ended (Sec 4.1, App C.2.4): stuck on the initial plateau or trained."""

    width: int
    constant: bool            # one class predicted for every training input
    dead_fraction: float      # share of the last epoch's updates with at least one dead ReLU layer
    robust_err: float         # mean robust training error over the last epoch
    chance_err: float = 0.9   # 1 - 1/K
    late_fall: float = float("nan")    # mean robust train error at the target eps: first half - second half
    total_fall: float = float("nan")   # chance error - the second half's mean (see CONVERGED_FRACTION)

    @property
    def stalled(self) -> bool:
        """Stuck at a constant classifier or behind a dead layer for most of the last epoch (C.2.4)."""
        return self.constant or self.dead_fraction > 0.5

    @property
    def trained(self) -> bool:
        """Left the initial plateau: not constant, robust training error <= 0.8 x chance."""
        return not self.constant and self.robust_err <= TRAINED_FRACTION_OF_CHANCE * self.chance_err

    @property
    def converged(self) -> bool:
        """Trained and in its final stage: the end of training at the target budget moved the robust training
        error by at most :data:`CONVERGED_FRACTION` of its whole fall from chance (unknown: not converged)."""
        return (self.trained and self.total_fall == self.total_fall and self.late_fall == self.late_fall
                and abs(self.late_fall) <= CONVERGED_FRACTION * max(self.total_fall, 0.0))

    def settling(self) -> str:
        """The numbers behind :attr:`converged`, in words."""
        if self.late_fall != self.late_fall:
            return "no learning curve recorded"
        return f"its last stretch fell {self.late_fall:.3f} of a total fall of {self.total_fall:.3f} from chance"

    def describe(self) -> str:
        return (f"width {self.width:3d}: constant classifier {self.constant!s:5}, updates with a dead layer "
                f"{self.dead_fraction:.2f}, robust train error {self.robust_err:.3f} -> stalled {self.stalled}")

    def state(self) -> str:
        """In a few words, with the numbers: what a claim's regime reports."""
        what = "constant classifier" if self.constant else ("trained" if self.trained else "on the plateau")
        return f"{what} (robust train err {self.robust_err:.2f})"

    def final_stage(self) -> str:
        """:meth:`state` with the end of the learning curve: what the converged regime reports."""
        if not self.trained:
            return self.state()
        what = "converged" if self.converged else "still converging"
        return f"{what} (robust train err {self.robust_err:.2f}; {self.settling()})"


def late_fall(robust_err, chance_err: float, at_target=None) -> tuple[float, float]:
    """(first half - second half, chance - second half) of the mean per-update robust training error over
    the last stretch of training at the target budget (``at_target``: one bool per update; None: all), from
    half-way on at the earliest: how much of its fall the run still made at its end (see
    :data:`CONVERGED_FRACTION`)."""
    e = np.asarray(robust_err, dtype=float)
    n = len(e)
    start = n // 2
    if at_target is not None:
        off = np.flatnonzero(~np.asarray(at_target, dtype=bool))
        start = max(start, int(off[-1]) + 1 if off.size else 0)
    if n - start < 4:
        return float("nan"), float("nan")
    mid = (start + n) // 2
    first, second = e[start:mid].mean(), e[mid:].mean()
    return float(first - second), float(chance_err - second)


def epoch_means(values, updates_per_epoch: int) -> np.ndarray:
    """The mean of a per-update probe over each epoch (a partial last epoch is its own mean): Fig 11's
    learning curves of L_eps on the training set are the epoch means of the ``loss`` probe."""
    v = np.asarray(values, dtype=float)
    if updates_per_epoch < 1:
        raise ValueError(f"updates_per_epoch must be >= 1, got {updates_per_epoch}")
    return np.array([v[i:i + updates_per_epoch].mean() for i in range(0, len(v), updates_per_epoch)])


def health(run: Run, train: Split, device="cpu") -> Health:
    """How ``run`` ended: its predictions on the training set and its probes over the last epoch."""
    model = run.model(device=device)
    pred = sweep(model, train.x, train.y, batch_size=500).clean_pred
    p = run.probes
    last = slice(-math.ceil(train.n / run.spec.batch_size), None)
    k = dataset_info(run.spec.data.name).num_classes
    per_epoch = math.ceil(train.n / run.spec.batch_size)
    ts = (np.arange(len(p["robust_err"])) + 0.5) / per_epoch
    eps = schedule_values(run.spec.eps_spec, np.minimum(ts, run.spec.epochs))
    fall, total = late_fall(p["robust_err"], 1.0 - 1.0 / k, eps >= run.spec.attack.eps - 1e-12)
    return Health(width=run.spec.model.width, constant=bool((pred == pred[0]).all()),
                  dead_fraction=float((p["dead_layers"][last] > 0).mean()),
                  robust_err=float(p["robust_err"][last].mean()), chance_err=1.0 - 1.0 / k,
                  late_fall=fall, total_fall=total)
