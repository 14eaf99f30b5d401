"""What every study shares: the notebook parameters, the typed training parameters, and the model zoo.

* :class:`NotebookParams` - the parameters every notebook has (profile, seed, device, ...).
* :class:`TrainingParams` - how a notebook's models are trained, a nested section (``training:`` in
  a params file) shared by notebooks 02 and 05; :meth:`TrainingParams.spec` is the ONE way from
  notebook parameters to a :class:`~landscape_core.training.TrainSpec`.
* :class:`ZooParams` - the per-ε models of Sec 4 (02 trains them; 03, 04, 06 and 07 analyse them), and
  :func:`load_zoo` / :class:`Zoo` - those runs from the store with their health.
  Notebooks 03, 04, 06 and 07 take it as their ``zoo`` parameter; the runner fills it from notebook 02's
  parameters of the same profile (:class:`UsesZoo`), so the package never reads another notebook's file.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..analysis.dynamics import Health, epoch_means, health
from ..attacks import AttackSpec
from ..core.io import PROFILES
from ..core.precision import PRECISIONS, resolve_precision
from ..core.spec import ParameterError, Spec, param
from ..data import DATASETS, DatasetSpec, Split, load_data
from ..models import IMAGE_ARCHS, ModelSpec
from ..training import OPTIMIZERS, Run, TrainSpec, get_or_train

__all__ = ["NotebookParams", "TrainingParams", "ZooParams", "Zoo", "load_zoo", "zoo_data", "UsesZoo", "ZooStudyParams", "Task", "PAPER_CIFAR10", "increasing", "from_zero", "at_most"]


def increasing(name: str, values, where: str, strict: bool = False) -> None:
    """Raise :class:`ParameterError` unless ``values`` increase (strictly: no repeats)."""
    want = sorted(set(values)) if strict else sorted(values)
    if list(values) != want:
        raise ParameterError(name, list(values), "must be strictly increasing" if strict else "must be increasing",
                             where)


def from_zero(name: str, values, where: str) -> None:
    """Raise :class:`ParameterError` unless ``values`` start at 0 and strictly increase (steps along a
    direction: 0 is the model itself)."""
    if values[0] != 0.0 or list(values) != sorted(set(values)):
        raise ParameterError(name, list(values), "must start at 0 and increase", where)


def at_most(name: str, value: int, limit: int, what: str, where: str) -> None:
    """Raise :class:`ParameterError` when ``value`` exceeds ``limit`` (a bound set by another parameter)."""
    if value > limit:
        raise ParameterError(name, value, f"must be <= {limit}, {what}", where)


@dataclass(frozen=True)
class NotebookParams(Spec):
    """Parameters every notebook has."""

    # parameters that change how a run looks, where it runs or where it writes, not what it computes: left out of
    # a notebook's provenance digest, and an override of only these makes no variant folder
    NOT_RESULTS: ClassVar[tuple[str, ...]] = ("device", "progress", "interactive", "variant")

    profile: str = param("smoke", choices=PROFILES, doc="where outputs go: outputs/<profile>/")
    seed: int = param(0, ge=0, doc="master seed of every random draw")
    device: str = param("cpu", choices=("cpu", "cuda", "auto"), doc="torch device; auto = cuda if present")
    interactive: bool = param(False, doc="ipywidgets sliders instead of static figures")
    progress: bool = param(False, doc="tqdm progress bars (off for papermill/nbval)")
    variant: str = param("", doc="a one-off run with overrides: outputs go to outputs/<profile>/variants/<variant>/"
                                 " (the runner names it after the overrides)")

    def torch_device(self):
        import torch
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ParameterError("device", self.device, "CUDA is not available on this machine: use cpu or auto")
        return torch.device(self.device)

    def training_specs(self) -> list[TrainSpec]:
        """Every training run the notebook needs (``make runs`` trains them ahead, in parallel): none by
        default, 02's zoo for a notebook that analyses it."""
        return list(self.zoo.specs().values()) if isinstance(self, UsesZoo) else []


LR_SCHEDULES = ("constant", "step", "cosine_anneal")   # of a notebook's runs (training.schedules.KINDS)


@dataclass(frozen=True)
class TrainingParams(Spec):
    """How a notebook's models are trained: data, network, training PGD, optimiser."""

    dataset: str = param("mnist5k", choices=tuple(DATASETS))
    download: bool = param(False, doc="torchvision download (paper profile)")
    n_train: int | None = param(600, ge=10, doc="training subset (None: all)")
    arch: str = param("lenet", choices=IMAGE_ARCHS)
    width: int = param(2, ge=1, doc="width factor w (paper: LeNet 16, ResNet18 8)")
    pgd_steps: int = param(5, ge=1, doc="training PGD steps (with pgd_step: the steps beyond ε / pgd_step)")
    step_ratio: float = param(0.25, gt=0.0, doc="PGD step / ε in force (unless pgd_step is given)")
    pgd_step: float | None = param(None, gt=0.0, added=True, doc=(
        "an absolute PGD step; the iterations are then ε / pgd_step + pgd_steps: the sources' MNIST attack, "
        "step 0.01 and ε/0.01 + 10 iterations (null: step_ratio × ε and pgd_steps iterations)"))
    optimizer: str = param("adam", choices=OPTIMIZERS)
    lr: float = param(1.0e-3, gt=0.0)
    batch_size: int = param(100, ge=1)
    epochs: int = param(2, ge=1)
    precision: str = param("fp32", choices=(*PRECISIONS, "auto"),
                           doc="training arithmetic; auto = bf16 where the device has bf16 units, else fp32")

    def validate(self):
        full = DATASETS[self.dataset].n_train
        if self.n_train is not None and self.n_train > full:
            raise ParameterError("n_train", self.n_train, f"must be <= {full}, the {self.dataset} training set")

    def data_spec(self) -> DatasetSpec:
        return DatasetSpec(name=self.dataset, n_train=self.n_train, download=self.download)

    @property
    def train_size(self) -> int:
        return self.n_train or DATASETS[self.dataset].n_train

    @property
    def test_size(self) -> int:
        return DATASETS[self.dataset].n_test

    def updates(self, epochs: int | None = None) -> int:
        """Optimiser updates of a run of ``epochs`` (default: ``self.epochs``)."""
        return (epochs or self.epochs) * math.ceil(self.train_size / self.batch_size)

    def attack(self, eps: float, objective: str = "ce") -> AttackSpec:
        """The training PGD at budget ``eps``: ``pgd_steps`` steps of ``step_ratio`` × ε, or with ``pgd_step``
        ε / ``pgd_step`` + ``pgd_steps`` steps of ``pgd_step`` (the MNIST attack of the sources: 0.01 and
        ε/0.01 + 10, i.e. PGD-20 at 0.1 and PGD-50 at 0.4); TRADES' KL attack with the same steps for
        ``objective="trades"``; no attack at ε = 0."""
        if eps == 0:
            return AttackSpec(name="none", eps=0.0)
        name = "trades-kl" if objective == "trades" else "pgd"
        if self.pgd_step is not None:
            return AttackSpec(name=name, eps=eps, steps=int(round(eps / self.pgd_step)) + self.pgd_steps,
                              step_size=self.pgd_step)
        return AttackSpec(name=name, eps=eps, steps=self.pgd_steps, step_size=self.step_ratio * eps)

    def attack_rule(self) -> str:
        """The training attack in words, e.g. "PGD-10, step 0.25 eps" or "PGD step 0.01, eps/0.01 + 10 steps"."""
        if self.pgd_step is not None:
            return f"PGD step {self.pgd_step:g}, eps/{self.pgd_step:g} + {self.pgd_steps} steps"
        return f"PGD-{self.pgd_steps}, step {self.step_ratio:g} eps"

    def spec(self, eps: float, *, seed: int, width: int | None = None, epochs: int | None = None,
             lr: float | None = None, eps_schedule: str = "constant", eps_max: float | None = None,
             lr_schedule: str = "constant", lr_milestones: tuple[float, ...] = (),
             periodic: tuple[float, ...] = (), snapshots: tuple[int, ...] = (), objective: str = "ce",
             beta: float = 6.0, lr_max: float | None = None) -> TrainSpec:
        """The training run of one model at target budget ``eps`` (``objective="trades"``: TRADES with
        ``beta``)."""
        return TrainSpec(data=self.data_spec(), model=ModelSpec(arch=self.arch, width=width or self.width),
                         attack=self.attack(eps, objective), objective=objective, beta=beta,
                         eps_schedule=eps_schedule, eps_min=0.0, eps_max=eps_max,
                         lr=self.lr if lr is None else lr, lr_schedule=lr_schedule, lr_milestones=lr_milestones, lr_max=lr_max,
                         periodic=periodic, optimizer=self.optimizer, batch_size=self.batch_size,
                         epochs=epochs or self.epochs, snapshots=snapshots, augment=self.dataset == "cifar10",
                         seed=seed, precision=resolve_precision(self.precision))


@dataclass(frozen=True)
class ZooParams(Spec):
    """One model per budget, same seed, data order and schedule (Sec 4)."""

    training: TrainingParams = param(TrainingParams(), doc="how each model is trained")
    eps_list: tuple[float, ...] = param((0.0, 0.2, 0.4), each=dict(ge=0.0), min_len=2, doc="training budgets")
    seed: int = param(0, ge=0, doc="seed of the models")
    lr_schedule: str = param("constant", choices=LR_SCHEDULES, added=True, doc="learning rate over the run")
    lr_milestones: tuple[float, ...] = param((), each=dict(gt=0.0, lt=1.0), added=True,
                                             doc="step decays, as fractions of the run")

    def validate(self):
        increasing("eps_list", self.eps_list, "zoo", strict=True)

    def spec(self, eps: float, *, seed: int | None = None, **changes) -> TrainSpec:
        changes = {"lr_schedule": self.lr_schedule, "lr_milestones": tuple(self.lr_milestones), **changes}
        return self.training.spec(eps, seed=self.seed if seed is None else seed, **changes)

    def specs(self) -> dict[float, TrainSpec]:
        return {float(e): self.spec(float(e)) for e in self.eps_list}

    def attack(self, eps: float) -> AttackSpec | None:
        """The attack of the model trained at ``eps`` (its adversarial loss; None: the clean model's)."""
        return None if eps == 0 else self.training.attack(eps)


@dataclass
class Zoo:
    """The zoo's runs by ε and how each ended (trained, or stuck on the plateau)."""

    runs: dict[float, Run]
    health: dict[float, Health]

    def models(self, device="cpu") -> dict:
        return {eps: run.model(device=device) for eps, run in self.runs.items()}

    def learning_curves(self, n_train: int) -> dict[float, np.ndarray]:
        """Fig 11: each model's training loss L_eps (at its attack's inputs) averaged over every epoch."""
        return {eps: epoch_means(run.probes["loss"], math.ceil(n_train / run.spec.batch_size))
                for eps, run in self.runs.items()}


def zoo_data(zoo: ZooParams) -> tuple[Split, Split]:
    return load_data(zoo.training.data_spec())


def load_zoo(zoo: ZooParams, store: Path, *, device="cpu", progress: bool = False,
             data: tuple[Split, Split] | None = None) -> Zoo:
    """The zoo's runs (trained first when the store lacks them) and their health."""
    data = data or zoo_data(zoo)
    runs = {eps: get_or_train(spec, store, device=device, progress=progress, data=data)
            for eps, spec in zoo.specs().items()}
    return Zoo(runs, {eps: health(run, data[0], device) for eps, run in runs.items()})


# The paper's CIFAR10 setting (Sec 4-5, App C.1; the original code's SGD command): ResNet18-8, PGD-10 with
# step 2/255 at 8/255 (step ratio 0.25), SGD lr 0.1 (momentum 0.9), 200 epochs, augmentation (cifar10).
PAPER_CIFAR10 = TrainingParams(dataset="cifar10", n_train=None, arch="resnet18", width=8, pgd_steps=10,
                               step_ratio=0.25, optimizer="sgd", lr=0.1, epochs=200)


@dataclass(frozen=True)
class Task(Spec):
    """One task of a notebook that covers several (a data set, a network, how it trains): the base of
    02's :class:`~landscape_core.studies.gradient_dynamics.ZooTask` and 05's
    :class:`~landscape_core.studies.pas.Table1Task`.  Its name labels its rows, tables, figures and claims."""

    name: str = param("cifar10_resnet18", doc="label of the task's tables, figures and claims")
    training: TrainingParams = param(PAPER_CIFAR10, doc="how the task's models are trained (default: the "
                                                        "paper's CIFAR10 ResNet18-8)")
    lr_schedule: str = param("step", choices=LR_SCHEDULES, added=True,
                             doc="learning rate over the run, or over each period when it resets (the original "
                                 "code's CIFAR10 jump schedule: step)")
    lr_milestones: tuple[float, ...] = param((0.5, 0.75), each=dict(gt=0.0, lt=1.0), added=True,
                                             doc="step decays, as fractions of the run or period (0.5, 0.75: "
                                                 "lr / 10 after 100 and 150 of 200 epochs)")

    def validate(self):
        if not re.fullmatch(r"[A-Za-z0-9_-]+", self.name):
            raise ParameterError("name", self.name, "may hold letters, digits, _ and - only", f"task {self.name}")

    @staticmethod
    def check_list(tasks, where: str) -> None:
        """A notebook's list of tasks: each name once."""
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ParameterError("tasks", names, "each task needs its own name", where)


class UsesZoo:
    """Mixin of the notebooks that analyse notebook 02's models: the runner fills ``zoo`` from it."""

    ZOO_FROM: ClassVar[str] = "02_gradient_dynamics"


@dataclass(frozen=True)
class ZooStudyParams(UsesZoo, NotebookParams):
    """A notebook that analyses a zoo of 02 (03, 04, 06): the runner executes it once for 02's own zoo and
    once per task of 02 (the paper's Fig 3, Fig 4 and Fig 12 are of CIFAR10 ResNet18s), with the task's zoo
    and the notebook's per-task settings (``tasks:`` of its params file), into ``outputs/<profile>/tasks/<task>/``."""

    zoo: ZooParams = param(ZooParams(), doc="the models analysed: a zoo of 02_gradient_dynamics, filled in by the runner")
    task: str = param("", added=True, doc="the task of 02 whose zoo this is ('': 02's own), set by the runner: "
                                          "outputs go to outputs/<profile>/tasks/<task>/")
