"""Robust evaluation for Table 1 of Liu et al. 2020 (Sec. 5): attack suite, worst case, ensembles.

Table 1 reports, for each task and adversarial-budget scheduler, the clean test error and the robust test
error under five attacks (paper Sec. 5, "We evaluate the robustness of our trained models by different
kinds of attacks"), each as mean(std) over three runs:

=============  =================================================================================
column         attack (the original release's README gives the settings; eps is the target budget)
=============  =================================================================================
PGD            the training attack: MNIST 50 steps of 0.01 at eps 0.4, CIFAR10 10 steps of 2/255
PGD100         100 PGD steps; step 0.01 (MNIST) or 1/255 (CIFAR10)
APGD100-CE     AutoPGD (Croce & Hein 2020, paper ref. [10]), cross-entropy, 100 iterations, rho 0.75
APGD100-DLR    AutoPGD on the difference-of-logits-ratio loss, same settings
Square5K       Square attack (paper ref. [3]), black box, 5000 queries, p_init 0.8
=============  =================================================================================

This module provides

* :func:`paper_attacks` (an :data:`EvalSuite`, ordered column name -> :class:`AttackSpec`) and
  :class:`EvalSpec`, the validated evaluation parameters of a notebook or profile;
* :func:`evaluate` - clean error, robust error per attack and the per-example **worst case** (an example
  is broken when it is misclassified clean or under any attack), keeping every per-example mask;
* :class:`Ensemble` for periodic adversarial scheduling (PAS), whose CIFAR10 results use the ensemble of
  the three period-end models (evaluated like any model);
* the paper's numbers and the tables live one floor up, in :mod:`landscape_core.report.paper` and
  :mod:`landscape_core.report.tables`.

Choices, with reasons:

* **APGD restarts.**  The original release builds ``APGDAttack(..., n_restarts=5, ...)`` (``util/attack.py``),
  so :func:`paper_attacks` defaults to 5 restarts; restarts only re-attack the points still robust.
  Square uses one restart there, as here.
* **PGD100 random start** follows the training attack's ``random_start`` (the original starts all its
  PGD attacks uniformly in +-step; ``AttackSpec`` defaults to the Madry eps-ball start).
* **Ensemble output.**  The original averages the members' softmax probabilities (``attack_list`` in
  ``util/train.py``: prediction = argmax of the mean probability, loss = -log of it).  :class:`Ensemble`
  returns ``log(mean_k softmax(f_k(x)))``: a valid logit vector whose softmax *is* the mean probability,
  so its argmax and its cross-entropy are exactly the original's, and every attack (PGD, APGD, Square)
  treats the ensemble as one model.  APGD-DLR then runs on log-probabilities instead of raw logits; DLR
  is invariant to a shift of the logits but not to the log-softmax's nonlinearity, so this is one
  reasonable variant (the release has no ensemble version of its APGD or Square wrappers).
* **Randomness.**  Each attack column gets its own CPU generator derived from ``(seed, column name)``:
  a column's result does not depend on which other columns run, and is the same on CPU and GPU for the
  random starts.  The caller's global RNG is untouched (the package attacks reseed it; the wrapper in
  :mod:`landscape_core.attacks` restores it).
* **Fixed batch size** (default 100, the README's ``--batch_size 100``): Square's result depends on it.
* **Subset.**  ``EvalSpec.n_examples`` keeps the *first* n test examples (the RobustBench convention);
  a seeded stratified subset is what ``DatasetSpec.n_test`` already gives.
* **std over seeds** uses the sample standard deviation (ddof = 1) when there are two runs or more, the
  usual estimator for "mean +- std over runs" with few runs (the paper does not say which); one run gives 0.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..core.progress import report
from ..attacks import Attack, AttackSpec, sweep
from ..core.rng import draw_seed, purpose_generator
from ..core.spec import ParameterError, Spec, param
from ..data import DATASETS

__all__ = ["check_budget", "TABLE1_ATTACKS", "SUITE_ATTACKS", "TABLE1_COLUMNS", "EvalSuite", "EvalSpec", "paper_attacks", "EvalResult",
           "evaluate", "Ensemble", "MNIST_LIKE", "CIFAR_LIKE"]


TABLE1_ATTACKS = ("PGD", "PGD100", "APGD100-CE", "APGD100-DLR", "Square5K")


SUITE_ATTACKS = TABLE1_ATTACKS + ("MultiTargeted",)
"""The columns a suite may run: the paper's, and the second source's multi-targeted PGD (20 steps of
eps/10 towards each other class, the worst kept; not in the paper's Table 1, so not a default)."""


TABLE1_COLUMNS = ("Clean",) + TABLE1_ATTACKS


EvalSuite = dict[str, AttackSpec]   # ordered: column name -> attack


MNIST_LIKE = tuple(name for name, info in DATASETS.items() if info.in_shape[0] == 1)   # grey 28x28


CIFAR_LIKE = tuple(name for name, info in DATASETS.items() if info.in_shape[0] == 3)


def check_budget(eps) -> float:
    """``eps`` as a float, or :class:`ParameterError` unless it is a finite number > 0."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise ParameterError("eps", eps, "must be a number > 0")
    return float(eps)


def _paper_train_attack(dataset: str, eps: float) -> AttackSpec:
    """The paper's training PGD: MNIST 50 steps of 0.01, CIFAR10 10 steps of 2/255."""
    if dataset in MNIST_LIKE:
        return AttackSpec(name="pgd", eps=eps, steps=50, step_size=0.01)
    return AttackSpec(name="pgd", eps=eps, steps=10, step_size=2 / 255)


def paper_attacks(dataset: str, eps: float, train_attack: AttackSpec | None = None, *,
                  attacks: Sequence[str] = TABLE1_ATTACKS, pgd100_steps: int = 100,
                  pgd100_step_size: float | None = None, apgd_steps: int = 100, apgd_restarts: int = 5,
                  square_queries: int = 5000, mt_steps: int = 20) -> EvalSuite:
    """The Table 1 attacks at budget ``eps``, in column order (a subset via ``attacks``).

    ``train_attack``: the attack the model was trained with (None: the paper's for ``dataset``); the
    "PGD" column runs it at ``eps`` with its own step size, steps, restarts and random start.  PGD100's
    step defaults to 0.01 (MNIST-like data) or 1/255 (CIFAR10).  The keyword arguments shrink the suite
    for the smoke/quick profiles; the column names stay those of the paper.
    """
    if dataset not in MNIST_LIKE + CIFAR_LIKE:
        raise ParameterError("dataset", dataset, f"must be one of {list(MNIST_LIKE + CIFAR_LIKE)}")
    eps = check_budget(eps)
    for name in attacks:
        if name not in SUITE_ATTACKS:
            raise ParameterError("attacks", name, f"each must be one of {list(SUITE_ATTACKS)}")
    if len(set(attacks)) != len(attacks):
        raise ParameterError("attacks", tuple(attacks), "must not repeat a column")
    train = _paper_train_attack(dataset, eps) if train_attack is None else train_attack
    if not isinstance(train, AttackSpec) or train.name == "none":
        raise ParameterError("train_attack", train_attack, "must be an AttackSpec of a real attack (or None)")
    if pgd100_step_size is None:
        pgd100_step_size = 0.01 if dataset in MNIST_LIKE else 1 / 255
    eps = float(eps)
    every = {
        "PGD": train.replace(eps=eps),
        "PGD100": AttackSpec(name="pgd", eps=eps, norm=train.norm, steps=pgd100_steps,
                             step_size=pgd100_step_size, random_start=train.random_start),
        "APGD100-CE": AttackSpec(name="apgd-ce", eps=eps, norm=train.norm, steps=apgd_steps, rho=0.75,
                                 restarts=apgd_restarts),
        "APGD100-DLR": AttackSpec(name="apgd-dlr", eps=eps, norm=train.norm, steps=apgd_steps, rho=0.75,
                                  restarts=apgd_restarts),
        "Square5K": AttackSpec(name="square", eps=eps, norm=train.norm, n_queries=square_queries, p_init=0.8),
        "MultiTargeted": AttackSpec(name="multi-targeted", eps=eps, norm=train.norm, steps=mt_steps,
                                    step_size=eps / 10),
    }
    return {name: every[name] for name in attacks}


@dataclass(frozen=True)
class EvalSpec(Spec):
    """How a notebook evaluates its models (the budget eps comes from the training spec)."""

    attacks: tuple[str, ...] = param(TABLE1_ATTACKS, each=dict(choices=SUITE_ATTACKS),
                                     doc="Table 1 columns to run, in this order (MultiTargeted: the second source's)")
    batch_size: int = param(100, ge=1, doc="fixed evaluation batch size (Square depends on it)")
    n_examples: int | None = param(None, ge=1, doc="evaluate the first n test examples (null: all)")
    pgd100_steps: int = param(100, ge=1, doc="steps of the PGD100 column")
    apgd_steps: int = param(100, ge=1, doc="iterations of the APGD100 columns")
    apgd_restarts: int = param(5, ge=1, doc="APGD restarts (the original release uses 5)")
    square_queries: int = param(5000, ge=1, doc="queries of the Square5K column")
    seed: int = param(0, ge=0, doc="seed of the attacks' randomness")

    def validate(self) -> None:
        if len(set(self.attacks)) != len(self.attacks):
            raise ParameterError("attacks", self.attacks, "must not repeat a column")

    def suite(self, dataset: str, eps: float, train_attack: AttackSpec | None = None) -> EvalSuite:
        return paper_attacks(dataset, eps, train_attack, attacks=self.attacks, pgd100_steps=self.pgd100_steps,
                             apgd_steps=self.apgd_steps, apgd_restarts=self.apgd_restarts,
                             square_queries=self.square_queries)

    def labels(self) -> dict[str, str]:
        """Each Table 1 column named by what runs: ``PGD20`` when PGD100 runs 20 steps, ``Square1K`` for
        1,000 queries (the training attack keeps its name, "PGD")."""
        q = self.square_queries
        square = f"Square{q // 1000}K" if q >= 1000 and q % 1000 == 0 else f"Square{q}"
        every = {"PGD": "PGD", "PGD100": f"PGD{self.pgd100_steps}", "APGD100-CE": f"APGD{self.apgd_steps}-CE",
                 "APGD100-DLR": f"APGD{self.apgd_steps}-DLR", "Square5K": square, "MultiTargeted": "MultiTargeted"}
        return {name: every[name] for name in self.attacks}

    def select(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The first ``n_examples`` examples (all when None)."""
        if self.n_examples is None:
            return x, y
        if self.n_examples > x.shape[0]:
            raise ParameterError("n_examples", self.n_examples, f"must be <= {x.shape[0]}, the test set size")
        return x[:self.n_examples], y[:self.n_examples]


@dataclass(frozen=True, eq=False)
class EvalResult:
    """Per-example outcomes on one model: bool masks (CPU) of misclassified examples, clean and per attack."""

    clean_wrong: Tensor
    wrong: dict[str, Tensor] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)   # wall time per attack (not reproducible)

    @property
    def n(self) -> int:
        return int(self.clean_wrong.numel())

    @property
    def worst_wrong(self) -> Tensor:
        """Broken by at least one attack, or misclassified clean."""
        out = self.clean_wrong.clone()
        for mask in self.wrong.values():
            out |= mask
        return out

    @property
    def clean_error(self) -> float:
        return _rate(self.clean_wrong)

    @property
    def robust_error(self) -> dict[str, float]:
        return {name: _rate(mask) for name, mask in self.wrong.items()}

    @property
    def worst_error(self) -> float:
        return _rate(self.worst_wrong)

    def row(self, percent: bool = True) -> dict[str, float]:
        """``{"Clean": .., <attack>: .., "Worst": ..}`` in % (or fractions)."""
        scale = 100.0 if percent else 1.0
        out = {"Clean": self.clean_error, **self.robust_error, "Worst": self.worst_error}
        return {k: scale * v for k, v in out.items()}


def _rate(mask: Tensor) -> float:
    return float(mask.float().mean()) if mask.numel() else float("nan")


def evaluate(model: nn.Module, x: Tensor, y: Tensor, suite: Mapping[str, AttackSpec | Attack],
             batch_size: int = 100, generator: torch.Generator | None = None, seed: int = 0,
             progress: bool = False) -> EvalResult:
    """Clean error and robust error under each attack of ``suite``, with per-example masks.

    The model runs in eval mode (its modes are restored), on its own device (x moves there batch by
    batch).  Randomness: each column's generator is derived from ``seed`` and the column name, or from
    one number drawn from ``generator`` when given.  The global torch RNG state is left unchanged.
    """
    if generator is not None:
        seed = draw_seed(generator)
    wrong, seconds = {}, {}
    clean = sweep(model, x, y, batch_size=batch_size).clean_wrong
    for name, attack in tqdm(suite.items(), disable=not progress, desc="attacks"):
        report(f"attack {name} on {len(x)} examples started")
        start = time.perf_counter()
        wrong[name] = sweep(model, x, y, attack, batch_size=batch_size, generator=purpose_generator(seed, name),
                            progress=progress).adv_wrong
        seconds[name] = time.perf_counter() - start
    return EvalResult(clean, wrong, seconds)


class Ensemble(nn.Module):
    """``forward(x) = log(mean_k softmax(f_k(x)))``: the members' averaged probabilities, in log space.

    Its softmax is the mean probability, so argmax and cross-entropy equal those of the original's
    probability average; attacks see one model.  Members must share a device.
    """

    def __init__(self, models: Sequence[nn.Module]):
        super().__init__()
        if len(models) == 0:
            raise ParameterError("models", models, "must hold at least one model")
        self.members = nn.ModuleList(models)

    def forward(self, x: Tensor) -> Tensor:
        log_probs = torch.stack([F.log_softmax(m(x), dim=1) for m in self.members])
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))
