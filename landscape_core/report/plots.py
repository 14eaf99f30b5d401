"""Figures in the layout of the paper.  Each function draws on the Axes it is given (or makes a
figure) and returns the figure, so notebooks stay one call per figure and the same function serves
the static (papermill) and the interactive (ipywidgets) modes.  :func:`style` is the one style of
every figure (set by :func:`landscape_core.report.notebook.start`)."""
from __future__ import annotations

from typing import Any

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.patches import Patch
import numpy as np

from ..analysis import linear_theory as lt
from ..core.spec import ParameterError
from ..training.schedules import ScheduleSpec, schedule_values


EPS_COLORS = plt.get_cmap("viridis")
_EPS_MAX = [0.4]        # the largest budget of the study in view: fixes each ε's colour across figures


def style(eps_max: float | None = None) -> None:
    """The study's matplotlib style (sizes, grid, fonts, legend line samples long enough to tell a
    dashed line from a solid one); ``eps_max``: the largest training budget of the notebook, so that
    one ε has one colour in every figure of a profile."""
    matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "axes.grid": True,
                                "grid.alpha": 0.3, "font.size": 10, "legend.fontsize": 8,
                                "legend.handlelength": 3.5, "legend.framealpha": 0.9,
                                "axes.titlesize": 10, "axes.labelsize": 10})
    if eps_max:
        _EPS_MAX[0] = float(eps_max)


def eps_color(eps: float):
    """The colour of budget ``eps`` (viridis, 0 dark to the study's largest budget light)."""
    return EPS_COLORS(0.85 * min(float(eps) / _EPS_MAX[0], 1.0))


def eps_label(eps: float, extra: str = "") -> str:
    return rf"$\epsilon$ = {eps:g}" + (f" {extra}" if extra else "")


def legend_above(fig, ax, ncol: int | None = None, **kw) -> None:
    """One legend for the whole figure, above its panels, from the handles of ``ax``."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=ncol or len(labels),
               frameon=False, **kw)


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


def fig1_view(x: float, eps: float, n_grid: int = 401) -> None:
    """One Fig 1 panel, shown (the interactive view of notebook 01)."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    fig1_panel(ax, x, eps, n_grid)
    plt.show()


def sets_view(fractions: dict, eps_bar: float, data: "lt.Blobs", eps: float) -> None:
    """The V_eps / T_eps fractions with ``eps`` marked and, for 2-D data, the L∞ balls; shown."""
    set_fractions(fractions, eps_bar, mark_eps=eps)
    if data.x.shape[1] == 2:
        blobs_with_boxes(data, eps, W=data.centres)
    plt.show()


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


def plot_window(ax, values, start: int, smooth: int, **kw) -> None:
    """A window of a probe that starts after update ``start``, smoothed by a moving average of ``smooth``
    updates (drawn at its window's centre), updates counted from 1 as the run counts them."""
    y = _smooth(values, smooth)
    centre = (len(values) - len(y)) / 2
    ax.plot(start + 1 + centre + np.arange(len(y)), y, **kw)


def gradient_dynamics(probes: dict, first_n: int, last_n: int, smooth: int = 1):
    """Fig 2 / Fig 8: gradient norm, robust training error and ‖θ−θ0‖ over the first ``first_n``
    updates, and the gradient norm over the last ``last_n`` updates, one line per ε."""
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4), layout="constrained")
    for eps, p in sorted(probes.items()):
        c, lab = eps_color(eps), eps_label(eps)
        total = len(p["grad_norm"])
        last_start = total - min(last_n, total)          # panel (d) counts updates as the run does
        for ax, values, start, k in ((axes[0], p["grad_norm"][:first_n], 0, smooth),
                                     (axes[1], p["robust_err"][:first_n], 0, smooth),
                                     (axes[2], p["dist"][:first_n], 0, 1),
                                     (axes[3], p["grad_norm"][-last_n:], last_start, smooth)):
            plot_window(ax, values, start, k, color=c, label=lab)
    ylabels = [r"$\|\nabla_\theta\|$ (stochastic)", "robust training error",
               r"$\|\theta-\theta_0\|$", r"$\|\nabla_\theta\|$ (stochastic)"]
    titles = [f"(a) gradient norm, first {first_n} updates", f"(b) robust training error, first {first_n}",
              rf"(c) distance from $\theta_0$, first {first_n}", f"(d) gradient norm, last {last_n} updates"]
    for ax, t, yl in zip(axes, titles, ylabels):
        ax.set(title=t, xlabel="update", ylabel=yl)
    axes[0].set_yscale("log")
    axes[3].set_yscale("log")
    legend_above(fig, axes[0])
    return fig


def dead_layers_vs_width(stalls: list, eps: float):
    """App C.2.4: share of final-epoch updates with a dead layer, and constant classifiers, vs width."""
    fig, ax = plt.subplots(figsize=(4.8, 3.4), layout="constrained")
    w = [s.width for s in stalls]
    ax.plot(w, [s.dead_fraction for s in stalls], "o-", label="updates with a dead layer")
    ax.plot(w, [s.robust_err for s in stalls], "s--", label="robust training error")
    for s in stalls:
        if s.constant:
            ax.annotate("constant", (s.width, s.robust_err), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=7)
    ax.set(xscale="log", xlabel="width factor w", ylim=(-0.05, 1.05), title=rf"$\epsilon$ = {eps:g}")
    ax.set_xticks(w, [str(v) for v in w])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel("fraction")
    ax.legend(loc="center left")
    return fig


def schedules(specs: dict, title: str):
    """The schedules actually used (ε or learning rate), one line per label."""
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


def learning_curves(curves: dict):
    """Fig 11: the epoch-mean training loss L_eps of each budget's model (log scale)."""
    fig, ax = plt.subplots(figsize=(5, 3.4), layout="constrained")
    for eps, c in curves.items():
        ax.plot(np.arange(1, len(c) + 1), c, marker="." if len(c) < 30 else None, color=eps_color(eps),
                label=eps_label(eps))
    ax.set(yscale="log", xlabel="epoch", ylabel="training loss $\\mathcal{L}_\\epsilon$ (epoch mean)")
    legend_above(fig, ax)
    return fig


def beside_study(rows: list):
    """A diagnosed model beside the study's at its budget: PGD error against the normalised top Hessian
    eigenvalue and against the local Lipschitz constant (one point per model, the diagnosed one in red)."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), layout="constrained")
    for ax, key in zip(axes, ("top eigenvalue (normalised)", "local Lipschitz")):
        for i, r in enumerate(rows):
            ax.scatter(r["PGD"], r[key], color="tab:red" if i == 0 else "tab:blue", zorder=3)
            ax.annotate(r["model"] if i == 0 else f"study {i}", (r["PGD"], r[key]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        ax.set(xlabel="PGD robust error (%)", ylabel=key)
    return fig


def hessian_spectra(spectra: dict):
    """Fig 3: top-k eigenvalues per ε, normalised (solid) and raw (dashed)."""
    fig, ax = plt.subplots(figsize=(6.8, 3.6), layout="constrained")
    for s in spectra.values():
        c, ranks = eps_color(s.eps), np.arange(1, len(s.values) + 1)
        ax.plot(ranks, s.normalised, "-o", ms=3, color=c, label=eps_label(s.eps))
        ax.plot(ranks, s.values, "--", color=c, lw=1)
    ax.plot([], [], "k-o", ms=3, label="normalised")
    ax.plot([], [], "k--", lw=1, label="raw")
    ax.set(yscale="log", xlabel="rank", ylabel="Hessian eigenvalue")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def spectral_densities(details: dict, points: int = 400):
    """The SLQ eigenvalue density of every budget's Hessian, normalised by the random-parameter loss, on
    a log scale like PyHessian's plots; density of the normalised eigenvalue."""
    fig, ax = plt.subplots(figsize=(6.8, 3.6), layout="constrained")
    for d in details.values():
        grid = d.density.grid(points)
        dens = d.density.density(grid)
        ax.plot(grid / d.scale, np.maximum(dens * d.scale, 1e-12), color=eps_color(d.eps), label=eps_label(d.eps))
    ax.set(yscale="log", xlabel="Hessian eigenvalue (normalised)", ylabel="density")
    ax.set_ylim(bottom=1e-6)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def perturbation_similarity(results: dict):
    """Fig 4: cosine similarity (left) and robust test error (right) against a, per ε; top eigenvector
    dashed, random direction solid."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    for eps, by_dir in results.items():
        for d, ls, mk in (("Eigenvector", "--", "s"), ("Random", "-", "o")):
            r = by_dir[d]
            a1.errorbar(r.a_values, r.cosine_mean, yerr=r.cosine_std, ls=ls, marker=mk, ms=3.5,
                        color=eps_color(eps), capsize=2)
            a2.plot(r.a_values, 100 * r.error_mean, ls=ls, marker=mk, ms=3.5, color=eps_color(eps), alpha=0.85)
    for eps in results:
        a1.plot([], [], color=eps_color(eps), label=eps_label(eps))
    a1.plot([], [], "k--s", ms=3.5, label="top eigenvector")
    a1.plot([], [], "k-o", ms=3.5, label="random direction")
    a1.set(xlabel="a (perturbation size)", ylabel="cosine similarity")
    a2.set(xlabel="a (perturbation size)", ylabel="robust test error (%)")
    legend_above(fig, a1)
    return fig


def plot_schedule(ax: Any, spec: ScheduleSpec, label: str | None = None, points_per_epoch: int = 20,
                  **plot_kw):
    """Draw ``spec`` over ``[0, epochs]`` on the matplotlib Axes ``ax``; return the Line2D."""
    if points_per_epoch < 1:
        raise ParameterError("points_per_epoch", points_per_epoch, "must be >= 1")
    ts = np.linspace(0.0, spec.epochs, spec.epochs * points_per_epoch + 1)
    if spec.update == "epoch":
        plot_kw.setdefault("drawstyle", "steps-post")
    (line,) = ax.plot(ts, schedule_values(spec, ts), label=label, **plot_kw)
    return line


def plot_surface(ax3d, alphas, betas, Z, *, cmap: str = "viridis", **kwargs):
    """3-D surface of ``Z[i, j]`` at ``(alphas[i], betas[j])`` on a matplotlib 3-D Axes."""
    A, B = np.meshgrid(np.asarray(alphas), np.asarray(betas), indexing="ij")
    surface = ax3d.plot_surface(A, B, np.asarray(Z), cmap=cmap, **kwargs)
    ax3d.set_xlabel(r"$\alpha$")
    ax3d.set_ylabel(r"$\beta$")
    return surface


def eigen_landscapes(scans: dict):
    """Fig 12: the adversarial loss over the plane of the top-2 eigenvectors, one 3-D panel per ε."""
    fig = plt.figure(figsize=(4.4 * len(scans), 3.8), layout="constrained")
    lo = min(float(np.min(sc.adv_loss)) for sc in scans.values())
    hi = max(float(np.max(sc.adv_loss)) for sc in scans.values())
    for i, (eps, sc) in enumerate(scans.items()):
        ax = fig.add_subplot(1, len(scans), i + 1, projection="3d")
        plot_surface(ax, sc.alphas, sc.betas, sc.adv_loss, vmin=lo, vmax=hi)
        span = float(np.max(np.abs(sc.alphas)))
        ax.set(title=eps_label(eps), xlabel="top-1", ylabel="top-2", zlim=(lo, hi),
               xticks=[-span, 0, span], yticks=[-span, 0, span])
        ax.set_zlabel("adversarial loss", labelpad=2)
        ax.tick_params(labelsize=7, pad=0)
    fig.suptitle("adversarial loss on the plane of the top-2 Hessian eigenvectors (one z range)", fontsize=10)
    return fig


def line_scan(scan, eps: float, direction: str):
    """The adversarial loss along one direction (the interactive view of notebook 03)."""
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.plot(scan.alphas, scan.adv_loss, "-o")
    ax.set(xlabel="a", ylabel="adversarial loss", title=rf"$\epsilon$={eps:g}, {direction}")
    return fig


def connectivity_paths(paths: dict, ts):
    """App C.2.5: loss (left) and error (right) along the straight line (dashed) and the trained curve
    (solid), clean for ε = 0 and adversarial otherwise."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    for eps, res in paths.items():
        for name, ls, mk, z in (("line", "--", "s", 3), ("curve", "-", "o", 2)):
            sc = res.path(name)
            loss = sc.clean_loss if eps == 0 else sc.adv_loss
            err = sc.clean_err if eps == 0 else sc.adv_err
            kw = dict(ls=ls, marker=mk, ms=4 if name == "line" else 3, color=eps_color(eps), zorder=z,
                      mfc="none" if name == "line" else None, label=eps_label(eps, f"({name})"))
            axes[0].plot(ts, loss, **kw)
            axes[1].plot(ts, 100 * err, **kw)
    axes[0].set(xlabel="t (position on the path)", ylabel=r"loss (adversarial for $\epsilon$ > 0)")
    axes[1].set(xlabel="t (position on the path)", ylabel=r"error (%) (robust for $\epsilon$ > 0)")
    legend_above(fig, axes[0])
    return fig


def separation_histograms(summaries, budgets):
    """07 (a): per set of pairs, the histogram of distances to the nearest point of another class, with
    the line at 2ε for each budget (the source's figure)."""
    fig, axes = plt.subplots(1, len(summaries), figsize=(4.2 * len(summaries), 3.2), squeeze=False,
                             layout="constrained")
    for ax, s in zip(axes[0], summaries):
        ax.hist(s.distances, bins=40, color="0.6")
        for e in budgets:
            ax.axvline(2 * e, color=eps_color(e), ls="--", label=rf"$2\epsilon$ = {2 * e:g}")
        ax.set(title=s.name, xlabel=r"$L_\infty$ distance to the nearest other class", ylabel="points")
    legend_above(fig, axes[0][0])
    return fig


def smoothness_vs_eps(zs):
    """07 (c): local Lipschitz constant (test) and normalised top Hessian eigenvalue of 02's models."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    for ax, values, label in ((a1, zs.lipschitz, "local Lipschitz constant (test)"),
                              (a2, zs.top_eigenvalue, "normalised top Hessian eigenvalue")):
        ax.plot(zs.eps, values, "-", color="0.6", zorder=1)
        for e, v in zip(zs.eps, values):
            trained = zs.health[e].trained
            ax.scatter([e], [v], color=eps_color(e), zorder=2, marker="o" if trained else "x")
        ax.set(xlabel=r"training budget $\epsilon$", ylabel=label, yscale="log")
    a1.scatter([], [], color="k", marker="o", label="trained")
    a1.scatter([], [], color="k", marker="x", label="on the plateau")
    a1.legend()
    return fig
