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
# # 03 · Hessian spectrum: minima are sharper under larger budgets
#
# Liu et al. (NeurIPS 2020), Sec 4.2, Fig 3, Fig 12.
#
# For each model of notebook 02 (one per budget $\epsilon$) the adversarial examples of a fixed set of
# training images are generated once and held fixed; the top eigenvalues of the Hessian of the
# adversarial loss come from Lanczos (`scipy.sparse.linalg.eigsh`) on Hessian-vector products.
# "Top" means largest *algebraic* (sharpness is upward curvature; the spectrum has negative values).
# To remove the scale of $\mathcal L_\epsilon$ the eigenvalues are divided by the mean adversarial loss
# at randomly initialised parameters (solid lines; raw values dashed, as in Fig 3). The landscape along
# the top-2 eigenvectors is scanned with PGD regenerated at every grid point (Fig 12).

# %%
import matplotlib.pyplot as plt
import numpy as np

from landscape_core import curvature, dynamics, landscape, plots
from landscape_core.claims import Claims, fmt, fmt_list
from landscape_core.experiments import HessianParams
from landscape_core.io import save_figure
from landscape_core.notebook import interact_or_draw, start
from landscape_core.runs import get_or_train

_before = set(globals())

# %% tags=["parameters"]
profile = 'smoke'
seed = 0
device = 'cpu'
interactive = False
progress = False
n_examples = 100
k = 5
tol = 0.01
n_random = 2
landscape_eps = (0.0, 0.4)
landscape_examples = 50
span = 0.5
points = 5

# %%
P, out = start(HessianParams, globals(), _before)
claims = Claims(out.notebook, P.profile)
Z, (train_split, test_split) = dynamics.zoo(P.profile)
dev = P.torch_device()
x, y = train_split.x[: P.n_examples].to(dev), train_split.y[: P.n_examples].to(dev)
models = {eps: get_or_train(spec, out.runs, device=dev, data=(train_split, test_split)).model(device=dev)
          for eps, spec in dynamics.eps_specs(Z).items()}
print(f"models of 02: {Z.arch}-{Z.width}, eps {list(models)}; Hessian on {len(y)} fixed training examples")

# %% [markdown]
# ## Top eigenvalues, raw and normalised (Fig 3)

# %%
spectra = {eps: curvature.spectrum(m, x, y, eps, steps=Z.pgd_steps, step_ratio=Z.step_ratio, k=P.k,
                                   n_random=P.n_random, seed=P.seed, tol=P.tol)
           for eps, m in models.items()}
print(" eps  | adv loss | random-param loss | HVP passes | top eigenvalue raw | normalised")
for s in spectra.values():
    print(f"{s.eps:5.2f} | {s.adv_loss:8.4f} | {s.scale:17.4f} | {s.n_hvp:10d} | {fmt(s.values[0]):>18} |"
          f" {fmt(s.normalised[0]):>10}")

save_figure(plots.hessian_spectra(spectra), out.figure("fig3"))

eps = list(spectra)
top_norm = [s.normalised[0] for s in spectra.values()]
rho = dynamics.rank_correlation(eps, top_norm)
claims.check("Fig 3: the normalised top Hessian eigenvalue rises with eps", rho >= 0.9,
             f"normalised top eigenvalue {fmt_list(top_norm)} for eps {fmt_list(eps, 2)}; rho {rho:.2f}",
             "Spearman rho(eps, normalised top eigenvalue) >= 0.9")
claims.check("Sec 4.2: the scale of L_eps at random parameters is similar across eps (normalisation is mild)",
             max(s.scale for s in spectra.values()) < 2 * min(s.scale for s in spectra.values()),
             f"mean random-parameter adversarial loss {fmt_list([s.scale for s in spectra.values()])}",
             "largest < 2 x smallest")

# %% [markdown]
# ## The landscape along the top-2 eigenvectors (Fig 12)

# %%
scans = {eps: curvature.eigen_landscape(models[eps], x[: P.landscape_examples], y[: P.landscape_examples], eps,
                                        spectra[eps].vectors, steps=Z.pgd_steps, step_ratio=Z.step_ratio,
                                        span=P.span, points=P.points, seed=P.seed, progress=P.progress)
         for eps in P.landscape_eps if eps in models}
fig = plt.figure(figsize=(4.2 * len(scans), 3.6))
for i, (eps, sc) in enumerate(scans.items()):
    ax = fig.add_subplot(1, len(scans), i + 1, projection="3d")
    landscape.plot_surface(ax, sc.alphas, sc.betas, sc.adv_loss)
    ax.set(title=rf"$\epsilon$={eps:g}", xlabel="top-1", ylabel="top-2")
    rise = sc.adv_loss.max() - sc.adv_loss[P.points // 2, P.points // 2]
    print(f"eps={eps:g}: adversarial loss at the centre {sc.adv_loss[P.points // 2, P.points // 2]:.4f},"
          f" largest rise over the grid {rise:.4f}")
fig.tight_layout()
save_figure(fig, out.figure("fig12"))


# %%
def draw_landscape(eps, direction, scale):
    """Interactive: the adversarial loss along one direction (eigenvector or filter-normalised random)."""
    import torch
    m = models[eps]
    if direction == "eigenvector":
        v = torch.from_numpy(np.ascontiguousarray(spectra[eps].vectors[0]))
    else:
        v = landscape.filter_normalized_direction(m, torch.Generator().manual_seed(P.seed))
        v = v / v.norm()
    alphas = np.linspace(-scale, scale, P.points)
    r = landscape.scan_1d(m, v, alphas, x[: P.landscape_examples], y[: P.landscape_examples],
                          curvature.attack_for(eps, Z.pgd_steps, Z.step_ratio),
                          generator=torch.Generator().manual_seed(P.seed))
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.plot(alphas, r.adv_loss, "-o")
    ax.set(xlabel="a", ylabel="adversarial loss", title=rf"$\epsilon$={eps:g}, {direction}")
    plt.show()


if P.interactive:
    interact_or_draw(draw_landscape, True, {"eps": (list(models), max(models)),
                                            "direction": (("eigenvector", "random"), "eigenvector"),
                                            "scale": (0.05, 2.0, 0.05, P.span)})

# %% [markdown]
# ## Claims

# %%
claims.report(out.claims)
