"""Sec 5: periodic adversarial scheduling (PAS) — ε warm-up, learning-rate sensitivity and Table 1.

:func:`run_spec` turns a notebook's parameters and one cell of the experiment grid (ε scheduler,
learning rate, seed, periodic or not) into a :class:`~landscape_core.train.TrainSpec`:

* the ε schedulers are eq. (5) with the paper's MNIST settings expressed relative to the target
  (cosine ε_max = 1.5 ε, linear ε_max = 2 ε, ε_min = 0, both clipped at ε — ε reaches the target at
  61% and 50% of a period), the PGD step follows ε (step = ``step_ratio`` × ε in force);
* PAS divides training into periods (``periods`` equal parts, or the paper's CIFAR resets at 100 and
  150 of 200 epochs); ε and the learning rate restart at each reset and the model at the end of every
  period is kept; the prediction is the ensemble of those models (mean of their softmax outputs).
"""
from __future__ import annotations

from .attacks import AttackSpec
from .data import DatasetSpec
from .models import ModelSpec
from .train import TrainSpec

SCHEDULERS = ("constant", "cosine", "linear")
EPS_MAX_RATIO = {"constant": None, "cosine": 1.5, "linear": 2.0}   # MNIST: 0.6 / 0.4 and 0.8 / 0.4


def period_resets(epochs: int, periods: int) -> tuple[float, ...]:
    """Reset epochs for ``periods`` equal periods (the paper's CIFAR split 100/50/50 is given explicitly)."""
    return tuple(float(round(epochs * k / periods)) for k in range(1, periods))


def run_spec(P, scheduler: str, lr: float, seed: int, periodic: bool = False) -> TrainSpec:
    eps = P.eps
    ratio = EPS_MAX_RATIO[scheduler]
    resets = tuple(P.resets) if (periodic and P.resets) else (period_resets(P.epochs, P.periods) if periodic else ())
    snapshots = tuple(int(r) for r in resets) + (P.epochs,) if periodic else ()
    return TrainSpec(
        data=DatasetSpec(name=P.dataset, n_train=P.n_train, download=P.download),
        model=ModelSpec(arch=P.arch, width=P.width),
        attack=AttackSpec(name="pgd", eps=eps, steps=P.pgd_steps, step_size=P.step_ratio * eps),
        eps_schedule=scheduler, eps_min=0.0, eps_max=None if ratio is None else ratio * eps,
        lr=lr, lr_schedule=P.periodic_lr_schedule if periodic else "constant",
        lr_milestones=tuple(P.periodic_lr_milestones) if periodic else (),
        periodic=resets, optimizer=P.optimizer, batch_size=P.batch_size, epochs=P.epochs,
        snapshots=snapshots, augment=P.dataset == "cifar10", seed=seed)


def grid(P) -> list[dict]:
    """The Fig 5 grid: every (scheduler, learning rate, seed)."""
    return [{"scheduler": s, "lr": lr, "seed": P.seed + k}
            for s in SCHEDULERS for lr in P.lrs for k in range(P.seeds)]
