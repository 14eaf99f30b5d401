"""Sec 4.1 / App C.2.1 / C.2.4: what the per-mini-batch probes of a training run say.

:func:`windows` summarises the probes over the first and last updates (Fig 2 / Fig 8); :func:`health`
tells whether a run got stuck at a constant classifier or behind a dead ReLU layer (App C.2.4), or
left the initial plateau: the regime that the claims about trained models require.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..attacks import sweep
from ..data import Split, dataset_info
from ..training import Run

__all__ = ["Windows", "windows", "Health", "health", "TRAINED_FRACTION_OF_CHANCE"]


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


@dataclass(frozen=True)
class Health:
    """Where a training run ended (Sec 4.1, App C.2.4): stuck on the initial plateau or trained."""

    width: int
    constant: bool            # one class predicted for every training input
    dead_fraction: float      # share of the last epoch's updates with at least one dead ReLU layer
    robust_err: float         # mean robust training error over the last epoch
    chance_err: float = 0.9   # 1 - 1/K

    @property
    def stalled(self) -> bool:
        """Stuck at a constant classifier or behind a dead layer for most of the last epoch (C.2.4)."""
        return self.constant or self.dead_fraction > 0.5

    @property
    def trained(self) -> bool:
        """Left the initial plateau: not constant, robust training error <= 0.8 x chance."""
        return not self.constant and self.robust_err <= TRAINED_FRACTION_OF_CHANCE * self.chance_err

    def describe(self) -> str:
        return (f"width {self.width:3d}: constant classifier {self.constant!s:5}, updates with a dead layer "
                f"{self.dead_fraction:.2f}, robust train error {self.robust_err:.3f} -> stalled {self.stalled}")

    def state(self) -> str:
        """In a few words, with the numbers: what a claim's regime reports."""
        what = "constant classifier" if self.constant else ("trained" if self.trained else "on the plateau")
        return f"{what} (robust train err {self.robust_err:.2f})"


def health(run: Run, train: Split, device="cpu") -> Health:
    """How ``run`` ended: its predictions on the training set and its probes over the last epoch."""
    model = run.model(device=device)
    pred = sweep(model, train.x, train.y, batch_size=500).clean_pred
    p = run.probes
    last = slice(-math.ceil(train.n / run.spec.batch_size), None)
    k = dataset_info(run.spec.data.name).num_classes
    return Health(width=run.spec.model.width, constant=bool((pred == pred[0]).all()),
                  dead_fraction=float((p["dead_layers"][last] > 0).mean()),
                  robust_err=float(p["robust_err"][last].mean()), chance_err=1.0 - 1.0 / k)
