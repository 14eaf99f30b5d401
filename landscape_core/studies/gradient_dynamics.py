"""02_gradient_dynamics: Sec 4.1, Fig 2 / Fig 8, App C.2.4 - one model per budget, and a width sweep.

The models trained here (one per ε, same seed and schedule) are the zoo that notebooks 03, 04 and 06
analyse: :meth:`GradientDynamicsParams.zoo` is what the runner hands them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..analysis.dynamics import Health, Windows, health, windows
from ..core.spec import param
from ..data import Split
from ..training import TrainSpec, get_or_train
from .base import NotebookParams, Task, TrainingParams, Zoo, ZooParams, at_most, increasing, load_zoo, zoo_data
from .pas import EPS_MAX_RATIO

__all__ = ["GradientDynamicsParams", "ZooTask", "ZooRuns", "train_zoo", "width_sweep", "WidthSweep", "width_specs",
           "late_gradients", "train_task_zoos"]


@dataclass(frozen=True)
class ZooTask(Task):
    """Another task of Fig 2 / Fig 8 (the paper's Fig 2: CIFAR10 ResNet18-8): one model per budget, trained
    like the task says, with the same seed and the notebook's windows."""

    eps_list: tuple[float, ...] = param((0.0, 2 / 255, 4 / 255, 6 / 255, 8 / 255), each=dict(ge=0.0), min_len=2,
                                        doc="training budgets")
    first_n: int | None = param(None, ge=2, added=True, doc="updates in the early window (null: the notebook's; "
                                                          "the paper's CIFAR10: 2000)")
    last_n: int | None = param(None, ge=2, added=True, doc="updates in the late window (null: the notebook's)")

    def validate(self):
        super().validate()
        increasing("eps_list", self.eps_list, f"task {self.name}", strict=True)

    def zoo(self, seed: int) -> ZooParams:
        return ZooParams(training=self.training, eps_list=self.eps_list, seed=seed, lr_schedule=self.lr_schedule,
                         lr_milestones=self.lr_milestones)


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
    tasks: tuple[ZooTask, ...] = param((), added=True, doc="Fig 2 on other tasks (the paper's CIFAR10 ResNet18-8); "
                                                           "notebooks 03, 04 and 06 analyse the first zoo")

    def validate(self):
        increasing("eps_list", self.eps_list, "02_gradient_dynamics", strict=True)
        increasing("stall_widths", self.stall_widths, "02_gradient_dynamics", strict=True)
        n = self.training.updates()
        for name in ("first_n", "last_n"):
            at_most(name, getattr(self, name), n, f"the updates of each run ({self.training.epochs} epochs)",
                    "02_gradient_dynamics")
            for t in self.tasks:      # a task's own window, or the notebook's
                at_most(name, getattr(t, name) or getattr(self, name), t.training.updates(),
                        f"the updates of each run of task {t.name} ({t.training.epochs} epochs)", "02_gradient_dynamics")
        Task.check_list(self.tasks, "02_gradient_dynamics")

    def zoo(self) -> ZooParams:
        """The models of this notebook, as notebooks 03, 04 and 06 receive them."""
        return ZooParams(training=self.training, eps_list=self.eps_list, seed=self.seed)

    def training_specs(self) -> list:
        zoo = self.zoo()
        return (list(zoo.specs().values()) + list(width_specs(self).values())
                + [spec for t in self.tasks for spec in t.zoo(self.seed).specs().values()])


@dataclass
class ZooRuns(Zoo):
    """The zoo with its probes and the Fig 2 windows."""

    probes: dict[float, dict]
    windows: list[Windows]
    first_n: int = 0          # the windows' lengths (updates)
    last_n: int = 0

    @property
    def updates(self) -> int:
        return len(next(iter(self.probes.values()))["loss"])


def train_zoo(zoo: ZooParams, store: Path, *, first_n: int, last_n: int, device="cpu", progress: bool = False,
              data: tuple[Split, Split] | None = None) -> ZooRuns:
    """Train (or load) one model per budget and summarise its probes over the first/last updates."""
    z = load_zoo(zoo, store, device=device, progress=progress, data=data)
    probes = {eps: run.probes for eps, run in z.runs.items()}
    return ZooRuns(z.runs, z.health, probes, [windows(eps, probes[eps], first_n, last_n) for eps in z.runs],
                   first_n, last_n)


@dataclass
class WidthSweep:
    """App C.2.4 and Sec 6: how each width ended at ``stall_eps`` (``stalls``, in ``stall_widths`` order), the
    smallest width trained without attack (``clean``) and with the cosine warm-up to ``stall_eps`` (``warmup``)."""

    eps: float
    stalls: list[Health]
    clean: Health
    warmup: Health

    def describe(self) -> str:
        w = self.stalls[0].width
        return "\n".join([*(s.describe() for s in self.stalls),
                          f"width {w:3d} at eps 0: {self.clean.state()}",
                          f"width {w:3d} with the cosine warm-up to eps {self.eps:g}: {self.warmup.state()}"])


def width_specs(P: GradientDynamicsParams) -> dict[str, TrainSpec]:
    """The runs of the width sweep: ``width <w>`` at ``stall_eps`` for each width; the smallest width at
    eps 0 (``clean``) and with the cosine warm-up (05's eps_max ratio) to ``stall_eps`` (``warmup``)."""
    zoo, small = P.zoo(), P.stall_widths[0]
    specs = {f"width {w}": zoo.spec(P.stall_eps, width=w, epochs=P.stall_epochs) for w in P.stall_widths}
    specs["clean"] = zoo.spec(0.0, width=small, epochs=P.stall_epochs)
    specs["warmup"] = zoo.spec(P.stall_eps, width=small, epochs=P.stall_epochs, eps_schedule="cosine",
                               eps_max=EPS_MAX_RATIO["cosine"] * P.stall_eps)
    return specs


def width_sweep(P: GradientDynamicsParams, store: Path, *, device="cpu",
                data: tuple[Split, Split] | None = None) -> WidthSweep:
    """App C.2.4: models of several widths at ``stall_eps`` (which of them stalled), and the smallest width
    without attack and with a warm-up of the budget (Sec 6)."""
    data = data or zoo_data(P.zoo())
    h = {k: health(get_or_train(spec, store, device=device, progress=P.progress, data=data), data[0], device)
         for k, spec in width_specs(P).items()}
    return WidthSweep(P.stall_eps, [h[f"width {w}"] for w in P.stall_widths], h["clean"], h["warmup"])


def late_gradients(zoo: ZooRuns, last_n: int) -> dict[float, list[float]]:
    """Each budget's stochastic gradient norms over its last ``last_n`` updates (Thm 2's tail)."""
    return {eps: [float(v) for v in p["grad_norm"][-last_n:]] for eps, p in zoo.probes.items()}


def train_task_zoos(P: GradientDynamicsParams, store: Path, *, device="cpu") -> dict[str, ZooRuns]:
    """Fig 2 on each of ``P.tasks``: its zoo trained (or loaded) and its windows, by task name."""
    return {t.name: train_zoo(t.zoo(P.seed), store, first_n=t.first_n or P.first_n, last_n=t.last_n or P.last_n,
                              device=device, progress=P.progress) for t in P.tasks}
