"""02_gradient_dynamics: Sec 4.1, Fig 2 / Fig 8, App C.2.4 - one model per budget, and a width sweep.

The models trained here (one per ε, same seed and schedule) are the zoo that notebooks 03, 04 and 06
analyse: :meth:`GradientDynamicsParams.zoo` is what the runner hands them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..analysis.dynamics import Stall, Windows, stall, windows
from ..core.spec import param
from ..data import Split, load_data
from ..training import Run, get_or_train
from .base import NotebookParams, TrainingParams, ZooParams, increasing

__all__ = ["GradientDynamicsParams", "ZooRuns", "train_zoo", "width_sweep"]


@dataclass(frozen=True)
class GradientDynamicsParams(NotebookParams):
    """02_gradient_dynamics: Sec 4.1, Fig 2 / Fig 8, App C.2.4."""

    training: TrainingParams = param(TrainingParams(), doc="how each model is trained")
    eps_list: tuple[float, ...] = param((0.0, 0.2, 0.4), each=dict(ge=0.0), min_len=2, doc="training budgets")
    first_n: int = param(6, ge=2, doc="updates in the early window (paper: 2000)")
    last_n: int = param(6, ge=2, doc="updates in the late window (paper: 2000)")
    stall_eps: float = param(0.4, ge=0.0, doc="budget of the width sweep (C.2.4)")
    stall_widths: tuple[int, ...] = param((1, 2, 4), each=dict(ge=1), min_len=2, doc="widths of the sweep")
    stall_epochs: int = param(1, ge=1)

    def validate(self):
        increasing("eps_list", self.eps_list, "02_gradient_dynamics", strict=True)
        increasing("stall_widths", self.stall_widths, "02_gradient_dynamics", strict=True)

    def zoo(self) -> ZooParams:
        """The models of this notebook, as notebooks 03, 04 and 06 receive them."""
        return ZooParams(training=self.training, eps_list=self.eps_list, seed=self.seed)


@dataclass
class ZooRuns:
    """The zoo's runs by ε, their probes and the Fig 2 windows."""

    runs: dict[float, Run]
    probes: dict[float, dict]
    windows: list[Windows]

    @property
    def updates(self) -> int:
        return len(next(iter(self.probes.values()))["loss"])


def zoo_data(zoo: ZooParams) -> tuple[Split, Split]:
    return load_data(zoo.training.data_spec())


def train_zoo(zoo: ZooParams, store: Path, *, first_n: int, last_n: int, device="cpu", progress: bool = False,
              data: tuple[Split, Split] | None = None) -> ZooRuns:
    """Train (or load) one model per budget and summarise its probes over the first/last updates."""
    data = data or zoo_data(zoo)
    runs = {eps: get_or_train(spec, store, device=device, progress=progress, data=data)
            for eps, spec in zoo.specs().items()}
    probes = {eps: run.probes for eps, run in runs.items()}
    return ZooRuns(runs, probes, [windows(eps, probes[eps], first_n, last_n) for eps in runs])


def width_sweep(P: GradientDynamicsParams, store: Path, *, device="cpu",
                data: tuple[Split, Split] | None = None) -> list[Stall]:
    """App C.2.4: models of several widths at ``stall_eps``; which of them stalled."""
    zoo = P.zoo()
    train_split, _ = data = data or zoo_data(zoo)
    per_epoch = int(np.ceil(len(train_split.y) / P.training.batch_size))
    out = []
    for w in P.stall_widths:
        run = get_or_train(zoo.spec(P.stall_eps, width=w, epochs=P.stall_epochs), store, device=device,
                           progress=P.progress, data=data)
        out.append(stall(run, train_split.x, train_split.y, per_epoch, device))
    return out


def zoo_models(zoo: ZooParams, store: Path, *, device="cpu", data: tuple[Split, Split]) -> dict:
    """The zoo's trained models by ε (trained first when the store lacks them), in eval mode."""
    return {eps: get_or_train(spec, store, device=device, data=data).model(device=device)
            for eps, spec in zoo.specs().items()}
