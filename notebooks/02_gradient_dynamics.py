# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Gradient dynamics: large budgets slow the escape from the initial plateau
#
# Liu et al. (NeurIPS 2020), Sec 4.1, Fig 2 (CIFAR10), Fig 8 (MNIST), App C.2.4.
#
# One model per budget $\epsilon$ (same seed, data order and learning rate) is trained with PGD; every
# mini-batch records the norm of the stochastic gradient $\|\nabla_\theta\hat{\mathcal L}_\epsilon\|$,
# the robust training error on the batch and the distance from the initial point $\|\theta-\theta_0\|$.
# The paper's reading: with larger $\epsilon$ the early gradients are *smaller*, the error falls more
# slowly and the parameters move less (the model is stuck near its initialisation), while the late
# gradients are *larger* and do not vanish (Thm 2). Small models under large budgets can end with a dead
# ReLU layer and a constant classifier.
#
# The models trained here are stored in the run store and reused by notebooks 03 and 04.

# %%
import numpy as np

from landscape_core import dynamics, plots
from landscape_core.claims import Claims, fmt, fmt_list
from landscape_core.data import load_data
from landscape_core.experiments import GradientDynamicsParams
from landscape_core.io import save_figure
from landscape_core.notebook import start
from landscape_core.runs import get_or_train

_before = set(globals())

# %% tags=["parameters"]
profile = 'smoke'
seed = 0
device = 'cpu'
interactive = False
progress = False
dataset = 'mnist5k'
download = False
n_train = 600
arch = 'lenet'
width = 2
eps_list = (0.0, 0.2, 0.4)
pgd_steps = 5
step_ratio = 0.25
optimizer = 'adam'
lr = 1.0e-3
batch_size = 100
epochs = 2
first_n = 6
last_n = 6
stall_eps = 0.4
stall_widths = (1, 2, 4)
stall_epochs = 1

# %%
P, out = start(GradientDynamicsParams, globals(), _before)
claims = Claims(out.notebook, P.profile)
dev = P.torch_device()
data = load_data(dynamics.eps_spec(P, 0.0).data)
print(f"{P.dataset}: {len(data[0].y)} training images; {P.arch}-{P.width}, {P.epochs} epochs, "
      f"PGD-{P.pgd_steps} (step {P.step_ratio:g} eps), {P.optimizer} lr {P.lr:g}")

# %% [markdown]
# ## Training one model per budget

# %%
runs = {eps: get_or_train(spec, out.runs, device=dev, progress=P.progress, data=data)
        for eps, spec in dynamics.eps_specs(P).items()}
probes = {eps: run.probes for eps, run in runs.items()}
W = [dynamics.windows(eps, probes[eps], P.first_n, P.last_n) for eps in runs]
print(f"updates per run: {len(probes[P.eps_list[0]]['loss'])}; windows: first {P.first_n}, last {P.last_n}")
print(" eps  | early grad | early err | dist@first_n | late grad | late err | diverged")
for w in W:
    print(f"{w.eps:5.2f} | {fmt(w.early_grad):>10} | {w.early_err:9.3f} | {fmt(w.dist_at_n):>12} |"
          f" {fmt(w.late_grad):>9} | {w.late_err:8.3f} | {runs[w.eps].diverged}")
save_figure(plots.gradient_dynamics(probes, P.first_n, P.last_n, smooth=max(P.first_n // 20, 1)),
            out.figure("fig2"))

# %% [markdown]
# ## Claims of Sec 4.1
# A trend is tested by Spearman's rank correlation between $\epsilon$ and the window mean over all
# budgets: $|\rho| \ge 0.9$ in the stated direction (with five budgets: at most one adjacent swap).

# %%
eps = [w.eps for w in W]
# (claim, window statistic, direction of the trend, what was measured, its name in the rule)
trends = [
    ("Fig 2a: early gradient norm falls as eps grows", "early_grad", -1,
     f"mean grad norm over first {P.first_n} updates", "early grad"),
    ("Fig 2b: robust training error falls more slowly with larger eps", "early_err", +1,
     f"mean robust train error over first {P.first_n} updates", "early error"),
    ("Fig 2c: distance from init grows more slowly with larger eps", "dist_at_n", -1,
     f"||theta - theta0|| after {P.first_n} updates", "distance"),
    ("Fig 2d / Thm 2: late gradient norm rises with eps", "late_grad", +1,
     f"mean grad norm over last {P.last_n} updates", "late grad"),
]
for claim, key, sign, measured, name in trends:
    values = [getattr(w, key) for w in W]
    r = dynamics.rank_correlation(eps, values)
    claims.check(claim, r >= 0.9 if sign > 0 else r <= -0.9,
                 f"{measured} {fmt_list(values)}; rho {r:.2f}",
                 f"Spearman rho(eps, {name}) {'>= 0.9' if sign > 0 else '<= -0.9'}")

# %% [markdown]
# ## App C.2.4: dead layers and constant classifiers against width
# Models of several widths trained at $\epsilon$ = `stall_eps`. A run has stalled when it predicts one
# class for every training input, or when most updates of its last epoch see a dead ReLU layer.

# %%
stalls = []
for w in P.stall_widths:
    spec = dynamics.eps_spec(P, P.stall_eps, width=w, epochs=P.stall_epochs)
    run = get_or_train(spec, out.runs, device=dev, progress=P.progress, data=data)
    stalls.append(dynamics.stall(run, data[0].x, int(np.ceil(len(data[0].y) / P.batch_size)), dev))
for s in stalls:
    print(f"width {s.width:3d}: constant classifier {s.constant!s:5}, updates with a dead layer "
          f"{s.dead_fraction:.2f}, robust train error {s.robust_err:.3f} -> stalled {s.stalled}")
save_figure(plots.dead_layers_vs_width(stalls, P.stall_eps), out.figure("dead_layers"))
small, large = stalls[0], stalls[-1]
claims.check("Sec 4.1 / C.2.4: training stalls for small width under a large budget, not for a large width",
             small.stalled and not large.stalled,
             f"eps={P.stall_eps:g}: width {small.width} stalled={small.stalled}, width {large.width} stalled={large.stalled}",
             "smallest width stalled and largest width not")

# %% [markdown]
# ## Claims

# %%
claims.report(out.claims)
