"""The notebooks' interactive views (JupyterLab, ``make lab``): each redraws its notebook's main figure from
what the notebook computed, for the values of its controls (``report.notebook.interact_or_draw``); nothing
retrains.  Notebook 01's views (``fig1_view``, ``sets_view``) stay beside its figures in :mod:`.plots`."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Patch
import numpy as np

from ..core.spec import ParameterError
from .plots import plot_window, eps_color, eps_label, legend_above

__all__ = ["dynamics_view", "similarity_view", "fig5_view", "path_view", "methods_view"]


def _nearest(values, value: float) -> int:
    """The index of the computed value nearest to a control's ``value`` (a slider snaps to the grid)."""
    return int(np.argmin(np.abs(np.asarray(values, dtype=float) - float(value))))


# the probes of Fig 2's panels (a)-(c): key, y label, title
DYNAMICS_PANELS = (("grad_norm", r"$\|\nabla_\theta\|$ (stochastic)", "gradient norm"),
                   ("robust_err", "robust training error", "robust training error"),
                   ("dist", r"$\|\theta-\theta_0\|$", r"distance from $\theta_0$"))


def dynamics_view(probes: dict, first_n: int, last_n: int, eps: float | str = "all", window: str = "first",
                  smooth: int = 1) -> None:
    """02 (Fig 2): gradient norm, robust training error and distance from θ0 of one budget's run (or of
    every budget's) over its ``first`` ``first_n`` or ``last`` ``last_n`` updates, smoothed like Fig 2
    (the distance is not): are the early gradients smaller and the late ones larger under a larger ε?"""
    if window not in ("first", "last"):
        raise ParameterError("window", window, 'must be "first" or "last"')
    n = first_n if window == "first" else last_n
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), layout="constrained")
    for e, p in sorted(probes.items()):
        if eps != "all" and e != eps:
            continue
        for ax, (key, _, _) in zip(axes, DYNAMICS_PANELS):
            values = np.asarray(p[key])
            start = 0 if window == "first" else len(values) - min(n, len(values))
            plot_window(ax, values[start:start + n], start, 1 if key == "dist" else smooth,
                         color=eps_color(e), label=eps_label(e))
    for ax, (_, ylabel, title) in zip(axes, DYNAMICS_PANELS):
        ax.set(xlabel="update", ylabel=ylabel, title=f"{title}, {window} {n} updates")
    axes[0].set_yscale("log")
    legend_above(fig, axes[0])
    plt.show()


def similarity_view(results: dict, a: float) -> None:
    """04 (Fig 4): at the distance ``a`` (the nearest computed one), the cosine similarity of the
    perturbations at θ + av and θ − av (left, ± std over repeats) and the robust test error there (right),
    top Hessian eigenvector (plain) against a random direction (hatched), for every ε: does the similarity
    fall and the error rise along the eigenvector but not along a random direction?"""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    budgets, shown = list(results), None
    for k, (direction, hatch) in enumerate((("Eigenvector", ""), ("Random", "//"))):
        for j, e in enumerate(budgets):
            r = results[e][direction]
            i = _nearest(r.a_values, a)
            shown = float(r.a_values[i])
            kw = dict(width=0.36, color=eps_color(e), hatch=hatch, edgecolor="k")
            a1.bar(j + (k - 0.5) * 0.38, r.cosine_mean[i], yerr=r.cosine_std[i], capsize=3, **kw)
            a2.bar(j + (k - 0.5) * 0.38, 100 * r.error_mean[i], **kw)
    at = "no model analysed" if shown is None else f"a = {shown:g}"
    for ax, label in ((a1, "cosine similarity"), (a2, "robust test error (%)")):
        ax.set_xticks(range(len(budgets)), [eps_label(e) for e in budgets])
        ax.set(ylabel=label, title=f"{label}, {at}")
    a1.set_ylim(top=1.05)                                   # fixed scales: bars comparable across a
    a2.set_ylim(0, 100)
    fig.legend(handles=[Patch(facecolor="w", edgecolor="k", label="top eigenvector"),
                        Patch(facecolor="w", edgecolor="k", hatch="//", label="random direction")],
               loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    plt.show()


def fig5_view(table: dict, lrs, scheduler: str = "all", lr: float | None = None) -> None:
    """05 (Fig 5): robust test error (mean ± std over seeds) against the learning rate for one ε scheduler
    (or all, each in its Fig 5 colour), the learning rate ``lr`` marked and each shown scheduler's error
    there in the title: is a warm-up (cosine, linear) less sensitive to the learning rate than a constant ε?"""
    lrs = list(lrs)
    lr = lrs[_nearest(lrs, lrs[0] if lr is None else lr)]
    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    at = []
    for i, (sched, rows) in enumerate(table.items()):
        if scheduler not in ("all", sched):
            continue
        c = plt.get_cmap("tab10")(i)
        ax.errorbar(lrs, [rows[x][0] for x in lrs], yerr=[rows[x][1] for x in lrs], marker="o", capsize=3,
                    label=sched, color=c)
        ax.plot([lr], [rows[lr][0]], "o", ms=12, mfc="none", mec=c, mew=2)
        at.append(f"{sched} {rows[lr][0]:.1f}%")
    spans = [(m - s, m + s) for rows in table.values() for m, s in rows.values()]
    if spans:                                               # one y range for every selection
        lo, hi = min(v[0] for v in spans), max(v[1] for v in spans)
        ax.set_ylim(lo - 0.1 * (hi - lo) - 1, hi + 0.1 * (hi - lo) + 1)
    ax.axvline(lr, color="0.5", ls=":")
    ax.set(xscale="log", xlabel="learning rate (Adam)", ylabel="robust test error (%)",
           title=f"lr = {lr:g}: " + ", ".join(at))
    ax.legend()
    plt.show()


def path_view(paths: dict, t: float) -> None:
    """06 (App C.2.5): loss (left) and error (right) along the straight line (dashed) and the trained curve
    (solid) at every ε, clean for ε = 0 and adversarial otherwise, the position ``t`` (the nearest computed
    one) marked and the values there in the titles: is there a barrier on the line that the curve avoids?"""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    notes: dict[str, list[str]] = {"loss": [], "error": []}
    shown = None
    for eps, res in paths.items():
        values: dict[str, list[str]] = {"loss": [], "error": []}
        for name, ls in (("line", "--"), ("curve", "-")):
            sc = res.path(name)
            i = _nearest(sc.ts, t)
            shown = float(sc.ts[i])
            loss = np.asarray(sc.clean_loss if eps == 0 else sc.adv_loss)
            err = 100 * np.asarray(sc.clean_err if eps == 0 else sc.adv_err)
            for ax, key, v, f in ((axes[0], "loss", loss, ".3g"), (axes[1], "error", err, ".1f")):
                ax.plot(sc.ts, v, ls=ls, color=eps_color(eps), label=eps_label(eps, f"({name})"))
                ax.plot([sc.ts[i]], [v[i]], "o", ms=7, color=eps_color(eps))
                values[key].append(f"{name} {v[i]:{f}}")
        for key in notes:
            notes[key].append(rf"$\epsilon$={eps:g}: " + " / ".join(values[key]))
    at = "" if shown is None else f"t = {shown:.2f}: "
    for ax, key, ylabel in ((axes[0], "loss", r"loss (adversarial for $\epsilon$ > 0)"),
                            (axes[1], "error", r"error (%) (robust for $\epsilon$ > 0)")):
        if shown is not None:
            ax.axvline(shown, color="0.5", ls=":")
        ax.set(xlabel="t (position on the path)", ylabel=ylabel, title=at + "; ".join(notes[key]))
        ax.title.set_fontsize(8)
    legend_above(fig, axes[0])
    plt.show()


def methods_view(rows, method: str, eps: float) -> None:
    """07 (Yang et al.): at budget ``eps``, the clean and robust errors (left) and the local Lipschitz
    constant on test points (right) of every method of the table, ``method`` solid with a black edge and
    its values in the titles, the others faded: does the smoother model (smaller constant) pay in error?"""
    methods = list(dict.fromkeys(r.method for r in rows))          # one colour per method at every ε
    at = [r for r in rows if r.eps == eps]
    chosen = next((r for r in at if r.method == method), None)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained", width_ratios=(2, 1))
    kinds = ["clean", *(at[0].robust if at else ())]
    width = 0.8 / max(len(at), 1)
    for j, r in enumerate(at):
        kw = dict(color=plt.get_cmap("tab10")(methods.index(r.method)), alpha=1.0 if r is chosen else 0.35,
                  edgecolor="k" if r is chosen else "none", lw=1.5)
        a1.bar(np.arange(len(kinds)) + (j - (len(at) - 1) / 2) * width, [r.clean, *r.robust.values()], width,
               label=r.method, **kw)
        a2.bar(j, r.lipschitz_test, 0.7, **kw)
    a1.set_xticks(range(len(kinds)), kinds)
    a2.set_xticks(range(len(at)), [r.method for r in at], rotation=20, ha="right")
    if chosen is None:
        left, right = rf"{method} was not trained at $\epsilon$ = {eps:g}", ""
    else:
        left = (rf"{method}, $\epsilon$ = {eps:g}: {chosen.health.state()}" + f"\nclean {chosen.clean:.1f}%, "
                + ", ".join(f"{k} {v:.1f}%" for k, v in chosen.robust.items()))
        right = f"{method}: {chosen.lipschitz_test:.3g}"
    a1.set(ylabel="error (%)", ylim=(0, 100), title=left)
    top = max((r.lipschitz_test for r in rows), default=0.0)            # one scale for every ε
    a2.set(ylabel="local Lipschitz constant (test)", ylim=(0, 1.1 * top or 1.0), title=right)
    a1.title.set_fontsize(8)
    a1.legend(loc="upper left", fontsize=7, ncol=2)
    plt.show()
