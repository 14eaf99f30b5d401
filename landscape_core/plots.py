"""Figures in the layout of the paper.  Each function draws on the Axes it is given (or makes a
figure) and returns the figure, so notebooks stay one call per figure and the same function serves
the static (papermill) and the interactive (ipywidgets) modes."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import linear_theory as lt

EPS_COLORS = plt.get_cmap("viridis")


def eps_color(i: int, n: int):
    return EPS_COLORS(0.85 * i / max(n - 1, 1))


def fig1_panel(ax, x: float, eps: float, n_grid: int = 401):
    """One panel of Fig 1: vanilla loss (red), the band of perturbed losses, and g_ε (blue)."""
    theta = np.linspace(-2, 2, n_grid)
    ax.fill_between(theta, lt.best_case_logistic_loss(theta, x, eps), lt.adversarial_logistic_loss(theta, x, eps),
                    color="tab:blue", alpha=0.15, lw=0, label="perturbed losses")
    ax.plot(theta, lt.logistic_loss(theta, x), color="tab:red", label=r"$g(x,\theta)$")
    ax.plot(theta, lt.adversarial_logistic_loss(theta, x, eps), color="tab:blue", label=r"$g_\epsilon(x,\theta)$")
    ax.axvline(0, color="k", lw=0.5)
    ax.set(xlabel=r"$\theta$", ylabel="loss", title=rf"$x={x:g}$, $\epsilon={eps:g}$")
    ax.legend(loc="upper left")
    return ax


def fig1(x: float, eps_values, n_grid: int = 401):
    fig, axes = plt.subplots(1, len(eps_values), figsize=(4.2 * len(eps_values), 3.2), squeeze=False)
    for ax, eps in zip(axes[0], eps_values):
        fig1_panel(ax, x, eps, n_grid)
    fig.tight_layout()
    return fig


def set_fractions(fractions: dict, eps_bar: float, mark_eps: float | None = None):
    """Fraction of sampled directions in V_ε (shrinks, Prop 1) and T_ε (grows, Thm 1) against ε."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    eps = fractions["eps"]
    ax.plot(eps, fractions["V"], "o-", color="tab:green", label=r"in $\mathcal{V}_\epsilon$ (good directions)")
    ax.plot(eps, fractions["T"], "s-", color="tab:purple", label=r"in $\mathcal{T}_\epsilon$ (0 is optimal)")
    ax.axvline(eps_bar, color="k", ls="--", lw=1, label=rf"$\bar\epsilon$ = {eps_bar:.3f} (exact)")
    if mark_eps is not None:
        ax.axvline(mark_eps, color="tab:orange", lw=1.5, label=rf"$\epsilon$ = {mark_eps:.2f}")
    ax.set(xlabel=r"$\epsilon$", ylabel="fraction of sampled W", ylim=(-0.03, 1.03))
    ax.legend(loc="center right")
    fig.tight_layout()
    return fig


def blobs_with_boxes(data: "lt.Blobs", eps: float, W=None):
    """The 2-D synthetic data with each point's L∞ ball (only for dim = 2) and W's decision regions."""
    fig, ax = plt.subplots(figsize=(4, 4))
    x, y = data.x.numpy(), data.y.numpy()
    if W is not None:
        g = np.linspace(x.min() - eps - 0.1, x.max() + eps + 0.1, 200)
        gx, gy = np.meshgrid(g, g)
        pred = (np.stack([gx.ravel(), gy.ravel()], 1) @ np.asarray(W).T).argmax(1).reshape(gx.shape)
        ax.contourf(gx, gy, pred, levels=np.arange(data.num_classes + 1) - 0.5, cmap="Pastel1", alpha=0.5)
    for k in range(data.num_classes):
        pts = x[y == k]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, color=plt.get_cmap("tab10")(k), label=f"class {k}")
        for p in pts[:: max(len(pts) // 8, 1)]:
            ax.add_patch(plt.Rectangle(p - eps, 2 * eps, 2 * eps, fill=False, lw=0.4,
                                       color=plt.get_cmap("tab10")(k), alpha=0.6))
    ax.set(aspect="equal", title=rf"$L_\infty$ balls, $\epsilon$ = {eps:.2f}")
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    return fig


def collapse(scan: dict, eps_bar: float):
    """Final ‖W‖ and adversarial loss vs log K after linear adversarial training, against ε."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    a1.plot(scan["eps"], scan["norm"], "o-")
    a1.set(xlabel=r"$\epsilon$", ylabel=r"final $\|W\|_F$", yscale="log")
    a2.plot(scan["eps"], scan["adv_loss"], "o-", label=r"$\mathcal{L}_\epsilon(W_T)$")
    a2.axhline(np.log(scan["num_classes"]), color="k", ls=":", label=r"$\log K$ (constant classifier)")
    a2.set(xlabel=r"$\epsilon$", ylabel="adversarial loss")
    for ax in (a1, a2):
        ax.axvline(eps_bar, color="k", ls="--", lw=1, label=r"$\bar\epsilon$ (exact)")
    a2.legend()
    fig.tight_layout()
    return fig


def gradient_tails(results: list[dict]):
    """Thm 2: distribution of the full-batch gradient norm at the end of SGD, per ε."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    eps = [r["eps"] for r in results]
    ax.boxplot([r["norms"] for r in results], positions=range(len(eps)), widths=0.5)
    ax.set_xticks(range(len(eps)), [f"{e:g}" for e in eps])
    ax.set(xlabel=r"$\epsilon$", ylabel=r"$\|\nabla_\theta \mathcal{L}_\epsilon(\theta_t)\|$, last iterates",
           yscale="log")
    fig.tight_layout()
    return fig


def _smooth(v, k: int):
    if k <= 1 or len(v) < k:
        return np.asarray(v)
    return np.convolve(v, np.ones(k) / k, mode="valid")


def gradient_dynamics(probes: dict, first_n: int, last_n: int, smooth: int = 1):
    """Fig 2 / Fig 8: gradient norm, robust training error and ‖θ−θ0‖ over the first ``first_n``
    updates, and the gradient norm over the last ``last_n`` updates, one line per ε."""
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
    n = len(probes)
    for i, (eps, p) in enumerate(sorted(probes.items())):
        c, lab = eps_color(i, n), rf"$\epsilon$={eps:g}"
        axes[0].plot(_smooth(p["grad_norm"][:first_n], smooth), color=c, label=lab)
        axes[1].plot(_smooth(p["robust_err"][:first_n], smooth), color=c, label=lab)
        axes[2].plot(p["dist"][:first_n], color=c, label=lab)
        axes[3].plot(_smooth(p["grad_norm"][-last_n:], smooth), color=c, label=lab)
    titles = ["(a) gradient norm, first updates", "(b) robust training error, first updates",
              r"(c) $\|\theta-\theta_0\|$, first updates", "(d) gradient norm, last updates"]
    for ax, t in zip(axes, titles):
        ax.set(title=t, xlabel="update")
    axes[0].set_yscale("log")
    axes[3].set_yscale("log")
    axes[0].legend()
    fig.tight_layout()
    return fig


def dead_layers_vs_width(stalls: list, eps: float):
    """App C.2.4: share of final-epoch updates with a dead layer, and constant classifiers, vs width."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    w = [s.width for s in stalls]
    ax.plot(w, [s.dead_fraction for s in stalls], "o-", label="updates with a dead layer")
    ax.plot(w, [s.robust_err for s in stalls], "s--", label="robust training error")
    for s in stalls:
        if s.constant:
            ax.annotate("constant", (s.width, s.robust_err), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=7)
    ax.set(xscale="log", xlabel="width factor w", ylim=(-0.05, 1.05), title=rf"$\epsilon$ = {eps:g}")
    ax.set_xticks(w, [str(v) for v in w])
    ax.legend()
    fig.tight_layout()
    return fig


def schedules(specs: dict, title: str):
    """The schedules actually used (ε or learning rate), one line per label."""
    from .schedules import plot_schedule
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label, spec in specs.items():
        plot_schedule(ax, spec, label=label)
    ax.set(xlabel="epoch", title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def lr_sensitivity(table: dict, lrs):
    """Fig 5: robust test error (mean ± std over seeds) against the learning rate, per ε scheduler."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for i, (sched, rows) in enumerate(table.items()):
        m = [rows[lr][0] for lr in lrs]
        s = [rows[lr][1] for lr in lrs]
        ax.errorbar(lrs, m, yerr=s, marker="o", capsize=3, label=sched, color=plt.get_cmap("tab10")(i))
    ax.set(xscale="log", xlabel="learning rate (Adam)", ylabel="robust test error (%)")
    ax.legend()
    fig.tight_layout()
    return fig


def hessian_spectra(spectra: dict):
    """Fig 3: top-k eigenvalues per ε, normalised (solid) and raw (dashed)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    n = len(spectra)
    for i, s in enumerate(spectra.values()):
        c, ranks = eps_color(i, n), np.arange(1, len(s.values) + 1)
        ax.plot(ranks, s.normalised, "-o", ms=3, color=c, label=rf"$\epsilon$={s.eps:g}")
        ax.plot(ranks, s.values, "--", color=c, lw=1)
    ax.set(yscale="log", xlabel="rank", ylabel="eigenvalue (solid: normalised, dashed: raw)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    fig.tight_layout()
    return fig


def perturbation_similarity(results: dict):
    """Fig 4: cosine similarity (left) and robust test error (right) against a, per ε; top eigenvector
    dashed, random direction solid."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
    n = len(results)
    for i, (eps, by_dir) in enumerate(results.items()):
        for d, ls in (("Eigenvector", "--"), ("Random", "-")):
            r = by_dir[d]
            a1.errorbar(r.a_values, r.cosine_mean, yerr=r.cosine_std, ls=ls, marker="o", ms=3,
                        color=eps_color(i, n), capsize=2, label=rf"$\epsilon$={eps:g} {d.lower()}")
            a2.plot(r.a_values, 100 * r.error_mean, ls=ls, marker="o", ms=3, color=eps_color(i, n))
    a1.set(xlabel="a", ylabel="cosine similarity")
    a2.set(xlabel="a", ylabel="robust test error (%)")
    a1.legend(fontsize=7)
    fig.tight_layout()
    return fig
