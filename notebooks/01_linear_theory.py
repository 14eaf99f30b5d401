# %% [markdown]
# # 01 · Linear theory: the adversarial loss is non-smooth, and large budgets make 0 optimal
#
# Liu et al. (NeurIPS 2020), Sec 3.1–3.2, Fig 1, Prop 1, Thm 1–2, App A.1.
#
# 1. **Fig 1.** For logistic regression the adversarial loss has a closed form,
#    $g_\epsilon(x,\theta)=\log(1+e^{\theta x+\epsilon|\theta|})$, with a kink at $\theta=0$ whose
#    gradient jump equals $\epsilon$. We check the closed form against a brute-force inner maximisation.
# 2. **Prop 1 / Thm 1.** For a bias-free linear $K$-class model the version space $\mathcal V_\epsilon$
#    (robustly correct directions) shrinks and the set $\mathcal T_\epsilon$ (directions along which
#    the best scaling is 0) grows with $\epsilon$, until above $\bar\epsilon$ every direction is bad and
#    adversarial training ends at $W=0$, a constant classifier. `landscape_core.linear_theory`
#    derives exact tests for both sets and the exact $\bar\epsilon$ from the definitions (see its
#    docstring); here we measure them on synthetic data and confirm them by brute force.
# 3. **Thm 2.** Constant-step SGD on the adversarial loss of a smooth model keeps a gradient whose size
#    grows with $\epsilon$.
#
# The parameters cell holds the fast *smoke* defaults; `make reproduce` injects `params/<profile>/`.

# %%
import numpy as np
import torch

from landscape_core.analysis import linear_theory as lt
from landscape_core.core.io import save_figure
from landscape_core.report import plots
from landscape_core.report.claims import Claims, fmt, fmt_list
from landscape_core.report.notebook import interact_or_draw, start
from landscape_core.studies import linear_model as linear
from landscape_core.studies.linear_model import LinearTheoryParams

_before = set(globals())

# %% tags=["parameters"]
profile = 'smoke'
seed = 0
device = 'cpu'
interactive = False
progress = False
variant = ''
eps = 0.3
x = 1.0
fig1_eps = (0.6, 1.2)
fig1_grid = 401
num_classes = 3
dim = 2
n_per_class = 40
spread = 0.08
eps_grid = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1)
n_directions = 1000
n_checks = 4
train_steps = 100
train_lr = 0.5
collapse_eps = (0.0, 0.4, 0.8, 1.0)
sgd_eps = (0.0, 0.2, 0.4)
sgd_iterations = 150
sgd_lr = 0.1
sgd_batch_size = 16
sgd_hidden = 16
sgd_seeds = 1

# %%
P, out = start(LinearTheoryParams, globals(), _before)
claims = Claims(out.notebook, P.profile)
print(P)

# %% [markdown]
# ## Fig 1: vanilla and adversarial logistic loss
# Red: $g(x,\theta)$; the light band holds $g(x',\theta)$ for every $x'$ in the budget; blue: its upper
# edge $g_\epsilon$. The closed form must match an exhaustive search over $x'$.

# %%
checks = linear.fig1_checks(P)
for c in checks:
    print(f"eps={c.eps:g}: max |closed form - brute force| = {c.deviation:.1e};"
          f" slopes at theta=0: {c.left:.4f} / {c.right:.4f}, jump {c.jump:.4f}")
claims.test("fig1_closed_form", {c.eps: c.deviation for c in checks})
claims.test("fig1_kink", {c.eps: c.jump for c in checks})

fig = plots.fig1(P.x, P.fig1_eps, P.fig1_grid)
save_figure(fig, out.figure("fig1"))


# %%
if P.interactive:
    interact_or_draw(plots.fig1_view, True, {"eps": (0.0, 2.0, 0.05, P.fig1_eps[0])}, x=P.x, n_grid=P.fig1_grid)

# %% [markdown]
# ## Prop 1 and Thm 1: $\mathcal V_\epsilon$ shrinks, $\mathcal T_\epsilon$ grows
# Synthetic data: $K$ Gaussian classes on a circle (bias-free linear classifiers separate them).
# $\mathcal T_\epsilon$ is measured on isotropic random directions; $\mathcal V_\epsilon$ on directions
# around the class-mean classifier (it is tiny among isotropic ones).

# %%
gen = torch.Generator().manual_seed(P.seed)
data = lt.make_blobs(P.n_per_class, P.num_classes, P.dim, P.spread, 1.0, gen)
crit = lt.critical_eps(data.x, data.y, P.num_classes)
print(f"exact eps_bar = {crit['eps_bar']:.4f} (coordinate {crit['coordinate']}, classes {crit['classes']});"
      f" sufficient 'erase' bound max_i ||x_i||_inf = {crit['erase_bound']:.4f}")

fr = lt.set_fractions(data, P.eps_grid, P.n_directions, gen)
print("eps     :", fmt_list(fr["eps"], 2))
print("in V_eps:", fmt_list(fr["V"], 3))
print("in T_eps:", fmt_list(fr["T"], 3))
fig = plots.set_fractions(fr, crit["eps_bar"])
save_figure(fig, out.figure("sets"))

# %% [markdown]
# Brute-force confirmation of the exact tests: $\mathcal V_\epsilon$ membership from the box vertices of
# every point, and $\mathcal T_\epsilon$ membership from a line search of $\mathcal L_\epsilon(\gamma W)$
# over $\gamma$ with the inner maximum found by PGD. The $\gamma$ grid is logarithmic down to $10^{-6}$:
# for directions with a small $\tau(W)$ the best nonzero scaling at $\epsilon=\tau/2$ is itself tiny.

# %%
bf = linear.brute_force_checks(data, fr, crit["eps_bar"], P, gen)
print(f"V_eps closed form = box-vertex brute force for {bf.agree_v}/{bf.n} directions; nested: {bf.nested}")
print(f"T_eps criterion = line search (argmin != 0 at tau/2, = 0 at 2 tau) for {bf.agree_t}/{bf.n} directions")
print(f"witness direction: tau = {bf.witness_tau:.4f}; argmin_gamma at 0.9 eps_bar = {bf.witness_below:.3g}")

claims.test("prop1", fr["V"], bf.nested, bf.agree_v, bf.n)
claims.test("thm1_sets", P.eps_grid, fr["T"], crit["eps_bar"], bf.agree_t, bf.n, bf.witness_tau, bf.witness_below)


# %%
interact_or_draw(plots.sets_view, P.interactive, {"eps": (0.0, float(P.eps_grid[-1]), 0.01, P.eps)},
                 fractions=fr, eps_bar=crit["eps_bar"], data=data)

# %% [markdown]
# ## Adversarial training of the linear model ends at $W=0$ above $\bar\epsilon$
# Full-batch subgradient descent on $\mathcal L_\epsilon(W)$ (inner maximum by PGD, learning rate
# decayed to 0). Training has collapsed when the final $\|W\|$ falls below 2% of the largest final norm
# of the scan; the adversarial loss then equals $\log K$, the constant classifier's.

# %%
scan = lt.collapse_scan(data, P.collapse_eps, steps=P.train_steps, lr=P.train_lr, seed=P.seed)
for e, n, l, a in zip(scan["eps"], scan["norm"], scan["adv_loss"], scan["accuracy"]):
    print(f"eps={e:.2f}: final ||W|| = {fmt(n)}, adversarial loss {l:.3f} (log K = {np.log(P.num_classes):.3f}),"
          f" clean accuracy {a:.2f}")
lo, hi = scan["last_not_collapsed"], scan["empirical_eps_bar"]
print(f"empirical eps_bar in ({fmt(lo)}, {fmt(hi)}]; exact {crit['eps_bar']:.3f}; erase bound {crit['erase_bound']:.3f}")
claims.test("thm1_collapse", lo, hi, crit["eps_bar"])
save_figure(plots.collapse(scan, crit["eps_bar"]), out.figure("collapse"))

# %% [markdown]
# ## Thm 2: non-vanishing gradients grow with $\epsilon$
# Constant-step SGD on a softplus MLP (Assumption 1 holds); full-batch gradient norms of
# $\mathcal L_\epsilon$ at 20 iterates of the last 20% of training.

# %%
tails = linear.sgd_tails(data, P)
norms = {e: t["norms"] for e, t in zip(P.sgd_eps, tails)}
claims.test("thm2_linear", norms)
claims.test("thm2_tail", norms)
save_figure(plots.gradient_tails(tails), out.figure("thm2"))

# %% [markdown]
# ## Claims

# %%
claims.report(out.claims)
