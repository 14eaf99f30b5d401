"""The typed parameters of each notebook (one class per notebook).

The notebook's ``parameters`` cell holds the smoke defaults listed here; ``params/<profile>/*.yaml``
override them through papermill.  ``python -m landscape_core.notebook check-params`` validates every
YAML file against these classes, and each notebook validates again in its first cells.
"""
from __future__ import annotations

from dataclasses import dataclass

from .notebook import NotebookParams
from .spec import ParameterError, param

_EPS = dict(ge=0.0)


@dataclass(frozen=True)
class LinearTheoryParams(NotebookParams):
    """01_linear_theory: Sec 3.1-3.2, Fig 1, Prop 1, Thm 1-2."""

    eps: float = param(0.3, ge=0.0, doc="the budget marked in the set figures (and the sliders' start)")
    x: float = param(1.0, doc="clean input of Fig 1")
    fig1_eps: tuple[float, ...] = param((0.6, 1.2), each=_EPS, min_len=1, doc="budgets of the Fig 1 panels")
    fig1_grid: int = param(401, ge=11, doc="θ grid points on [-2, 2]")
    num_classes: int = param(3, ge=3, doc="K (Thm 1 is for K >= 3)")
    dim: int = param(2, ge=1, le=12, doc="input dimension m of the synthetic data")
    n_per_class: int = param(40, ge=2)
    spread: float = param(0.08, gt=0.0, doc="std of each synthetic class")
    eps_grid: tuple[float, ...] = param((0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1),
                                        each=_EPS, min_len=3, doc="budgets for the V_eps / T_eps fractions")
    n_directions: int = param(1000, ge=10, doc="sampled W per set fraction")
    n_checks: int = param(4, ge=0, doc="directions checked by brute-force line search / box vertices")
    train_steps: int = param(100, ge=1, doc="full-batch steps of linear adversarial training")
    train_lr: float = param(0.5, gt=0.0)
    collapse_eps: tuple[float, ...] = param((0.0, 0.4, 0.8, 1.0), each=_EPS, min_len=2,
                                            doc="budgets of the linear adversarial training scan")
    sgd_eps: tuple[float, ...] = param((0.0, 0.2, 0.4), each=_EPS, min_len=2, doc="Thm 2 budgets")
    sgd_iterations: int = param(150, ge=10)
    sgd_lr: float = param(0.1, gt=0.0)
    sgd_batch_size: int = param(16, ge=1)
    sgd_hidden: int = param(16, ge=1)
    sgd_seeds: int = param(1, ge=1, doc="independent SGD runs per budget")

    def validate(self):
        if list(self.eps_grid) != sorted(self.eps_grid):
            raise ParameterError("eps_grid", list(self.eps_grid), "must be increasing", "01_linear_theory")
        if list(self.collapse_eps) != sorted(self.collapse_eps):
            raise ParameterError("collapse_eps", list(self.collapse_eps), "must be increasing", "01_linear_theory")
        if list(self.sgd_eps) != sorted(self.sgd_eps):
            raise ParameterError("sgd_eps", list(self.sgd_eps), "must be increasing", "01_linear_theory")


@dataclass(frozen=True)
class ModelZooParams(NotebookParams):
    """How the per-ε models of Sec 4 are trained (shared by notebooks 02, 03 and 04)."""

    dataset: str = param("mnist5k", choices=("mnist5k", "mnist", "fashionmnist", "cifar10"))
    download: bool = param(False, doc="torchvision download (paper profile)")
    n_train: int | None = param(600, ge=10, doc="training subset (None: all)")
    arch: str = param("lenet", choices=("lenet", "vgg16", "resnet18"))
    width: int = param(2, ge=1, doc="width factor w (paper: LeNet 16, ResNet18 8)")
    eps_list: tuple[float, ...] = param((0.0, 0.2, 0.4), each=_EPS, min_len=2, doc="training budgets")
    pgd_steps: int = param(5, ge=1, doc="training PGD steps")
    step_ratio: float = param(0.25, gt=0.0, doc="PGD step / ε")
    optimizer: str = param("adam", choices=("adam", "sgd"))
    lr: float = param(1.0e-3, gt=0.0)
    batch_size: int = param(100, ge=1)
    epochs: int = param(2, ge=1)

    def validate(self):
        if list(self.eps_list) != sorted(set(self.eps_list)):
            raise ParameterError("eps_list", list(self.eps_list), "must be strictly increasing")


@dataclass(frozen=True)
class GradientDynamicsParams(ModelZooParams):
    """02_gradient_dynamics: Sec 4.1, Fig 2 / Fig 8, App C.2.4."""

    first_n: int = param(6, ge=2, doc="updates in the early window (paper: 2000)")
    last_n: int = param(6, ge=2, doc="updates in the late window (paper: 2000)")
    stall_eps: float = param(0.4, ge=0.0, doc="budget of the width sweep (C.2.4)")
    stall_widths: tuple[int, ...] = param((1, 2, 4), each=dict(ge=1), min_len=2, doc="widths of the sweep")
    stall_epochs: int = param(1, ge=1)

    def validate(self):
        super().validate()
        if list(self.stall_widths) != sorted(set(self.stall_widths)):
            raise ParameterError("stall_widths", list(self.stall_widths), "must be strictly increasing",
                                 "02_gradient_dynamics")


@dataclass(frozen=True)
class PASParams(NotebookParams):
    """05_pas_table1: Sec 5, Fig 5, Table 1."""

    dataset: str = param("mnist5k", choices=("mnist5k", "mnist", "fashionmnist", "cifar10"))
    download: bool = param(False)
    n_train: int | None = param(400, ge=10, doc="training subset (None: all)")
    n_test: int = param(100, ge=10, doc="test examples evaluated")
    arch: str = param("lenet", choices=("lenet", "vgg16", "resnet18"))
    width: int = param(2, ge=1)
    eps: float = param(0.4, gt=0.0, doc="target budget (MNIST 0.4, CIFAR10 8/255)")
    pgd_steps: int = param(5, ge=1)
    step_ratio: float = param(0.25, gt=0.0, doc="PGD step / ε in force")
    optimizer: str = param("adam", choices=("adam", "sgd"))
    batch_size: int = param(100, ge=1)
    epochs: int = param(2, ge=1)
    lrs: tuple[float, ...] = param((1.0e-3, 1.0e-2), each=dict(gt=0.0), min_len=1, doc="Fig 5 learning rates")
    table_lr: float = param(1.0e-3, gt=0.0, doc="learning rate of the Table 1 rows (one of lrs)")
    seeds: int = param(1, ge=1)
    periods: int = param(2, ge=1, doc="PAS periods (equal length) unless resets is given")
    resets: tuple[float, ...] = param((), each=dict(gt=0.0), doc="explicit PAS resets (CIFAR: 100, 150 of 200)")
    periodic_scheduler: str = param("cosine", choices=("constant", "cosine", "linear"))
    periodic_lr_schedule: str = param("constant", choices=("constant", "step", "cosine_anneal"))
    periodic_lr_milestones: tuple[float, ...] = param((), each=dict(gt=0.0, lt=1.0))
    attacks: tuple[str, ...] = param(("PGD", "PGD100", "APGD100-CE", "APGD100-DLR", "Square5K"),
                                     each=dict(choices=("PGD", "PGD100", "APGD100-CE", "APGD100-DLR", "Square5K")))
    pgd100_steps: int = param(20, ge=1)
    apgd_steps: int = param(20, ge=1)
    apgd_restarts: int = param(1, ge=1)
    square_queries: int = param(100, ge=1)
    eval_batch_size: int = param(100, ge=1)

    def validate(self):
        if self.table_lr not in self.lrs:
            raise ParameterError("table_lr", self.table_lr, f"must be one of lrs = {list(self.lrs)}", "05_pas_table1")
        if list(self.lrs) != sorted(set(self.lrs)):
            raise ParameterError("lrs", list(self.lrs), "must be strictly increasing", "05_pas_table1")


def zoo_params(profile: str) -> "GradientDynamicsParams":
    """The parameters notebook 02 runs with on ``profile``: notebooks 03 and 04 analyse its models."""
    from .notebook import load_params
    return GradientDynamicsParams.from_params(load_params("02_gradient_dynamics", profile),
                                              where=f"params/{profile}/02_gradient_dynamics.yaml")


@dataclass(frozen=True)
class HessianParams(NotebookParams):
    """03_hessian: Sec 4.2, Fig 3, Fig 12 (models from 02_gradient_dynamics)."""

    n_examples: int = param(100, ge=10, doc="fixed training examples of the Hessian")
    k: int = param(5, ge=1, doc="top eigenpairs (paper: 20)")
    tol: float = param(1.0e-2, ge=0.0, doc="Lanczos tolerance")
    n_random: int = param(2, ge=1, doc="random parameter draws of the normalisation")
    landscape_eps: tuple[float, ...] = param((0.0, 0.4), each=_EPS, doc="budgets whose landscape is scanned")
    landscape_examples: int = param(50, ge=10)
    span: float = param(0.5, gt=0.0, doc="scan half-width along each unit eigenvector")
    points: int = param(5, ge=3, doc="grid points per axis")


@dataclass(frozen=True)
class CosineParams(NotebookParams):
    """04_cosine_similarity: Sec 4.2, Fig 4, the slides' tables (models from 02_gradient_dynamics)."""

    n_examples: int = param(100, ge=10, doc="training examples whose perturbations are compared")
    n_test: int = param(100, ge=10, doc="test examples of the robust error at θ ± a v")
    a_values: tuple[float, ...] = param((0.0, 0.05, 0.1), each=_EPS, min_len=2, doc="MNIST paper: 0..0.1")
    repeats: int = param(2, ge=1, doc="PGD repeats (paper: 4)")

    def validate(self):
        if self.a_values[0] != 0.0 or list(self.a_values) != sorted(set(self.a_values)):
            raise ParameterError("a_values", list(self.a_values), "must start at 0 and increase", "04_cosine_similarity")


@dataclass(frozen=True)
class ConnectivityParams(NotebookParams):
    """06_connectivity: Sec 6, App C.2.5 (end points: the models of 02 and a second seed of each)."""

    curve_epochs: int = param(1, ge=1, doc="epochs of Bezier curve training")
    curve_lr: float = param(1.0e-3, gt=0.0)
    curve_optimizer: str = param("adam", choices=("adam", "sgd"))
    n_bends: int = param(1, ge=1, doc="interior control points (1: quadratic)")
    points: int = param(5, ge=3, doc="evenly spaced t in [0, 1] scanned")
    n_eval: int = param(100, ge=10, doc="training examples scanned along the paths")
