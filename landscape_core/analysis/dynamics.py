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

__all__ = ["Windows", "windows", "Health", "health", "TRAINED_FRACTION_OF_CHANCE", "CONVERGED_FRACTION", "late_fall"]


@dataclass(frozen=True)
class Windows:
    """Mean of each probe over the first and last ``n`` updates, and the distance at update ``n``."""

    eps: float
    early_grad: float
    late_grad: float
    early_err: float
    late_err: float
    dist_at_n: float
    final_dist: float


def windows(eps: float, probes: dict, first_n: int, last_n: int) -> Windows:
    g, e, d = probes["grad_norm"], probes["robust_err"], probes["dist"]
    n = min(first_n, len(g))
    return Windows(eps=eps, early_grad=float(g[:n].mean()), late_grad=float(g[-last_n:].mean()),
                   early_err=float(e[:n].mean()), late_err=float(e[-last_n:].mean()),
                   dist_at_n=float(d[n - 1]), final_dist=float(d[-1]))


# A model has left the initial plateau (is "trained") when it does not predict one class for every
# training input and its robust training error over the last epoch is at most this fraction of the
# chance error 1 - 1/K (0.72 for 10 classes).  Claims that need trained models declare it as their
# regime; the value is fixed here, not chosen per claim or per result.
TRAINED_FRACTION_OF_CHANCE = 0.8

# A trained model has reached its final stage ("converged", the regime of the claims about minima and the
# end of training: Fig 2d / Thm 2, Fig 3, Fig 4, the barriers, Table 1) when its learning curve has
# flattened: the mean robust training error of the last quarter of the updates is lower than that of the
# third quarter by at most this fraction of the whole fall (the first tenth of the updates to the last
# quarter), nor higher by more (an error still rising at the end, e.g. a budget still warming up, is not
# a final stage either). It asks the end of training, not zero change: a model still bouncing around its minimum
# (Thm 2) keeps a noisy error, while one still escaping the plateau loses a large share of its error in
# its last quarter (quick zoo, 30 epochs: eps 0.3 still 0.43 -> 0.32 between epochs 19 and 28). Fixed
# here before any claim was read, never per claim or per result.
CONVERGED_FRACTION = 0.1


@dataclass(frozen=True)
class Health:
    """Where a training run ended (Sec 4.1, App C.2.4): stuck on the initial plateau or trained."""

    width: int
    constant: bool            # one class predicted for every training input
    dead_fraction: float      # share of the last epoch's updates with at least one dead ReLU layer
    robust_err: float         # mean robust training error over the last epoch
    chance_err: float = 0.9   # 1 - 1/K
    late_fall: float = float("nan")    # mean robust train error, 3rd quarter of the updates - last quarter
    total_fall: float = float("nan")   # mean robust train error, first tenth of the updates - last quarter

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
        """Trained and in its final stage: the last quarter of training took at most
        :data:`CONVERGED_FRACTION` of the whole fall of the robust training error (unknown: not converged)."""
        return (self.trained and self.total_fall == self.total_fall and self.late_fall == self.late_fall
                and abs(self.late_fall) <= CONVERGED_FRACTION * max(self.total_fall, 0.0))

    def settling(self) -> str:
        """The numbers behind :attr:`converged`, in words."""
        if self.late_fall != self.late_fall:
            return "no learning curve recorded"
        return f"last quarter fell {self.late_fall:.3f} of a total fall of {self.total_fall:.3f}"

    def describe(self) -> str:
        return (f"width {self.width:3d}: constant classifier {self.constant!s:5}, updates with a dead layer "
                f"{self.dead_fraction:.2f}, robust train error {self.robust_err:.3f} -> stalled {self.stalled}")

    def state(self) -> str:
        """In a few words, with the numbers: what a claim's regime reports."""
        what = "constant classifier" if self.constant else ("trained" if self.trained else "on the plateau")
        return f"{what} (robust train err {self.robust_err:.2f})"

    def final_stage(self) -> str:
        """:meth:`state` with the learning curve's last quarter: what the converged regime reports."""
        if not self.trained:
            return self.state()
        what = "converged" if self.converged else "still converging"
        return f"{what} (robust train err {self.robust_err:.2f}; {self.settling()})"


def late_fall(robust_err) -> tuple[float, float]:
    """(third quarter - last quarter, first tenth - last quarter) of the means of a run's per-update robust
    training error: how much of its fall the run still made at the end (see :data:`CONVERGED_FRACTION`)."""
    e = np.asarray(robust_err, dtype=float)
    n = len(e)
    if n < 8:
        return float("nan"), float("nan")
    q3, q4, first = e[n // 2: (3 * n) // 4].mean(), e[(3 * n) // 4:].mean(), e[: max(n // 10, 1)].mean()
    return float(q3 - q4), float(first - q4)


def health(run: Run, train: Split, device="cpu") -> Health:
    """How ``run`` ended: its predictions on the training set and its probes over the last epoch."""
    model = run.model(device=device)
    pred = sweep(model, train.x, train.y, batch_size=500).clean_pred
    p = run.probes
    last = slice(-math.ceil(train.n / run.spec.batch_size), None)
    k = dataset_info(run.spec.data.name).num_classes
    fall, total = late_fall(p["robust_err"])
    return Health(width=run.spec.model.width, constant=bool((pred == pred[0]).all()),
                  dead_fraction=float((p["dead_layers"][last] > 0).mean()),
                  robust_err=float(p["robust_err"][last].mean()), chance_err=1.0 - 1.0 / k,
                  late_fall=fall, total_fall=total)
