"""Sec 4.1 / App C.2.1 / C.2.4: what the per-mini-batch probes of a training run say.

:func:`windows` summarises the probes over the first and last updates (Fig 2 / Fig 8); :func:`stall`
tells whether a run got stuck at a constant classifier or behind a dead ReLU layer (App C.2.4).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..attacks import sweep
from ..training import Run

__all__ = ["Windows", "windows", "Stall", "stall"]


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


@dataclass(frozen=True)
class Stall:
    width: int
    constant: bool            # one class predicted for every training input
    dead_fraction: float      # share of the last epoch's updates with at least one dead ReLU layer
    robust_err: float         # mean robust training error over the last epoch

    @property
    def stalled(self) -> bool:
        return self.constant or self.dead_fraction > 0.5

    def describe(self) -> str:
        return (f"width {self.width:3d}: constant classifier {self.constant!s:5}, updates with a dead layer "
                f"{self.dead_fraction:.2f}, robust train error {self.robust_err:.3f} -> stalled {self.stalled}")


def stall(run: Run, x_train: torch.Tensor, y_train: torch.Tensor, batches_per_epoch: int, device="cpu") -> Stall:
    """Did training get stuck at a constant classifier or behind a dead layer (Sec 4.1, App C.2.4)?"""
    model = run.model(device=device)
    pred = sweep(model, x_train, y_train, batch_size=500).clean_pred
    p = run.probes
    last = slice(-batches_per_epoch, None)
    return Stall(width=run.spec.model.width, constant=bool((pred == pred[0]).all()),
                 dead_fraction=float((p["dead_layers"][last] > 0).mean()),
                 robust_err=float(p["robust_err"][last].mean()))
