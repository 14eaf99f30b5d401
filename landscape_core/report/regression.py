"""Notebook regression checks that hold on any CPU: words exactly, numbers within stated tolerances.

nbval replays each reference notebook and compares what it shows.  Compared to the last digit, a
printed number moves with the CPU's kernels, the thread count and the summation order (a smoke
notebook printed a local Lipschitz constant of 2.63 on an AMD EPYC where the reference, made on a Xeon,
says 2.62): so nbval compares the text with every number masked (``tests/sanitize.cfg`` replaces each
with ``<n>``: words, verdicts, table shapes, errors), and this module compares the numbers themselves,
each against its reference value within the tolerance of its *quantity*:

* a number's quantity is read from where it is printed: the column header of a Markdown table (with the
  row's first cell), or the words before it on its line (``local Lipschitz (test), AT eps=0.1: ascent``);
* :data:`RULES` maps quantities (regular expressions, first match wins) to a :class:`Tolerance`, each
  with the reason for its size; a number whose quantity no rule names gets :data:`DEFAULT`;
* every tolerance also allows one unit of the last printed digit (``2.62`` vs ``2.63``: a rounding flip).

The tolerances are set from what float noise does to the smoke study (``make test`` under 1 and 2
threads, PyTorch's scalar kernels and oneDNN's oldest ones, on an AMD EPYC and against references made on
a Xeon: README, "What the notebook checks compare") and from what a changed result is: a 5% change of a
local Lipschitz constant or of an eigenvalue, or one more error in 50 test points, is not noise.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

__all__ = ["Tolerance", "RULES", "DEFAULT", "NUMBER", "MASK", "Mismatch", "numbers", "tolerance_for",
           "compare_texts", "compare_outputs", "output_texts", "ERRORS"]

# A number as printed: not the digit of a name (conv1, fc2, lenet-2 is masked but compares equal),
# with an optional exponent.  ``nan`` and ``inf`` stay words: a value that becomes one is a change.
NUMBER = re.compile(r"(?<![A-Za-z_\d.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_\d])")
MASK = "<n>"


@dataclass(frozen=True)
class Tolerance:
    """``|new - reference| <= abs + rel * |reference|`` (plus one unit of the last printed digit); an
    error printed as a fraction (at most 1, no ``%``) gets ``fraction_abs`` instead of ``abs``."""

    abs: float = 0.0
    rel: float = 0.0
    why: str = ""
    fraction_abs: float | None = None

    def allowed(self, reference: float, unit: float = 0.0, fraction: bool = False) -> float:
        a = self.fraction_abs if fraction and self.fraction_abs is not None else self.abs
        return max(a, unit) + self.rel * abs(reference)

    def text(self, fraction: bool = False) -> str:
        a = self.fraction_abs if fraction and self.fraction_abs is not None else self.abs
        parts = ([f"abs {a:g}"] if a else []) + ([f"rel {100 * self.rel:g}%"] if self.rel else [])
        return " + ".join(parts) or "exact"


ERRORS = Tolerance(abs=4.0, fraction_abs=0.04, why=(
    "errors of 50-200 evaluation points (percent, or a fraction): the smoke models are on the initial "
    "plateau, where many points sit at a decision boundary and flip with the kernels' last digits "
    "(measured: up to 3 points between 1 and 2 threads and scalar kernels); more than 4 is a result"))

# Quantity (regular expression) -> tolerance.  A table cell is named by its column header (the first
# rule that matches it wins); a number in a line of text by the words before it (the rule whose match
# ends nearest the number wins: "L 2.85, clean 79.0%; L 2.71" reads the last L as a Lipschitz constant).
RULES: tuple[tuple[str, Tolerance], ...] = (
    (r"(?i)\berr(or)?s?\b|\bacc(uracy)?\b|%|\bspread\b|in [VT]_eps|fraction|^(clean|worst|grid worst|transfer)$"
     r"|^A?PGD|^Square|multi-targeted", ERRORS),         # Table 1's columns are errors named by their attack
    (r"(?i)lipschitz|\bL\b|ascent|released update", Tolerance(rel=0.02, why=(
        "local Lipschitz ratios, the best of 10 sign-gradient steps on 100 points: measured to move by up "
        "to 1.1% between CPUs, thread counts and kernel paths; a 5% change is a result"))),
    (r"(?i)HVP|passes|iterations", Tolerance(rel=1.0, why=(
        "solver work (Lanczos matrix-vector products): how fast it converged, not what it found"))),
    (r"(?i)eigen|trace|density|\btop\b|normalised|hessian|spectrum", Tolerance(rel=0.3, abs=1e-3, why=(
        "Hessian quantities of the smoke models: the eps = 0.4 model is on the plateau, its fixed "
        "adversarial set comes from PGD steps on near-zero gradients, and its top eigenvalue and trace moved "
        "by up to 13% and 18% between kernel paths; a wrong Hessian (a factor, a sign) still fails"))),
    (r"Cosine|(?i:cosine sim)", Tolerance(abs=0.02, why=(
        "mean cosine similarities in [-1, 1] of 100-200 perturbations: measured to move by < 0.005"))),
    (r"(?i)\brho\b|correlation|spearman", Tolerance(abs=1.0, why=(
        "rank correlations over 3-9 values: one swap of two near-equal values moves rho by 0.5; the values "
        "are checked on their own, the verdict the rho decides is compared as a word"))),
    (r"(?i)\bshare\b", Tolerance(abs=0.2, why=(
        "the share of a few late updates whose gradient norm exceeds a threshold (smoke: 6 updates): one update "
        "crossing it moves the share by 0.17; the verdict it decides is compared as a word"))),
    (r"(?i)\branks\b", Tolerance(abs=100.0, why=(
        "how many eigenvalue ranks pass a trend test: a count of verdicts, compared as the claim's verdict"))),
    (r"(?i)\bdrop\b", Tolerance(abs=0.03, why=(
        "a drop of a mean cosine similarity (two means, each measured to move by < 0.005 on 100-200 points) "
        "taken at its deepest a, which the noise can move to a neighbouring a"))),
    (r"(?i)\bratio\b", Tolerance(rel=0.07, abs=1e-3, why=(
        "a ratio of two quantities each allowed 2-3%"))),
    (r"(?i)\brise\b", Tolerance(rel=0.1, abs=0.02, why=(
        "the largest rise of a loss over a grid: a difference of two losses, whose relative noise is larger"))),
    (r"(?i)grad|norm|\|\|", Tolerance(rel=0.03, abs=1e-3, why=(
        "gradient and weight norms of short trainings, printed to 3 digits"))),
    (r"(?i)loss|barrier", Tolerance(rel=0.03, abs=1e-3, why="mean losses and loss barriers, 3-4 digits")),
    (r"(?i)\bs\b|seconds|\bmin\b|elapsed|time|per epoch", Tolerance(rel=10.0, abs=1e9, why=(
        "wall-clock times say nothing about results"))),
)
DEFAULT = Tolerance(rel=0.02, abs=1e-3, why=(
    "any other printed number (parameters, counts, derived ratios): 2% covers float noise in 3 printed "
    "digits; parameters and counts are equal"))


def tolerance_for(quantity: str, table: bool = True) -> Tolerance:
    """The tolerance of a quantity: the first rule that matches a table header; for the words before a
    number in text, the rule whose last match ends nearest the number."""
    if table:
        return next((tol for pattern, tol in RULES if re.search(pattern, quantity)), DEFAULT)
    best, end = DEFAULT, -1
    for pattern, tol in RULES:
        ends = [m.end() for m in re.finditer(pattern, quantity)]
        if ends and ends[-1] > end:
            best, end = tol, ends[-1]
    return best


@dataclass(frozen=True)
class Number:
    value: float
    text: str
    quantity: str           # what it is: table column and row, or the words before it
    table: bool = False     # a table cell (the quantity's header names it) or a number in text
    percent: bool = False   # an error in percent: a % sign after it, or a "mean(std)" cell

    @property
    def unit(self) -> float:
        """One unit of the last printed digit (``2.62`` -> 0.01, ``1.2e-03`` -> 1e-04, ``35`` -> 1)."""
        mantissa, _, exponent = self.text.lower().lstrip("+-").partition("e")
        decimals = len(mantissa.partition(".")[2])
        return 10.0 ** (-decimals + (int(exponent) if exponent else 0))

    @property
    def tolerance(self) -> Tolerance:
        if self.percent:
            return ERRORS
        header = self.quantity.partition(" [")[0] if self.table else self.quantity
        return tolerance_for(header, self.table)

    @property
    def fraction(self) -> bool:
        """An error printed as a fraction, not in percent."""
        return self.tolerance is ERRORS and not self.percent and "%" not in self.quantity and abs(self.value) <= 1


def _cells(line: str) -> list[str]:
    line = line.strip()
    line = line[1:] if line.startswith("|") else line
    line = line[:-1] if line.endswith("|") else line
    return [c.strip() for c in line.split("|")]


def numbers(text: str) -> list[Number]:
    """Every number of ``text`` with its quantity (see the module's docstring).  A table is a block of
    lines with ``|`` (Markdown or aligned columns); its first line is the header, and a number in a
    cell is named by its column's header and the row's first two cells."""
    out: list[Number] = []
    header: list[str] | None = None
    for line in text.splitlines():
        in_table = line.strip().startswith("|") or " | " in line
        cells = _cells(line) if in_table else None
        if not in_table:
            header = None
        elif header is None or len(cells) != len(header):        # a new table starts
            header = cells
        table_row = in_table and cells is not header
        for m in NUMBER.finditer(line):
            if table_row:
                col = min(line[:m.start()].lstrip().lstrip("|").count("|"), len(header) - 1)
                # the row's label: its first cell, and its second where that is a budget (eps, a)
                label = [c for i, c in enumerate(cells[:col]) if i == 0 or (i == 1 and header[1] in ("eps", "a"))]
                label = " | ".join(c for c in label if c)
                # words before the number inside its cell name it better than the header:
                # "end of training: on the plateau (robust train err" is an error
                start = line.rfind("|", 0, m.start()) + 1
                words = line[start:m.start()].strip()
                name = f"{header[col]}: {words}" if re.search(r"[A-Za-z]{2}", words) else header[col]
                quantity = name + (f" [{label}]" if label else "")
            else:
                quantity = line[max(0, m.start() - 200):m.start()].strip() or line.strip()[:60]
            # an error: printed with %, or a Table 1 / Fig 5 cell "mean(std)" (both parts; every such cell is one)
            after, before = line[m.end():m.end() + 2], line[max(0, m.start() - 2):m.start()]
            percent = after[:1] == "%" or re.fullmatch(r"\(\d", after) is not None or \
                re.fullmatch(r"\d\(", before) is not None
            out.append(Number(float(m.group()), m.group(), quantity, table_row, percent))
    return out


@dataclass(frozen=True)
class Mismatch:
    where: str
    quantity: str
    reference: str
    new: str
    tolerance: Tolerance
    allowed: float
    fraction: bool = False

    def __str__(self) -> str:
        return (f"{self.where}: '{self.quantity}' is {self.new}, reference {self.reference} "
                f"(allowed +-{self.allowed:.3g}: {self.tolerance.text(self.fraction)}, or one unit of the last "
                f"digit; {self.tolerance.why})")


def _masked(text: str) -> str:
    return NUMBER.sub(MASK, text)


def compare_texts(reference: str, new: str, where: str) -> list[Mismatch]:
    """The numbers of ``new`` against those of ``reference``, whose masked texts must be equal (nbval
    checks that; here a difference of shape is reported as one mismatch)."""
    if _masked(reference) != _masked(new):
        return [Mismatch(where, "the text around the numbers", _masked(reference)[:200], _masked(new)[:200],
                         Tolerance(why="words and table shapes are compared exactly"), 0.0)]
    bad = []
    for ref, cur in zip(numbers(reference), numbers(new)):
        tol = ref.tolerance
        allowed = tol.allowed(ref.value, ref.unit, ref.fraction)
        diff = abs(cur.value - ref.value)
        if not math.isfinite(diff) or diff > allowed * (1 + 1e-9):
            bad.append(Mismatch(where, ref.quantity, ref.text, cur.text, tol, allowed, ref.fraction))
    return bad


def output_texts(outputs: Iterable[Mapping]) -> list[str]:
    """The compared texts of a cell's outputs: streams (joined per stream, as nbval does) and text
    representations; images are not compared."""
    streams: dict[str, str] = {}
    texts: list[str] = []
    for o in outputs:
        if o.get("output_type") == "stream":
            streams[o.get("name", "stdout")] = streams.get(o.get("name", "stdout"), "") + _text(o.get("text", ""))
        elif "data" in o:
            for kind in ("text/plain", "text/markdown", "text/html"):
                if kind in o["data"]:
                    texts.append(_text(o["data"][kind]))
        elif o.get("output_type") == "error":
            texts.append(f"{o.get('ename')}: {o.get('evalue')}")
    return [streams[k] for k in sorted(streams)] + texts


def _text(value) -> str:
    return "".join(value) if isinstance(value, (list, tuple)) else str(value)


def compare_outputs(reference: Sequence[Mapping], new: Sequence[Mapping], where: str) -> list[Mismatch]:
    """A cell's outputs against its reference's: every number within its quantity's tolerance."""
    ref, cur = output_texts(reference), output_texts(new)
    if len(ref) != len(cur):
        return [Mismatch(where, "the number of outputs", str(len(ref)), str(len(cur)), Tolerance(why="exact"), 0.0)]
    return [m for a, b in zip(ref, cur) for m in compare_texts(a, b, where)]
