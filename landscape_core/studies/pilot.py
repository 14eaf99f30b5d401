"""The pilot that chose the quick profile's training settings (issue 11), from training-regime
diagnostics only: robust training error over the epochs, the constant-classifier flag and dead ReLU
layers (:func:`~landscape_core.analysis.dynamics.health`).  No claim verdict is computed here.

Each :class:`PilotCase` is one training run on the quick profile's data (the 4,000 embedded MNIST
training images, batch 100, Adam, PGD with a random start in the ε-ball), differing from a base
:class:`TrainingParams` by width, learning rate, the training attack, ε, epochs or precision.  The runs
go to their own store (``outputs/quick/pilot/runs``), so the quick study's timing from an empty store is not
helped by them.  ``python -m landscape_core pilot`` runs the cases and writes ``outputs/quick/pilot/pilot.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..analysis.dynamics import health
from ..data import load_data
from ..training import get_or_train
from .base import TrainingParams


@dataclass(frozen=True)
class PilotCase:
    """One pilot run: the base training parameters with ``changes``, at budget ``eps``."""

    name: str
    eps: float
    changes: tuple[tuple[str, object], ...]
    why: str

    def training(self, base: TrainingParams) -> TrainingParams:
        return replace(base, **dict(self.changes))


def _case(name, eps, why, **changes) -> PilotCase:
    return PilotCase(name, eps, tuple(sorted(changes.items())), why)


# every case trains 10 epochs (400 updates) unless it says otherwise
PILOT_CASES = (
    _case("old-quick", 0.3, "the previous quick setting (LeNet-4, Adam 1e-3, PGD-10 step eps/4)",
          width=4, lr=1e-3, pgd_steps=10, step_ratio=0.25),
    _case("old-quick-fp32", 0.3, "the same run in fp32: does bf16 change the training curve?",
          width=4, lr=1e-3, pgd_steps=10, step_ratio=0.25, precision="fp32"),
    _case("w8-lr1e-3", 0.3, "twice as wide", width=8, lr=1e-3, pgd_steps=10, step_ratio=0.25),
    _case("w8-lr1e-4", 0.3, "the paper's learning rate", width=8, lr=1e-4, pgd_steps=10, step_ratio=0.25),
    _case("w16-lr1e-4", 0.3, "the paper's width and learning rate", width=16, lr=1e-4, pgd_steps=10,
          step_ratio=0.25),
    _case("w16-lr1e-4-pgd20", 0.3, "the paper's width and lr, PGD-20 at the paper's step 0.02 / 0.3 (weaker steps)",
          width=16, lr=1e-4, pgd_steps=20, step_ratio=0.02 / 0.3),
    _case("w8-lr1e-4@0.4", 0.4, "eps 0.4 at width 8", width=8, lr=1e-4, pgd_steps=10, step_ratio=0.25),
    _case("w16-lr1e-4@0.4", 0.4, "eps 0.4 at the paper's width and lr", width=16, lr=1e-4, pgd_steps=10,
          step_ratio=0.25),
    _case("w4-lr1e-3@0.4", 0.4, "eps 0.4 at the previous quick setting", width=4, lr=1e-3, pgd_steps=10,
          step_ratio=0.25),
    _case("w8-lr1e-3@0.4-20ep", 0.4, "eps 0.4, width 8, lr 1e-3, twice the epochs (its first 10 are the 10-epoch run)",
          width=8, lr=1e-3, pgd_steps=10, step_ratio=0.25, epochs=20),
)


def pilot_rows(base: TrainingParams, cases, store: Path, *, device="cpu", progress: bool = False) -> list[dict]:
    """Train (or load) every case; one row of training-regime diagnostics per case."""
    rows = []
    for case in cases:
        tp = case.training(base)
        data = load_data(tp.data_spec())
        run = get_or_train(tp.spec(case.eps, seed=0), store, device=device, progress=progress, data=data)
        h = health(run, data[0], device)
        per_epoch = np.asarray(run.probes["robust_err"]).reshape(tp.epochs, -1).mean(1)
        seconds = run.result["seconds"]
        rows.append({"case": case.name, "eps": case.eps, "width": tp.width, "lr": tp.lr,
                     "attack": f"PGD-{tp.pgd_steps} step {tp.step_ratio * case.eps:.3g}",
                     "precision": run.spec.precision, "updates": len(run.probes["loss"]),
                     "robust err epoch 1": per_epoch[0], "epoch 5": per_epoch[min(4, tp.epochs - 1)],
                     "epoch 10": per_epoch[min(9, tp.epochs - 1)], "last epoch": per_epoch[-1], "constant": h.constant, "dead-layer updates": h.dead_fraction,
                     "regime": "trained" if h.trained else ("stalled" if h.stalled else "plateau"),
                     "seconds": seconds})
    return rows
