"""Notebooks 02 and 03: Sec 4.1 (Fig 2 / Fig 8, Thm 2's tail, App C.2.4, Sec 6 on small models) and Sec 4.2 (Fig 3)."""
from __future__ import annotations

from typing import Mapping, Sequence

from ...analysis.dynamics import Health
from ...analysis.stats import rank_correlation
from .base import (CONVERGED, LIU, TRAINED, TREND_RHO, TREND_TEST, TREND_WHY, Outcome, trend, fmt, fmt_list,
                   in_regime, rule)

# ------------------------------------------------------------------------ 02: gradient dynamics (Sec 4.1)

_FIG2_SENTENCE = ("When eps is small, the gradient magnitude is larger, and the model parameters move faster. "
                  "Correspondingly, the training error decreases faster ... By contrast, when eps is large, the "
                  "gradients are small, and the model gets stuck in the initial region.")
_EARLY = "none: the early windows describe the start of training, the plateau included; every model counts"


@rule("fig2a", claim="Fig 2a: the early gradient norm falls as eps grows", source=f"{LIU}, Sec 4.1, Fig 2a (Fig 8)",
      sentence=_FIG2_SENTENCE, test=TREND_TEST.format("early gradient norm", "<= -"), regime=_EARLY,
      calibration=TREND_WHY)
def fig2a(eps: Sequence[float], early_grad: Sequence[float], n: int) -> Outcome:
    return trend(eps, early_grad, -1, f"mean gradient norm over the first {n} updates", None, "trained")


@rule("fig2b", claim="Fig 2b: the robust training error falls more slowly with larger eps",
      source=f"{LIU}, Sec 4.1, Fig 2b (Fig 8)", sentence=_FIG2_SENTENCE,
      test=TREND_TEST.format("fall of the robust training error over the first window (mean of its first "
                             "tenth - mean of its last tenth)", "<= -"), regime=_EARLY,
      calibration=TREND_WHY + "; the fall, not the level: the error is higher at a larger eps at every stage, so "
                  "its level would rise with eps even if every budget fell as fast")
def fig2b(eps: Sequence[float], early_fall: Sequence[float], n: int) -> Outcome:
    return trend(eps, early_fall, -1, f"fall of the robust training error over the first {n} updates", None,
                  "trained")


@rule("fig2c", claim="Fig 2c: the distance from the initial point grows more slowly with larger eps",
      source=f"{LIU}, Sec 4.1, Fig 2c (Fig 8)", sentence=_FIG2_SENTENCE,
      test=TREND_TEST.format("distance from theta_0 after the first window", "<= -"), regime=_EARLY,
      calibration=TREND_WHY)
def fig2c(eps: Sequence[float], distance: Sequence[float], n: int) -> Outcome:
    return trend(eps, distance, -1, f"||theta - theta_0|| after {n} updates", None, "trained")


@rule("fig2d",
      claim="Fig 2d / Thm 2: the late gradient norm rises with eps",
      source=f"{LIU}, Sec 4.1, Fig 2d (Fig 8)",
      sentence="However, ||grad L_eps(theta)|| increases with eps. When eps is larger, ||grad L_eps(theta)|| is "
               "also larger and non-vanishing, indicating that the model is still bouncing around the parameter "
               "space at the end of training.",
      test=TREND_TEST.format("late gradient norm", ">=") + " in regime, at least 3",
      regime=f"the budgets' models {CONVERGED}: the sentence is about the final near-minimum region",
      calibration=TREND_WHY)
def fig2d(eps: Sequence[float], late_grad: Sequence[float], n: int, health: Mapping[float, Health]) -> Outcome:
    return trend(eps, late_grad, +1, f"mean gradient norm over the last {n} updates", health, "converged")


@rule("fig2d_zero",
      claim="Fig 2d: without attack the late gradient is almost zero",
      source=f"{LIU}, Sec 4.1, Fig 2d",
      sentence="In vanilla training, the gradient is almost zero in the end, indicating that the optimizer finds "
               "a critical point.",
      test="the eps = 0 model's late gradient norm < 1/10 of every converged eps > 0 model's",
      regime=f"the eps = 0 model and at least one eps > 0 model {CONVERGED}",
      calibration="no published numbers (Fig 2d's curves); 'almost zero' read against the non-vanishing "
                  "gradients of the same figure: an order of magnitude below them")
def fig2d_zero(eps: Sequence[float], late_grad: Sequence[float], health: Mapping[float, Health]) -> Outcome:
    g = dict(zip(eps, late_grad))
    adv = [e for e in eps if e > 0 and health[e].converged]
    premise = 0.0 in g and health[0.0].converged and bool(adv)
    ratio = g.get(0.0, float("nan")) / min(g[e] for e in adv) if adv else float("nan")
    text = (f"late gradient norm eps=0: {fmt(g.get(0.0))}; converged eps>0: "
            + (", ".join(f"eps={e:g}: {fmt(g[e])}" for e in adv) or "none") + f" (ratio {fmt(ratio)})")
    why = "" if premise else in_regime({e: health[e] for e in eps}, "converged")[1]
    return Outcome(ratio < 0.1, text, premise, why)


@rule("c24_width",
      claim="App C.2.4: a small width under a large budget ends behind a dead layer, the same width trains "
            "without attack, a large width trains under the budget",
      source=f"{LIU}, Sec 4.1 and App C.2.4",
      sentence="Note that training fails when all the neurons in one layer are dead for all training instances. "
               "... In practice, this usually happens when the model has small width and the value of eps is large.",
      test="the smallest width stalled at the large eps (constant classifier or a dead layer in most of its last "
           "epoch) and trained at eps = 0",
      regime=f"the largest width {TRAINED} at the large eps (else the budget is beyond this scale: no contrast "
             "between widths can be seen)",
      calibration="no published numbers (App C.2.4's plots are not in our references)")
def c24_width(small_adv: Health, small_clean: Health, large_adv: Health, eps: float) -> Outcome:
    text = (f"eps={eps:g}: width {small_adv.width} {small_adv.state()}, width {large_adv.width} "
            f"{large_adv.state()}; eps=0: width {small_clean.width} {small_clean.state()}")
    premise = large_adv.trained
    return Outcome(small_adv.stalled and small_clean.trained, text, premise,
                   "" if premise else f"the largest width did not train at eps={eps:g}: {large_adv.state()}")


@rule("sec6_small_warmup",
      claim="Sec 6: warm-up of the budget trains the small model that constant eps leaves stalled",
      source=f"{LIU}, Sec 6 (Model capacity)",
      sentence="As a result, warmup in adversarial budget is also necessary for small models. In many cases, the "
               "parameter space of small models has good minima in terms of robustness, but adversarial "
               "training with a constant value of eps fails to find them.",
      test="at the width and eps where constant-eps training stalled, the cosine warm-up run trained",
      regime="the small model stalled under constant eps (the sentence's premise)",
      calibration="no published numbers")
def sec6_small_warmup(constant: Health, warmup: Health, eps: float) -> Outcome:
    text = f"width {constant.width}, eps={eps:g}: constant {constant.state()}, cosine warm-up {warmup.state()}"
    return Outcome(warmup.trained, text, constant.stalled,
                   "" if constant.stalled else f"constant eps did not stall: {constant.state()}")


# ------------------------------------------------------------------------------- 03: Hessian (Sec 4.2)

_FIG3_SENTENCE = ("It is clear that the local effective second-order Lipschitz constant of the model obtained "
                  "consistently increases with the value of eps. That is, the minima found in L_eps(theta) are "
                  "sharper under larger eps.")


def _ranks(eps: Sequence[float], top: Sequence[Sequence[float]], health, what: str) -> Outcome:
    """Every rank of the top-k eigenvalues (``top[i]``: budget i's, largest first) rises with eps, over the
    converged budgets."""
    k = min(len(t) for t in top)
    first = trend(eps, [t[0] for t in top], +1, f"{what}, largest:", health, "converged")
    keep = [i for i, e in enumerate(eps) if health[e].converged]
    rhos = [rank_correlation([eps[i] for i in keep], [top[i][j] for i in keep]) if len(keep) >= 2 else float("nan")
            for j in range(k)]
    rising = sum(r >= TREND_RHO for r in rhos)
    text = f"{first.measured}; of the top {k} ranks rising: {rising} (smallest rho {fmt(min(rhos), 2)})"
    return Outcome(rising == k, text, first.premise, first.why)


@rule("fig3_normalised",
      claim="Fig 3: the top-k normalised Hessian eigenvalues rise with eps (sharper minima)",
      source=f"{LIU}, Sec 4.2, Fig 3", sentence=_FIG3_SENTENCE,
      test=f"for every rank of the top k: Spearman rho(eps, normalised eigenvalue) >= {TREND_RHO} over the "
           "converged budgets (at least 3)",
      regime=f"the budgets' models {CONVERGED}: the sentence is about the minima found",
      calibration=TREND_WHY + "; 'consistently': every rank, not only the largest")
def fig3_normalised(eps: Sequence[float], top: Sequence[Sequence[float]], health: Mapping[float, Health]) -> Outcome:
    return _ranks(eps, top, health, "normalised top eigenvalues")


@rule("fig3_raw",
      claim="Fig 3: the top-k Hessian eigenvalues before normalisation rise with eps",
      source=f"{LIU}, Sec 4.2, Fig 3 (dashed)", sentence=_FIG3_SENTENCE,
      test=f"for every rank of the top k: Spearman rho(eps, eigenvalue) >= {TREND_RHO} over the converged budgets "
           "(at least 3)",
      regime=f"the budgets' models {CONVERGED}", calibration=TREND_WHY)
def fig3_raw(eps: Sequence[float], top: Sequence[Sequence[float]], health: Mapping[float, Health]) -> Outcome:
    return _ranks(eps, top, health, "top eigenvalues")


@rule("hessian_scale", kind="check",
      claim="Sec 4.2: the scale of L_eps at random parameters is similar across eps (the normalisation is mild)",
      source=f"{LIU}, Sec 4.2 (our check of the normalisation)",
      sentence="we estimate the scale of L_eps(theta) by randomly sampling theta. We then normalize the top "
               "Hessian eigenvalues by the average value of L_eps(theta) on these random samples.",
      test="largest random-parameter loss < 2 x smallest", calibration="ours: a factor 2 keeps raw and "
      "normalised eigenvalues in the same order")
def hessian_scale(scales: Sequence[float]) -> Outcome:
    return Outcome(max(scales) < 2 * min(scales), f"mean random-parameter adversarial loss {fmt_list(scales)}")


FIG11_FACTOR = 10.0     # "similar magnitude": within one order of magnitude


@rule("fig11",
      claim="Fig 11: the training loss L_eps has a similar magnitude for different eps throughout training",
      source=f"{LIU}, Sec 4.2, Fig 11 (App C.2.2)",
      sentence="we show the learning curve of L_eps(theta) on the training set during training in Figure 11 of "
               "Appendix C.2.2. It clearly show similar magnitude of L_eps(theta) for different values of eps.",
      test=f"at every epoch, the largest epoch-mean training loss over the budgets eps > 0 < {FIG11_FACTOR:g} x the "
           "smallest (the same order of magnitude)",
      regime=f"the models of the budgets eps > 0 {TRAINED}, at least two (a model on the plateau sits at chance's "
             "loss: its magnitude says nothing of the minima the normalisation is for)",
      calibration="no published numbers (a figure); 'similar magnitude' read as within a factor "
                  f"{FIG11_FACTOR:g}; eps = 0 left out: plain training drives L_0 towards 0 on a training set the "
                  "model fits, and the sentence backs the normalisation of the adversarial budgets' eigenvalues. "
                  "A curve 20x lower than the others fails (tests/test_catalogue.py)")
def fig11(curves: Mapping[float, Sequence[float]], health: Mapping[float, Health]) -> Outcome:
    adv = {e: c for e, c in curves.items() if e > 0}
    ok_eps, why = in_regime({e: health[e] for e in adv}, "trained")
    kept = [adv[e] for e in ok_eps]
    n = min((len(c) for c in kept), default=0)
    ratios = [max(c[i] for c in kept) / max(min(c[i] for c in kept), 1e-12) for i in range(n)]
    worst = max(ratios, default=float("nan"))
    text = (f"epoch-mean training loss at the last epoch {fmt_list([c[-1] for c in kept])} (eps "
            f"{fmt_list(ok_eps, 2)}); largest ratio over the epochs {fmt(worst)}")
    return Outcome(bool(ratios) and worst < FIG11_FACTOR, text, len(kept) >= 2, why or "fewer than two budgets eps > 0")
