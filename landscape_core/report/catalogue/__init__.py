"""The catalogue of claims: every sentence of the sources that the study tests, as a named rule.

A rule is a pure function from measured numbers (small typed tables: mappings of floats, and the
:class:`~landscape_core.analysis.dynamics.Health` of the models behind them) to an :class:`Outcome`. It
carries its source (section, figure or table) and the sentence, quoted; the regime its models must be in,
declared with it before any result is read; and, where the sources publish the numbers it reads, how it was
calibrated on them (``tests/test_catalogue.py`` feeds the paper's numbers and a counterfactual to each).

Two kinds: ``paper`` rules test what Liu et al. (2020) or Yang et al. (2020) state; ``check`` rules are
ours (attack sanity, gradient-masking flags, our implementation against a closed form, Garipov's curve
beating the line): they say whether our measurements can be trusted, and are counted apart.

One module per part of the study: ``linear`` (01), ``training`` (02, 03), ``landscape`` (04, 06),
``schedules`` (05), ``lipschitz`` (07); ``base`` holds the rule type and the regimes' helpers.
Notebooks call ``claims.test(key, ...)`` (:class:`~landscape_core.report.claims.Claims`) with the
arguments of the rule's function.
"""
from __future__ import annotations

from . import landscape, linear, lipschitz, schedules, training  # noqa: F401  (each registers its rules)
from .base import CATALOGUE, KINDS, TREND_RHO, Outcome, Rule, fmt, fmt_list, in_regime
from .schedules import table1_means

__all__ = ["CATALOGUE", "KINDS", "TREND_RHO", "Outcome", "Rule", "fmt", "fmt_list", "in_regime", "table1_means",
           "outcome", "table"]


def outcome(key: str, *args, **kwargs) -> Outcome:
    """Apply the rule ``key`` of :data:`CATALOGUE`."""
    if key not in CATALOGUE:
        raise KeyError(f"no claim rule {key!r}; known: {', '.join(CATALOGUE)}")
    return CATALOGUE[key](*args, **kwargs)


def table() -> list[dict]:
    """The catalogue as rows (key, kind, claim, source, sentence, rule, regime, calibration): the README's and
    the report's list of what is tested."""
    return [{"key": r.key, "kind": r.kind, "claim": r.claim, "source": r.source, "sentence": r.sentence,
             "rule": r.test, "regime": r.regime, "calibration": r.calibration} for r in CATALOGUE.values()]
