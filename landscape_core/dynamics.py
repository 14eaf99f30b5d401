"""Sec 4.1 / App C.2.1 / C.2.4: training dynamics under different budgets, from the run store.

The models trained here (one per ε, same seed and schedule) are the ones notebooks 03 and 04 analyse:
:func:`eps_specs` builds their :class:`~landscape_core.train.TrainSpec` from a notebook's parameters,
so every notebook that asks for them gets the same digest and the run store trains each only once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import spearmanr

from .attacks import AttackSpec
from .data import DatasetSpec
from .models import ModelSpec
from .train import TrainSpec


def eps_spec(P, eps: float, width: int | None = None, epochs: int | None = None) -> TrainSpec:
    """The training run of a model under constant budget ``eps`` (PGD, step = ``step_ratio`` × ε)."""
    attack = (AttackSpec(name="none", eps=0.0) if eps == 0 else
              AttackSpec(name="pgd", eps=eps, steps=P.pgd_steps, step_size=P.step_ratio * eps))
    return TrainSpec(data=DatasetSpec(name=P.dataset, n_train=P.n_train, download=P.download),
                     model=ModelSpec(arch=P.arch, width=P.width if width is None else width),
                     attack=attack, lr=P.lr, optimizer=P.optimizer, batch_size=P.batch_size,
                     epochs=P.epochs if epochs is None else epochs, seed=P.seed)


def eps_specs(P) -> dict[float, TrainSpec]:
    return {float(e): eps_spec(P, float(e)) for e in P.eps_list}


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


def rank_correlation(x, y) -> float:
    """Spearman's rank correlation (the claims' test of a monotone trend), rounded to 9 decimals so that
    a value exactly on a rule's boundary (e.g. 0.9: one adjacent swap among five) is not lost to
    floating-point error."""
    return round(float(spearmanr(np.asarray(x, float), np.asarray(y, float)).statistic), 9)


@dataclass(frozen=True)
class Stall:
    width: int
    constant: bool            # one class predicted for every training input
    dead_fraction: float      # share of the last epoch's updates with at least one dead ReLU layer
    robust_err: float         # mean robust training error over the last epoch

    @property
    def stalled(self) -> bool:
        return self.constant or self.dead_fraction > 0.5


def stall(run, x_train: torch.Tensor, batches_per_epoch: int, device="cpu") -> Stall:
    """Did training get stuck at a constant classifier or behind a dead layer (Sec 4.1, App C.2.4)?"""
    model = run.model(device=device)
    with torch.no_grad():
        pred = torch.cat([model(x_train[i:i + 500].to(device)).argmax(1).cpu()
                          for i in range(0, len(x_train), 500)])
    p = run.probes
    last = slice(-batches_per_epoch, None)
    return Stall(width=run.spec.model.width, constant=bool((pred == pred[0]).all()),
                 dead_fraction=float((p["dead_layers"][last] > 0).mean()),
                 robust_err=float(p["robust_err"][last].mean()))


def zoo(profile: str):
    """The parameters notebook 02 runs with on ``profile`` and their data ``(train, test)``: what
    notebooks 03, 04 and 06 need to reuse 02's models from the run store."""
    from .data import load_data
    from .experiments import zoo_params
    Z = zoo_params(profile)
    return Z, load_data(eps_spec(Z, 0.0).data)
