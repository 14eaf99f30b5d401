"""The catalogue's rule type, its registry, the two regimes' wording and the helpers every section's rules
share (the trend test, the rounding of printed numbers). See the package's docstring."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from ...analysis.dynamics import CONVERGED_FRACTION, TRAINED_FRACTION_OF_CHANCE, Health
from ...analysis.stats import rank_correlation

__all__ = ["Outcome", "Rule", "CATALOGUE", "KINDS", "TREND_RHO", "TRAINED", "CONVERGED", "rule", "in_regime", "every", "fmt",
           "fmt_list", "trend"]

KINDS = ("paper", "check")
LIU = "Liu et al. 2020"
YANG = "Yang et al. 2020"
TREND_RHO = 0.9     # a monotone trend: Spearman |rho| >= 0.9 (with five budgets: at most one adjacent swap)
TRAINED = (f"trained: not a constant classifier, robust training error over the last epoch <= "
           f"{TRAINED_FRACTION_OF_CHANCE:g} x chance")
CONVERGED = (f"converged: trained, and at the end of training at the target budget the robust training error "
             f"moved by at most {CONVERGED_FRACTION:.0%} of its whole fall from chance (the learning curve has "
             f"flattened)")


@dataclass(frozen=True)
class Outcome:
    """What a rule found: ``holds``, the numbers (rounded, stable text), and whether the premise of its
    regime held (``premise`` False: "untestable at this scale", ``why`` gives the numbers)."""

    holds: bool
    measured: str
    premise: bool = True
    why: str = ""


@dataclass(frozen=True)
class Rule:
    key: str
    claim: str          # what is claimed, in a line
    source: str         # where: paper, section / figure / table
    sentence: str       # the source's words, quoted
    test: str           # the rule applied to the numbers
    regime: str         # what the models must be for the verdict to say something
    calibration: str    # the published numbers it was calibrated on and why its thresholds, or why none
    kind: str
    fn: Callable[..., Outcome]

    def __call__(self, *args, **kwargs) -> Outcome:
        return self.fn(*args, **kwargs)


CATALOGUE: dict[str, Rule] = {}


def rule(key: str, *, claim: str, source: str, sentence: str, test: str, calibration: str,
         regime: str = "none: the claim is about the data or exact mathematics", kind: str = "paper"):
    assert kind in KINDS and key not in CATALOGUE
    def register(fn):
        CATALOGUE[key] = Rule(key, claim, source, sentence, test, regime, calibration, kind, fn)
        return fn
    return register


# ----------------------------------------------------------------------------------------------- helpers

def fmt(value, digits: int = 3) -> str:
    """Round for printing: fixed significant digits, no numpy reprs (nbval compares text)."""
    if value is None:
        return "n/a"
    value = float(value)
    if value != value:
        return "nan"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.{digits}g}" if abs(value) >= 1 else f"{value:.{digits}f}"
    return f"{value:.{max(digits - 1, 1)}e}"


def fmt_list(values, digits: int = 3) -> str:
    return "[" + ", ".join(fmt(v, digits) for v in values) + "]"


def in_regime(models: Mapping, level: str) -> tuple[list, str]:
    """The keys of ``models`` (key -> Health) that are ``level`` ("trained" or "converged"), and the
    others' states in words."""
    ok = [k for k, h in models.items() if (h.converged if level == "converged" else h.trained)]
    off = "; ".join(f"{_label(k)}: {h.final_stage() if level == 'converged' else h.state()}"
                    for k, h in models.items() if k not in ok)
    return ok, off


def every(health: Mapping | None, level: str) -> tuple[bool, str]:
    """Whether every model of ``health`` (label -> Health; None: no models to check) is ``level``, and the
    others' states in words: the premise of a rule whose models must all be in its regime."""
    if health is None:
        return True, ""
    ok, why = in_regime(health, level)
    return len(ok) == len(health), why


def _label(k) -> str:
    return f"eps={k:g}" if isinstance(k, (int, float)) else str(k)


def trend(x: Sequence[float], values: Sequence[float], direction: int, what: str,
           health: Mapping[float, Health] | None, level: str, min_points: int = 3) -> Outcome:
    """A monotone trend over the budgets ``x`` whose models are in ``level`` (all, without ``health``)."""
    keep = [i for i, e in enumerate(x) if health is None or e in in_regime({e: health[e]}, level)[0]]
    xs, vs = [x[i] for i in keep], [values[i] for i in keep]
    r = rank_correlation(xs, vs) if len(xs) >= 2 else float("nan")
    text = f"{what} {fmt_list(vs)}" + (f"; rho {r:.2f}" if r == r else "")
    if len(keep) < len(x):
        text += f" (over eps {fmt_list(xs, 2)} only)"
    premise = len(keep) >= min_points
    if premise:
        why = ""
    elif health is None:
        why = f"{len(x)} budgets: a trend needs at least {min_points}"
    else:
        why = in_regime({e: health[e] for e in x}, level)[1] or f"{len(keep)} budgets in regime, {min_points} needed"
    return Outcome(r >= TREND_RHO if direction > 0 else r <= -TREND_RHO, text, premise, why)


TREND_TEST = f"Spearman rho(eps, {{}}) {{}} {TREND_RHO} over the budgets"
TREND_WHY = (f"no published numbers (figures only); |rho| >= {TREND_RHO}: a monotone trend with at most one "
             "adjacent swap among five budgets (with three or four in regime: a strict order)")
