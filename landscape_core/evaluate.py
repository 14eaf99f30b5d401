"""Robust evaluation for Table 1 of Liu et al. 2020 (Sec. 5): attack suite, worst case, ensembles, tables.

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
* :class:`Ensemble` and :func:`evaluate_members_and_ensemble` for periodic adversarial scheduling (PAS),
  whose CIFAR10 results use the ensemble of the three period-end models;
* :func:`mean_std`, :func:`paper_format`, :data:`PAPER_TABLE1`, :func:`results_table`,
  :func:`write_table` and :func:`compare_with_paper` to build Table 1 and set it beside the paper's.

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

import csv
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attacks import Attack, AttackSpec, make_attack, model_mode, robust_predictions
from .data import purpose_generator
from .io import atomic_write_text
from .spec import ParameterError, Spec, param

__all__ = ["TABLE1_ATTACKS", "TABLE1_COLUMNS", "EvalSuite", "EvalSpec", "paper_attacks", "EvalResult",
           "evaluate", "Ensemble", "evaluate_members_and_ensemble", "mean_std", "paper_format",
           "parse_paper_format", "PAPER_TASKS", "PAPER_TABLE1", "paper_row", "results_table", "format_table",
           "write_table", "read_table", "compare_with_paper"]

TABLE1_ATTACKS = ("PGD", "PGD100", "APGD100-CE", "APGD100-DLR", "Square5K")
TABLE1_COLUMNS = ("Clean",) + TABLE1_ATTACKS
EvalSuite = dict[str, AttackSpec]   # ordered: column name -> attack

MNIST_LIKE = ("mnist5k", "mnist", "fashionmnist")
CIFAR_LIKE = ("cifar10",)


# ---------------------------------------------------------------------------------------------------
# the attack suite
# ---------------------------------------------------------------------------------------------------
def _paper_train_attack(dataset: str, eps: float) -> AttackSpec:
    """The paper's training PGD: MNIST 50 steps of 0.01, CIFAR10 10 steps of 2/255."""
    if dataset in MNIST_LIKE:
        return AttackSpec(name="pgd", eps=eps, steps=50, step_size=0.01)
    return AttackSpec(name="pgd", eps=eps, steps=10, step_size=2 / 255)


def paper_attacks(dataset: str, eps: float, train_attack: AttackSpec | None = None, *,
                  attacks: Sequence[str] = TABLE1_ATTACKS, pgd100_steps: int = 100,
                  pgd100_step_size: float | None = None, apgd_steps: int = 100, apgd_restarts: int = 5,
                  square_queries: int = 5000) -> EvalSuite:
    """The Table 1 attacks at budget ``eps``, in column order (a subset via ``attacks``).

    ``train_attack``: the attack the model was trained with (None: the paper's for ``dataset``); the
    "PGD" column runs it at ``eps`` with its own step size, steps, restarts and random start.  PGD100's
    step defaults to 0.01 (MNIST-like data) or 1/255 (CIFAR10).  The keyword arguments shrink the suite
    for the smoke/quick profiles; the column names stay those of the paper.
    """
    if dataset not in MNIST_LIKE + CIFAR_LIKE:
        raise ParameterError("dataset", dataset, f"must be one of {list(MNIST_LIKE + CIFAR_LIKE)}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise ParameterError("eps", eps, "must be a number > 0")
    for name in attacks:
        if name not in TABLE1_ATTACKS:
            raise ParameterError("attacks", name, f"each must be one of {list(TABLE1_ATTACKS)}")
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
    }
    return {name: every[name] for name in attacks}


@dataclass(frozen=True)
class EvalSpec(Spec):
    """How a notebook evaluates its models (the budget eps comes from the training spec)."""

    attacks: tuple[str, ...] = param(TABLE1_ATTACKS, each=dict(choices=TABLE1_ATTACKS),
                                     doc="Table 1 columns to run, in this order")
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

    def select(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The first ``n_examples`` examples (all when None)."""
        if self.n_examples is None:
            return x, y
        if self.n_examples > x.shape[0]:
            raise ParameterError("n_examples", self.n_examples, f"must be <= {x.shape[0]}, the test set size")
        return x[:self.n_examples], y[:self.n_examples]


# ---------------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------------
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


def _model_device(model: nn.Module) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ParameterError("batch_size", batch_size, "must be an integer >= 1")


@torch.no_grad()
def clean_wrong(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 100) -> Tensor:
    """Bool mask (CPU) of the examples the model (in eval mode, restored after) misclassifies."""
    _check_batch_size(batch_size)
    device = _model_device(model)
    out = []
    with model_mode(model, "eval"):
        for start in range(0, x.shape[0], batch_size):
            xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
            out.append((model(xb).argmax(1) != yb).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)


def evaluate(model: nn.Module, x: Tensor, y: Tensor, suite: Mapping[str, AttackSpec | Attack],
             batch_size: int = 100, generator: torch.Generator | None = None, seed: int = 0,
             progress: bool = False) -> EvalResult:
    """Clean error and robust error under each attack of ``suite``, with per-example masks.

    The model runs in eval mode (its modes are restored), on its own device (x moves there batch by
    batch).  Randomness: each column's generator is derived from ``seed`` and the column name, or from
    one number drawn from ``generator`` when given.  The global torch RNG state is left unchanged.
    """
    from tqdm.auto import tqdm

    _check_batch_size(batch_size)
    if x.shape[0] != y.shape[0]:
        raise ParameterError("y", tuple(y.shape), f"must hold one label per input ({x.shape[0]})")
    if generator is not None:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    attacks = {name: make_attack(a) if isinstance(a, AttackSpec) else a for name, a in suite.items()}
    wrong, seconds = {}, {}
    clean = clean_wrong(model, x, y, batch_size)
    for name, attack in tqdm(attacks.items(), disable=not progress, desc="attacks"):
        start = time.perf_counter()
        _, mask = robust_predictions(model, x, y, attack, batch_size, generator=purpose_generator(seed, name),
                                     progress=progress)
        wrong[name] = mask.cpu()
        seconds[name] = time.perf_counter() - start
    return EvalResult(clean, wrong, seconds)


# ---------------------------------------------------------------------------------------------------
# ensembles (periodic adversarial scheduling)
# ---------------------------------------------------------------------------------------------------
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


def evaluate_members_and_ensemble(models: Sequence[nn.Module], x: Tensor, y: Tensor,
                                  suite: Mapping[str, AttackSpec | Attack], batch_size: int = 100,
                                  seed: int = 0, progress: bool = False) -> dict[str, EvalResult]:
    """``{"member_1": .., ..., "member_K": .., "ensemble": ..}``: each model alone, then the ensemble.

    Every entry is evaluated with the same ``seed``, so the members are attacked alike.
    """
    out = {f"member_{i + 1}": evaluate(m, x, y, suite, batch_size, seed=seed, progress=progress)
           for i, m in enumerate(models)}
    out["ensemble"] = evaluate(Ensemble(models), x, y, suite, batch_size, seed=seed, progress=progress)
    return out


# ---------------------------------------------------------------------------------------------------
# mean(std) over runs, the paper's format and its Table 1
# ---------------------------------------------------------------------------------------------------
def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1) of the runs; std 0 for a single run."""
    vals = [float(v) for v in values]
    if not vals:
        raise ParameterError("values", values, "must hold at least one number")
    mean = sum(vals) / len(vals)
    if len(vals) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))


def paper_format(mean: float, std: float | None = None, decimals: int = 2) -> str:
    """``1.56, 0.17 -> "1.56(17)"``: std in units of the mean's last digit, as in Table 1."""
    text = f"{mean:.{decimals}f}"
    if std is None or math.isnan(float(std)):
        return text
    std = float(std)
    if std < 0:
        raise ParameterError("std", std, "must be >= 0")
    return f"{text}({math.floor(std * 10 ** decimals + 0.5 + 1e-9)})"


def parse_paper_format(text: str) -> tuple[float, float]:
    """``"10.86(143)" -> (10.86, 1.43)``: the inverse of :func:`paper_format`."""
    head, _, tail = text.strip().partition("(")
    if not tail.endswith(")"):
        raise ParameterError("text", text, "must look like 1.56(17)")
    decimals = len(head.partition(".")[2])
    return float(head), round(int(tail[:-1]) * 10.0 ** -decimals, decimals)


PAPER_TASKS = {"mnist_lenet": "MNIST LeNet eps=0.4", "cifar10_vgg": "CIFAR10 VGG eps=8/255",
               "cifar10_resnet18": "CIFAR10 ResNet18 eps=8/255"}

# Copied from Table 1 of the paper (task, periodic learning rate, eps scheduler, then TABLE1_COLUMNS).
_TABLE1_TEXT = """
mnist_lenet       No   Constant 1.56(17)   8.58(89)   10.86(143) 15.18(155) 14.70(136) 19.58(45)
mnist_lenet       No   Cosine   1.08(2)    6.64(70)   8.46(82)   14.36(134) 13.46(129) 16.78(25)
mnist_lenet       No   Linear   1.06(6)    6.69(59)   8.79(116)  13.91(150) 13.17(120) 17.05(47)
cifar10_vgg       No   Constant 28.25(47)  56.22(43)  56.19(32)  58.18(46)  58.65(69)  54.37(29)
cifar10_vgg       No   Cosine   25.06(19)  56.06(48)  56.00(42)  57.83(45)  58.88(16)  53.95(15)
cifar10_vgg       No   Linear   23.56(95)  56.09(14)  55.88(5)   57.74(16)  58.39(18)  53.66(24)
cifar10_vgg       Yes  Constant 28.33(81)  54.24(28)  54.16(26)  55.45(26)  56.56(4)   52.85(18)
cifar10_vgg       Yes  Cosine   23.91(21)  53.18(21)  53.10(18)  54.44(16)  55.80(24)  51.41(37)
cifar10_vgg       Yes  Linear   21.88(33)  53.03(14)  52.97(17)  54.32(17)  55.63(17)  51.28(4)
cifar10_resnet18  No   Constant 18.62(6)   55.00(8)   54.97(9)   57.26(13)  56.60(25)  50.59(19)
cifar10_resnet18  No   Cosine   18.43(26)  53.95(23)  53.85(21)  56.16(18)  55.77(24)  49.60(18)
cifar10_resnet18  No   Linear   18.55(14)  53.46(20)  53.41(10)  55.69(17)  55.45(22)  49.66(28)
cifar10_resnet18  Yes  Constant 21.00(5)   48.98(25)  48.87(25)  50.29(27)  50.98(6)   46.84(9)
cifar10_resnet18  Yes  Cosine   19.90(18)  48.57(25)  48.49(27)  49.71(22)  50.54(9)   46.19(11)
cifar10_resnet18  Yes  Linear   20.26(28)  48.60(13)  48.52(13)  49.73(9)   50.68(11)  46.47(26)
"""


def _parse_table1(text: str) -> dict[tuple[str, bool, str], dict[str, tuple[float, float]]]:
    table = {}
    for line in text.strip().splitlines():
        task, periodic, scheduler, *cells = line.split()
        table[(task, periodic == "Yes", scheduler)] = dict(zip(TABLE1_COLUMNS, map(parse_paper_format, cells)))
    return table


# (task id, periodic learning rate, scheduler) -> column -> (mean %, std %)
PAPER_TABLE1: dict[tuple[str, bool, str], dict[str, tuple[float, float]]] = _parse_table1(_TABLE1_TEXT)


def paper_row(task: str, periodic: bool, scheduler: str) -> dict[str, tuple[float, float]]:
    """The paper's Table 1 row; ``task`` in :data:`PAPER_TASKS`, scheduler Constant / Cosine / Linear."""
    key = (task, periodic, scheduler.capitalize())
    if key not in PAPER_TABLE1:
        known = sorted({(t, p, s) for t, p, s in PAPER_TABLE1})
        raise ParameterError("row", (task, periodic, scheduler), f"must be one of {known}")
    return PAPER_TABLE1[key]


# ---------------------------------------------------------------------------------------------------
# tables over runs
# ---------------------------------------------------------------------------------------------------
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def results_table(rows: Sequence[Mapping[str, Any]], seed_key: str = "seed") -> list[dict[str, Any]]:
    """Aggregate one row per run into one row per setting: mean and std (ddof 1) over the runs.

    Non-numeric values (strings, booleans, None) name the setting and group the rows (groups keep
    their first appearance's order); numeric values are metrics; ``seed_key`` is neither.  Each output
    row holds the setting, ``runs`` and ``<metric>_mean`` / ``<metric>_std`` for every metric.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        key = tuple((k, v) for k, v in row.items() if k != seed_key and not _is_number(v))
        groups.setdefault(key, []).append(row)
    out = []
    for key, members in groups.items():
        metrics = [k for k, v in members[0].items() if k != seed_key and _is_number(v)]
        agg: dict[str, Any] = dict(key)
        agg["runs"] = len(members)
        for m in metrics:
            agg[f"{m}_mean"], agg[f"{m}_std"] = mean_std([r[m] for r in members])
        out.append(agg)
    return out


def format_table(rows: Sequence[Mapping[str, Any]], decimals: int = 2) -> list[dict[str, Any]]:
    """Collapse each ``<m>_mean`` / ``<m>_std`` pair into one ``<m>`` cell "mean(std)"; floats rounded."""
    out = []
    for row in rows:
        new: dict[str, Any] = {}
        for k, v in row.items():
            if k.endswith("_std") and f"{k[:-4]}_mean" in row:
                continue
            if k.endswith("_mean") and f"{k[:-5]}_std" in row:
                new[k[:-5]] = paper_format(v, row[f"{k[:-5]}_std"], decimals)
            elif isinstance(v, float):
                new[k] = f"{v:.{decimals}f}"
            else:
                new[k] = v
        out.append(new)
    return out


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: dict[str, None] = {}
    for row in rows:
        cols.update(dict.fromkeys(row))
    return list(cols)


def _markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    cols = _columns(rows)

    def cell(v):
        return "" if v is None else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, cols)) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(rows: Sequence[Mapping[str, Any]], path_stem: str | Path, decimals: int = 2) -> None:
    """Write ``<path_stem>.csv`` (values as given, full precision) and ``<path_stem>.md`` (formatted by
    :func:`format_table`), each atomically.  Returns nothing, so a notebook cell shows no path."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(f"{path_stem}.csv", buf.getvalue())
    atomic_write_text(f"{path_stem}.md", _markdown(format_table(rows, decimals)))


def _parse_cell(text: str) -> Any:
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """Read a CSV written by :func:`write_table` back (numbers, booleans and empty cells restored)."""
    with open(path, newline="") as fh:
        return [{k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _cell(row: Mapping[str, Any], col: str) -> tuple[float, float | None] | None:
    """A row's value for ``col``: (mean, std) from ``col_mean``/``col_std``, a pair, or a single number."""
    if f"{col}_mean" in row:
        return float(row[f"{col}_mean"]), row.get(f"{col}_std")
    v = row.get(col)
    if v is None:
        return None
    if isinstance(v, (tuple, list)):
        return float(v[0]), float(v[1])
    return float(v), None


def compare_with_paper(row: Mapping[str, Any], task: str, periodic: bool, scheduler: str,
                       label: str = "ours", decimals: int = 2) -> str:
    """Text table: our row (a :func:`results_table` row, an :meth:`EvalResult.row`, or column -> value
    or (mean, std), all in %) above the paper's matching Table 1 row, column by column."""
    paper = paper_row(task, periodic, scheduler)
    ours = []
    for col in TABLE1_COLUMNS:
        c = _cell(row, col)
        ours.append("-" if c is None else paper_format(c[0], c[1], decimals))
    theirs = [paper_format(*paper[col]) for col in TABLE1_COLUMNS]
    head = f"{PAPER_TASKS[task]}, periodic lr {'Yes' if periodic else 'No'}, {scheduler.capitalize()}"
    width = max(len(label), len("paper"))
    cols = [max(len(h), len(a), len(b)) for h, a, b in zip(TABLE1_COLUMNS, ours, theirs)]
    lines = [head, " " * width + "  " + "  ".join(h.rjust(w) for h, w in zip(TABLE1_COLUMNS, cols))]
    for name, cells in ((label, ours), ("paper", theirs)):
        lines.append(name.ljust(width) + "  " + "  ".join(c.rjust(w) for c, w in zip(cells, cols)))
    return "\n".join(lines)
