"""07_local_lipschitzness: the second source (Yang et al. 2020, "Adversarial Robustness Through Local
Lipschitzness") tied to the loss landscape of Liu et al.

(a) how far apart the classes are (:func:`separations`); (b) the source's table for natural training,
adversarial training (AT), TRADES at two betas and AT with Liu et al.'s cosine warm-up of ε, each at the
budgets of ``table_eps`` (:func:`method_table`); (c) the local Lipschitz constant of 02's zoo against ε,
beside 03's normalised top Hessian eigenvalue computed the same way (:func:`zoo_smoothness`); and how
much the released estimator (which descends the ratio) under-reports (:func:`released_gap`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..analysis.dynamics import Health, health
from ..analysis.masking import MaskingSpec, ModelFlags, masking_checks
from ..analysis.lipschitz import SeparationSummary, local_lipschitz, separation, separation_summary
from ..analysis.robustness import evaluate
from ..attacks import AttackSpec
from ..core.progress import report
from ..core.spec import ParameterError, param
from ..data import DATASETS, DatasetSpec, Split, load_data
from ..training import TrainSpec, get_or_train
from .base import NotebookParams, TrainingParams, UsesZoo, ZooParams, at_most, increasing
from .curvature import spectrum
from .pas import EPS_MAX_RATIO

__all__ = ["LipschitzParams", "METHODS", "separations", "Method", "method_specs", "MethodModel", "table_models",
           "MethodResult", "method_table",
           "masking", "released_gap", "ZooSmoothness", "zoo_smoothness"]

METHODS = ("natural", "AT", "TRADES", "AT cosine warm-up")


@dataclass(frozen=True)
class LipschitzParams(UsesZoo, NotebookParams):
    """07_local_lipschitzness: Yang et al. 2020 (separation, local Lipschitzness, TRADES), with 02's zoo."""

    zoo: ZooParams = param(ZooParams(), doc="02_gradient_dynamics's models, filled in by the runner")
    training: TrainingParams = param(TrainingParams(), doc="how the methods of the table are trained")
    table_eps: tuple[float, ...] = param((0.1, 0.4), each=dict(gt=0.0), min_len=1,
                                         doc="budgets of the table (the source's MNIST 0.1; Liu et al.'s 0.4)")
    later_methods: tuple[str, ...] = param(METHODS, each=dict(choices=METHODS), added=True,
                                           doc="methods of the table at the budgets after the first")
    betas: tuple[float, ...] = param((1.0, 6.0), each=dict(gt=0.0), min_len=2, doc="TRADES betas (source: 1, 3, 6)")
    separation_datasets: tuple[str, ...] = param(("mnist5k",), each=dict(choices=tuple(DATASETS)), min_len=1,
                                                 doc="data sets whose class separation is measured")
    separation_points: int | None = param(500, ge=10, doc="query points per set, the first ones (null: all)")
    n_test: int = param(100, ge=10, doc="test examples of the robust errors and the test-set constant")
    n_train_lipschitz: int = param(100, ge=10, doc="training examples of the training-set constant")
    lipschitz_eps: float = param(0.1, gt=0.0, doc="radius of the local Lipschitz ball (source: the task's eps)")
    lipschitz_steps: int = param(10, ge=1, doc="ascent steps of the estimate (source: 10)")
    lipschitz_step: float = param(0.01, gt=0.0, doc="ascent step (source: 0.003, reaching only 0.03)")
    mt_steps: int = param(20, ge=1, doc="multi-targeted PGD steps per target (source: 20 of eps/10)")
    apgd_steps: int = param(20, ge=1, doc="APGD-CE iterations")
    hessian_examples: int = param(100, ge=10, doc="training examples of the top Hessian eigenvalue in (c)")
    n_random: int = param(2, ge=1, doc="random parameter draws of the Hessian normalisation")
    masking: MaskingSpec = param(MaskingSpec(n_examples=20, iterations=(5, 20, 100), sweep_steps=10,
                                             square_queries=100), added=True, doc="gradient-masking check")

    def training_specs(self) -> list[TrainSpec]:
        return super().training_specs() + [m.spec for e in self.table_eps for m in method_specs(self, e)]

    def validate(self):
        where = "07_local_lipschitzness"
        increasing("table_eps", self.table_eps, where, strict=True)
        increasing("betas", self.betas, where, strict=True)
        at_most("n_test", self.n_test, self.training.test_size, "the test set", where)
        at_most("n_train_lipschitz", self.n_train_lipschitz, self.training.train_size, "the training set", where)
        at_most("masking.n_examples", self.masking.n_examples, self.n_test, "n_test", where)
        at_most("hessian_examples", self.hessian_examples, self.zoo.training.train_size, "02's training set", where)
        if self.training.dataset != self.zoo.training.dataset:
            raise ParameterError("training.dataset", self.training.dataset,
                                 f"must be 02's data set ({self.zoo.training.dataset}): (c) compares on it", where)


def separations(P: LipschitzParams) -> list[SeparationSummary]:
    """(a): train-train and test-train distances to the nearest point of another class, per data set."""
    out = []
    for name in P.separation_datasets:
        train, test = load_data(DatasetSpec(name=name, download=P.training.download))
        n = P.separation_points
        for label, q in ((f"{name} train-train", train), (f"{name} test-train", test)):
            xq, yq = (q.x[:n], q.y[:n]) if n else (q.x, q.y)
            out.append(separation_summary(label, separation(xq, yq, train.x, train.y)))
    return out


@dataclass(frozen=True)
class Method:
    """One run of (b): a training method at a budget (TRADES with its beta)."""

    method: str                   # one of METHODS
    eps: float
    spec: TrainSpec
    beta: float | None = None     # TRADES only

    @property
    def name(self) -> str:
        """``natural``, ``AT``, ``TRADES beta=6``, ``AT cosine warm-up``."""
        return f"{self.method} beta={self.beta:g}" if self.beta is not None else self.method

    @property
    def label(self) -> str:
        """Its name in the masking table: natural training once, the others at their budget."""
        return self.name if self.method == "natural" else f"{self.name} eps={self.eps:g}"


def method_specs(P: LipschitzParams, eps: float) -> list[Method]:
    """(b): the runs of the table at budget ``eps`` (natural training does not depend on it).  Every
    method and TRADES beta at the first budget (the claims compare them there); at the others the
    methods of ``later_methods``, TRADES at the largest beta."""
    T, seed = P.training, P.seed
    first = eps == P.table_eps[0]
    runs = [Method("natural", eps, T.spec(0.0, seed=seed)), Method("AT", eps, T.spec(eps, seed=seed))]
    runs += [Method("TRADES", eps, T.spec(eps, seed=seed, objective="trades", beta=b), b)
             for b in (P.betas if first else P.betas[-1:])]
    runs.append(Method("AT cosine warm-up", eps, T.spec(eps, seed=seed, eps_schedule="cosine",
                                                        eps_max=EPS_MAX_RATIO["cosine"] * eps)))
    return runs if first else [m for m in runs if m.method in P.later_methods]


@dataclass
class MethodModel:
    """A run of (b) loaded: its model and how its training ended (the same objects wherever (b) reads them)."""

    run: Method
    model: nn.Module
    health: Health


def table_models(P: LipschitzParams, store, *, device="cpu", data: tuple[Split, Split] | None = None
                 ) -> list[MethodModel]:
    """Every run of (b), budget by budget (trained first when the store lacks it); a spec met again (natural
    training at every budget) is the same loaded model."""
    train, test = data or load_data(P.training.data_spec())
    loaded, out = {}, []
    for eps in P.table_eps:
        for m in method_specs(P, eps):
            key = m.spec.digest()
            if key not in loaded:
                run = get_or_train(m.spec, store, device=device, progress=P.progress, data=(train, test))
                loaded[key] = (run.model(device=device), health(run, train, device))
            out.append(MethodModel(m, *loaded[key]))
    return out


@dataclass
class MethodResult:
    """One row of (b): a method at a budget, its errors (percent), local Lipschitz constants, and health."""

    method: str
    eps: float
    clean: float
    robust: dict[str, float]
    lipschitz_train: float
    lipschitz_test: float
    health: Health

    def row(self) -> dict:
        return {"method": self.method, "eps": self.eps, "clean err (%)": self.clean,
                **{f"{k} err (%)": v for k, v in self.robust.items()},
                "local Lipschitz (train)": self.lipschitz_train, "local Lipschitz (test)": self.lipschitz_test,
                "end of training": self.health.state()}


def _suite(P: LipschitzParams, eps: float) -> dict[str, AttackSpec]:
    T = P.training
    return {"PGD": T.attack(eps),
            "multi-targeted": AttackSpec(name="multi-targeted", eps=eps, steps=P.mt_steps, step_size=eps / 10),
            "APGD-CE": AttackSpec(name="apgd-ce", eps=eps, steps=P.apgd_steps, restarts=1)}


def _lipschitz(model: nn.Module, x: torch.Tensor, P: LipschitzParams, variant: str = "ascent") -> float:
    gen = torch.Generator().manual_seed(P.seed)
    return float(local_lipschitz(model, x, P.lipschitz_eps, steps=P.lipschitz_steps, step_size=P.lipschitz_step,
                                 variant=variant, generator=gen).mean())


def method_table(P: LipschitzParams, models: list[MethodModel], *, device="cpu",
                 data: tuple[Split, Split] | None = None) -> list[MethodResult]:
    """(b): every model of :func:`table_models` evaluated at its budget, with its local Lipschitz constants
    (once per model)."""
    train, test = data or load_data(P.training.data_spec())
    xt, yt = test.x[: P.n_test].to(device), test.y[: P.n_test].to(device)
    xl = train.x[: P.n_train_lipschitz].to(device)
    rows, constants = [], {}
    for m in models:
        key = m.run.spec.digest()
        if key not in constants:
            report(f"local Lipschitz estimate of {m.run.name}, eps {m.run.eps:g}: started")
            constants[key] = (_lipschitz(m.model, xl, P), _lipschitz(m.model, xt, P))
        res = evaluate(m.model, xt, yt, _suite(P, m.run.eps), seed=P.seed)
        rows.append(MethodResult(m.run.name, m.run.eps, 100 * res.clean_error,
                                 {k: 100 * v for k, v in res.robust_error.items()}, *constants[key], m.health))
    return rows


def masking(P: LipschitzParams, models: list[MethodModel], *, device="cpu",
            data: tuple[Split, Split] | None = None) -> list[ModelFlags]:
    """The gradient-masking flags of every model of (b), each at its own budget (natural training once, at
    the first), on the first ``masking.n_examples`` test points."""
    _, test = data or load_data(P.training.data_spec())
    xt, yt = test.x[: P.n_test].to(device), test.y[: P.n_test].to(device)
    once: dict[str, MethodModel] = {}
    for m in models:
        once.setdefault(m.run.label, m)                          # natural training: its first budget
    return [masking_checks({label: (m.model, m.health)}, xt, yt, m.run.eps, P.masking)[0]
            for label, m in once.items()]


def released_gap(P: LipschitzParams, store, *, device="cpu", data: tuple[Split, Split] | None = None) -> dict[str, float]:
    """The AT model of the first budget: its local Lipschitz estimate (test) by the ascent and by the
    released code's update (same points, steps and step size)."""
    train, test = data or load_data(P.training.data_spec())
    at = next(m for m in method_specs(P, P.table_eps[0]) if m.method == "AT")
    run = get_or_train(at.spec, store, device=device, data=(train, test))
    model, x = run.model(device=device), test.x[: P.n_test].to(device)
    return {v: _lipschitz(model, x, P, v) for v in ("ascent", "released")}


@dataclass
class ZooSmoothness:
    """(c): per budget of 02's zoo, the local Lipschitz constant (test) and the normalised top Hessian
    eigenvalue (03's definition), with each model's health."""

    eps: list[float]
    lipschitz: list[float]
    top_eigenvalue: list[float]
    health: dict[float, Health]

    def rows(self) -> list[dict]:
        return [{"eps": e, "local Lipschitz (test)": lip, "normalised top eigenvalue": ev,
                 "end of training": self.health[e].state()}
                for e, lip, ev in zip(self.eps, self.lipschitz, self.top_eigenvalue)]


def zoo_smoothness(models: dict[float, nn.Module], healths: dict[float, Health], P: LipschitzParams,
                   data: tuple[Split, Split], device="cpu") -> ZooSmoothness:
    train, test = data
    xt = test.x[: P.n_test].to(device)
    xh, yh = train.x[: P.hessian_examples].to(device), train.y[: P.hessian_examples].to(device)
    lips, tops = [], []
    for eps, model in models.items():
        report(f"local Lipschitz and top Hessian eigenvalue of 02's model, eps {eps:g}: started")
        lips.append(_lipschitz(model, xt, P))
        tops.append(float(spectrum(model, xh, yh, eps, P.zoo.attack(eps), k=1, n_random=P.n_random, seed=P.seed).normalised[0]))
    return ZooSmoothness(list(models), lips, tops, dict(healths))

