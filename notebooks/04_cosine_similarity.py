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
# # 04 · Perturbation similarity: adversarial examples change abruptly along curved directions
#
# Liu et al. (NeurIPS 2020), Sec 4.2, Fig 4 and the slides' cosine tables.
#
# The parameters of each model of notebook 02 are moved to $\theta + a\mathbf v$ and $\theta - a\mathbf v$,
# $\mathbf v$ the top Hessian eigenvector or a random unit vector. PGD is run at both points and the
# per-example cosine similarity between the perturbations $\mathbf x'_{a\mathbf v}-\mathbf x$ and
# $\mathbf x'_{-a\mathbf v}-\mathbf x$ is averaged over the training examples; PGD is repeated with
# different seeds (mean ± std). The $a=0$ row is the same-model baseline: two PGD runs at $\theta$
# itself. The robust test error at $\theta\pm a\mathbf v$ shows how curved each direction is.

# %%

from landscape_core import curvature, dynamics, landscape, plots
from landscape_core.claims import Claims, fmt, fmt_list
from landscape_core.experiments import CosineParams
from landscape_core.io import atomic_write_text, save_figure
from landscape_core.notebook import start
from landscape_core.runs import get_or_train

_before = set(globals())

# %% tags=["parameters"]
profile = 'smoke'
seed = 0
device = 'cpu'
interactive = False
progress = False
n_examples = 100
n_test = 100
a_values = (0.0, 0.05, 0.1)
repeats = 2

# %%
P, out = start(CosineParams, globals(), _before)
claims = Claims(out.notebook, P.profile)
Z, (train_split, test_split) = dynamics.zoo(P.profile)
dev = P.torch_device()
x, y = train_split.x[: P.n_examples].to(dev), train_split.y[: P.n_examples].to(dev)
xt, yt = test_split.x[: P.n_test].to(dev), test_split.y[: P.n_test].to(dev)
budgets = [e for e in Z.eps_list if e > 0]           # at eps = 0 there is no perturbation to compare
print(f"models of 02: {Z.arch}-{Z.width}, eps {budgets}; {len(y)} training / {len(yt)} test examples")

# %%
results = {}
for eps in budgets:
    model = get_or_train(dynamics.eps_spec(Z, eps), out.runs, device=dev,
                         data=(train_split, test_split)).model(device=dev)
    results[eps] = curvature.similarity(model, x, y, xt, yt, eps, steps=Z.pgd_steps, step_ratio=Z.step_ratio,
                                        a_values=P.a_values, repeats=P.repeats, seed=P.seed, progress=P.progress)

table = landscape.similarity_table({d: {f"eps = {e:g}": results[e][d] for e in budgets}
                                    for d in ("Eigenvector", "Random")})
print(table)
atomic_write_text(out.tables / f"{out.notebook}.md", table + "\n")

# %% [markdown]
# ## Fig 4: cosine similarity against $a$ (eigenvector dashed, random solid)

# %%
save_figure(plots.perturbation_similarity(results), out.figure("fig4"))

# %% [markdown]
# ## Claims
# Drops are measured from the $a=0$ baseline to the largest $a$.

# %%
drop = {d: [results[e][d].cosine_mean[0] - results[e][d].cosine_mean[-1] for e in budgets]
        for d in ("Eigenvector", "Random")}
rise = {d: [100 * (results[e][d].error_mean[-1] - results[e][d].error_mean[0]) for e in budgets]
        for d in ("Eigenvector", "Random")}
claims.check("Fig 4: cosine similarity falls much faster along the top eigenvector than along a random direction",
             all(de > 0.05 and de > 2 * dr for de, dr in zip(drop["Eigenvector"], drop["Random"])),
             f"cosine drop at a={P.a_values[-1]:g}: eigenvector {fmt_list(drop['Eigenvector'])},"
             f" random {fmt_list(drop['Random'])} (eps {fmt_list(budgets, 2)})",
             "for every eps: eigenvector drop > 0.05 and > 2x the random drop")
claims.check("Sec 4.2: robust test error rises along the eigenvector and stays flat along the random direction",
             all(r >= 5 for r in rise["Eigenvector"]) and all(abs(r) < 2 for r in rise["Random"]),
             f"error change (points) at a={P.a_values[-1]:g}: eigenvector {fmt_list(rise['Eigenvector'])},"
             f" random {fmt_list(rise['Random'])}",
             "for every eps: eigenvector rise >= 5 points, |random change| < 2 points")

# %%
claims.report(out.claims)
