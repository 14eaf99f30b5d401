"""Notebook 01's claims: the linear theory of Liu et al. Sec 3 (Fig 1, Prop 1, Thm 1, Thm 2)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ...analysis.dynamics import Health
from .base import CONVERGED, LIU, TREND_RHO, Outcome, trend, fmt, fmt_list, rule

# ----------------------------------------------------------------------------- 01: linear theory (Sec 3)

@rule("fig1_closed_form", kind="check",
      claim="Fig 1: our closed form of g_eps equals the inner maximum found by search",
      source=f"{LIU}, Sec 3.2 / Fig 1 (our implementation)",
      sentence="The function g_eps(x, theta) is not smooth at theta = 0.",
      test="max |closed form - brute force| < 1e-3 on a 2001-point x' grid, at every eps of the figure",
      calibration="exact mathematics: the tolerance is the grid's resolution")
def fig1_closed_form(deviation: Mapping[float, float]) -> Outcome:
    return Outcome(all(d < 1e-3 for d in deviation.values()),
                   "max deviation " + ", ".join(f"eps={e:g}: {d:.1e}" for e, d in deviation.items()))


@rule("fig1_kink",
      claim="Sec 3.2 / Fig 1: g_eps has a kink at theta = 0 that sharpens as eps grows",
      source=f"{LIU}, Sec 3.2 (Fig 1)",
      sentence="as the light blue band becomes wider under a larger adversarial budget, the corresponding "
               "non-smooth point becomes sharper, which means that the difference between the gradients on "
               "both sides of the non-smooth point becomes larger",
      test="the gradient jump at theta = 0 equals eps (to 1e-4) at every eps, so it grows with eps",
      calibration="exact: g_eps(theta) = log(1 + exp(theta x + eps |theta|)) has one-sided slopes (x - eps) / 2 and "
                  "(x + eps) / 2 at theta = 0, a jump of eps (Fig 1: x = 1, eps 0.6 and 1.2)")
def fig1_kink(jumps: Mapping[float, float]) -> Outcome:
    eps = sorted(jumps)
    exact = all(abs(jumps[e] - e) < 1e-4 for e in eps)
    grows = all(jumps[b] > jumps[a] for a, b in zip(eps, eps[1:]))
    return Outcome(exact and grows, "jump " + ", ".join(f"eps={e:g}: {jumps[e]:.4f}" for e in eps))


@rule("prop1",
      claim="Prop 1: the version space V_eps shrinks as eps grows",
      source=f"{LIU}, Sec 3.1, Proposition 1",
      sentence="The proposition below states that the version space V_eps shrinks with larger values of eps.",
      test="the fraction of directions in V_eps is non-increasing in eps and smaller at the largest eps than "
           "at the smallest; nested and equal to the box-vertex brute force for every direction checked",
      calibration="exact mathematics (Proposition 1)")
def prop1(fraction: Sequence[float], nested: bool, agree: int, n: int) -> Outcome:
    f = np.asarray(fraction, float)
    return Outcome(bool((np.diff(f) <= 0).all()) and nested and agree == n and f[-1] < f[0],
                   f"fraction in V_eps {fmt(f[0])} -> {fmt(f[-1])}; brute force agrees {agree}/{n}")


@rule("thm1_sets",
      claim="Thm 1: T_eps grows with eps and is everything above eps_bar",
      source=f"{LIU}, Sec 3.1, Theorem 1",
      sentence="T_eps2 is a subset of T_eps1 when eps1 >= eps2. In addition, there exists eps_bar such that for "
               "all eps >= eps_bar, T_eps = R^(m x K).",
      test="the fraction in T_eps is non-decreasing, 1 for eps >= eps_bar, equal to a line search for every "
           "direction checked, and a direction with tau = eps_bar exists",
      calibration="exact mathematics (Theorem 1)")
def thm1_sets(eps: Sequence[float], fraction: Sequence[float], eps_bar: float, agree: int, n: int,
              witness_tau: float, witness_below: float) -> Outcome:
    f, e = np.asarray(fraction, float), np.asarray(eps, float)
    ok = (bool((np.diff(f) >= 0).all()) and bool((f[e >= eps_bar] == 1).all()) and agree == n
          and abs(witness_tau - eps_bar) < 1e-9 and witness_below != 0.0)
    return Outcome(ok, f"fraction in T_eps {fmt(f[0])} -> {fmt(f[-1])}; line search agrees {agree}/{n}; "
                       f"witness tau = eps_bar = {eps_bar:.3f}")


@rule("thm1_collapse",
      claim="Thm 1: adversarial training of the linear model ends at W = 0 exactly when eps >= eps_bar",
      source=f"{LIU}, Sec 3.1 (after Theorem 1)",
      sentence="Theorem 1 indicates that when the adversarial budget is large enough, the optimal point is the "
               "origin. In this case, we will get a constant classifier, and training completely fails.",
      test="the exact eps_bar lies in the bracket (last eps that trained, first eps that collapsed]",
      calibration="exact mathematics; the bracket is the scan's resolution")
def thm1_collapse(last_trained: float | None, first_collapsed: float | None, eps_bar: float) -> Outcome:
    ok = last_trained is not None and first_collapsed is not None and last_trained < eps_bar <= first_collapsed
    return Outcome(ok, f"collapse between eps={fmt(last_trained)} and {fmt(first_collapsed)}; "
                       f"exact eps_bar {eps_bar:.3f}")


@rule("thm2_linear",
      claim="Thm 2: the late gradients do not vanish under attack and grow with eps",
      source=f"{LIU}, Sec 3.2 (after Theorem 2)",
      sentence="By contrast, in adversarial training, i.e., eps > 0, we cannot guarantee convergence to a "
               "critical point. Instead, the gradients are non-vanishing",
      test="the median late full-batch gradient norm is strictly increasing in eps, the largest eps's > 2x eps = 0's",
      regime="none: the runs are constant-step SGD on a smooth (softplus) model for a fixed number of steps, the "
             "setting of Theorem 2",
      calibration="no published numbers (a theorem); 2x: the non-vanishing part must dominate the eps = 0 "
                  "noise floor of constant-step SGD")
def thm2_linear(norms: Mapping[float, Sequence[float]]) -> Outcome:
    eps = sorted(norms)
    med = [float(np.median(norms[e])) for e in eps]
    return Outcome(bool((np.diff(med) > 0).all()) and med[-1] > 2 * med[0],
                   f"median late gradient norm {fmt_list(med)} for eps {fmt_list(eps, 2)}")


@rule("thm2_tail",
      claim="Thm 2: the probability of a large late gradient grows with eps",
      source=f"{LIU}, Sec 3.2 (after Theorem 2)",
      sentence="For a fixed value of C ... the inequality (4) indicates that the probability "
               "P(||grad L_eps(theta_t)|| > C) increases quadratically with eps.",
      test=f"C = the median of all late gradient norms pooled over the budgets in regime; Spearman "
           f"rho(eps, share of late updates with norm > C) >= {TREND_RHO}, over at least 3 budgets",
      regime=f"for 02's zoo: the budgets' models {CONVERGED} (the theorem is about the end of training); for "
             "01: none (constant-step mini-batch SGD on a softplus MLP, full-batch gradient norms, Theorem 2's "
             "setting)",
      calibration="no published numbers (a theorem). Theorem 2 bounds the probability from above, "
                  "P < 4 / (gamma^2 - 2 gamma + 4) for C = gamma eps L > 2 eps L, and the sentence reads the bound's "
                  "growth; the rule tests the observed share's rise. C is fixed across eps as the sentence says, "
                  "at the pooled median so that the shares are not all 0 or 1")
def thm2_tail(norms: Mapping[float, Sequence[float]], health: Mapping[float, Health] | None = None) -> Outcome:
    eps = sorted(norms)
    keep = [e for e in eps if health is None or health[e].converged]
    pooled = np.concatenate([np.asarray(norms[e], float) for e in keep]) if keep else np.zeros(1)
    c = float(np.median(pooled))
    shares = [float((np.asarray(norms[e], float) > c).mean()) for e in eps]
    return trend(eps, shares, +1, f"gradient norm C = {fmt(c)}; share of late updates above C", health, "converged")
