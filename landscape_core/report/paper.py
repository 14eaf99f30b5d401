"""The paper's Table 1, its mean(std) format, and our rows set beside it."""
from __future__ import annotations

import math
from typing import Any, Mapping

from ..analysis.robustness import CIFAR_LIKE, MNIST_LIKE, TABLE1_COLUMNS
from ..core.spec import ParameterError

__all__ = ["paper_format", "parse_paper_format", "PAPER_TASKS", "PAPER_TABLE1", "paper_row", "paper_task",
           "compare_with_paper", "paper_table1_means", "PAPER_PERTURBATION", "PAPER_FIG5"]


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


def paper_table1_means(task: str) -> dict[tuple[bool, str], dict[str, float]]:
    """One task of Table 1 as the claim rules read it: (periodic lr, scheduler) -> column -> mean (%)."""
    return {(p, s.lower()): {c: v[0] for c, v in cols.items()} for (t, p, s), cols in PAPER_TABLE1.items()
            if t == task}


# Copied from the slides (Liu et al., NeurIPS 2020 talk, "Hessian Analysis"): the average cosine similarity
# of the training-set perturbations of theta + a v and theta - a v, and the test error (%) there, for v the
# top Hessian eigenvector or a random unit vector. Rows: a, then (cosine, test error) per eps.
_PERTURBATION_TEXT = {
    "mnist_lenet": ((0.1, 0.2, 0.3, 0.4), """
Eigenvector 0.00 0.861 3.34 0.837 6.72 0.918 6.94 0.928 8.74
Eigenvector 0.01 0.847 3.36 0.823 6.83 0.241 7.48 0.188 15.9
Eigenvector 0.03 0.812 3.42 0.789 7.07 0.236 9.19 0.282 31.4
Eigenvector 0.05 0.779 3.53 0.757 7.66 0.274 11.2 0.375 44.6
Eigenvector 0.10 0.705 4.20 0.683 10.4 0.367 19.1 0.455 99.3
Random      0.00 0.861 3.34 0.837 6.72 0.918 6.94 0.928 8.74
Random      0.01 0.860 3.34 0.837 6.71 0.913 6.99 0.906 8.80
Random      0.03 0.861 3.34 0.837 6.72 0.888 6.99 0.818 8.65
Random      0.05 0.860 3.35 0.837 6.69 0.863 6.94 0.745 8.49
Random      0.10 0.860 3.35 0.837 6.67 0.780 6.82 0.653 8.90
"""),
    "cifar10_resnet18": ((2 / 255, 4 / 255, 8 / 255), """
Eigenvector 0.0 0.976 27.0 0.962 42.1 0.945 58.6
Eigenvector 0.1 0.471 28.0 0.475 43.7 0.461 61.3
Eigenvector 0.3 0.148 34.2 0.157 49.9 0.140 70.2
Eigenvector 0.5 0.075 44.1 0.078 63.1 0.069 83.9
Eigenvector 1.0 0.050 79.0 0.046 88.4 0.034 89.0
Random      0.0 0.976 27.0 0.962 42.1 0.945 58.6
Random      0.1 0.975 27.1 0.962 42.1 0.945 58.6
Random      0.3 0.973 27.1 0.960 42.1 0.944 58.6
Random      0.5 0.968 27.1 0.957 42.1 0.942 58.7
Random      1.0 0.955 27.1 0.946 42.1 0.935 58.6
""")}


def _parse_perturbation(eps: tuple, text: str) -> dict[float, dict[str, dict[float, tuple[float, float]]]]:
    out: dict = {e: {} for e in eps}
    for line in text.strip().splitlines():
        direction, a, *cells = line.split()
        for i, e in enumerate(eps):
            out[e].setdefault(direction, {})[float(a)] = (float(cells[2 * i]), float(cells[2 * i + 1]))
    return out


# task -> eps -> "Eigenvector" / "Random" -> a -> (cosine similarity, test error %)
PAPER_PERTURBATION = {task: _parse_perturbation(*v) for task, v in _PERTURBATION_TEXT.items()}

# Copied from the slides ("Insensitive to learning rate choice"): mean (std) robust test error (%) of LeNet
# models at eps = 0.4 after 100 epochs of Adam, per learning rate and scheduler (88.65: a constant classifier).
PAPER_FIG5 = {"constant": {1e-4: (8.58, 0.89), 3e-4: (88.65, 0.0), 1e-3: (88.65, 0.0)},
              "cosine": {1e-4: (6.64, 0.70), 3e-4: (7.44, 0.52), 1e-3: (9.62, 0.83)},
              "linear": {1e-4: (6.69, 0.59), 3e-4: (7.48, 0.11), 1e-3: (7.48, 0.15)}}


def paper_row(task: str, periodic: bool, scheduler: str) -> dict[str, tuple[float, float]]:
    """The paper's Table 1 row; ``task`` in :data:`PAPER_TASKS`, scheduler Constant / Cosine / Linear."""
    key = (task, periodic, scheduler.capitalize())
    if key not in PAPER_TABLE1:
        known = sorted({(t, p, s) for t, p, s in PAPER_TABLE1})
        raise ParameterError("row", (task, periodic, scheduler), f"must be one of {known}")
    return PAPER_TABLE1[key]


def paper_task(dataset: str, arch: str) -> str | None:
    """The Table 1 task of a data set and architecture (None when the paper has no such row)."""
    if dataset in MNIST_LIKE and arch == "lenet":
        return "mnist_lenet"
    if dataset in CIFAR_LIKE and arch in ("vgg16", "resnet18"):
        return {"vgg16": "cifar10_vgg", "resnet18": "cifar10_resnet18"}[arch]
    return None


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
