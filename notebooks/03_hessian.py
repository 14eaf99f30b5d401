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
from landscape_core.core.io import save_figure
from landscape_core.report import plots, summaries, tables
from landscape_core.report.claims import Claims
from landscape_core.report.notebook import interact_or_draw, start
from landscape_core.studies import curvature
from landscape_core.studies.base import load_zoo, zoo_data

_before = set(globals())

# %% tags=["parameters"]
profile = 'smoke'
seed = 0
device = 'cpu'
interactive = False
progress = False
variant = ''
zoo = {'training': {'dataset': 'mnist5k', 'download': False, 'n_train': 600, 'arch': 'lenet', 'width': 2,
                    'pgd_steps': 5, 'step_ratio': 0.25, 'pgd_step': None, 'optimizer': 'adam', 'lr': 0.001,
                    'batch_size': 100, 'epochs': 2, 'precision': 'fp32'},
       'eps_list': (0.0, 0.2, 0.4), 'seed': 0, 'lr_schedule': 'constant', 'lr_milestones': ()}
task = ''
n_examples = 100
k = 5
tol = 0.01
n_random = 2
landscape_eps = (0.0, 0.4)
landscape_examples = 50
span = 0.5
points = 5
detail_examples = 50
trace_samples = 5
slq_steps = 10
slq_runs = 1
layer_steps = 5

# %%
P, out = start(curvature.HessianParams, globals(), _before)
claims = Claims(out.notebook, P.profile)
Z = P.zoo
train_split, test_split = data = zoo_data(Z)
dev = P.torch_device()
x, y = train_split.x[: P.n_examples].to(dev), train_split.y[: P.n_examples].to(dev)
zoo_runs = load_zoo(Z, out.runs, device=dev, data=data)
models = zoo_runs.models(dev)
print(f"models of 02: {Z.training.arch}-{Z.training.width}, eps {list(models)}; Hessian on {len(y)} fixed training examples")
print(summaries.health(zoo_runs.health))

# %% [markdown]
# ## Top eigenvalues, raw and normalised (Fig 3)

# %%
spectra = curvature.spectra(models, x, y, P)
print(summaries.spectra_table(spectra))

save_figure(plots.hessian_spectra(spectra), out.figure("fig3"))

# %% [markdown]
# Fig 3's sentence is about the minima found: it is tested over the top-k eigenvalues, raw and normalised,
# of the models that **converged** (trained, and their learning curve flattened; see 02), at least three.

# %%
eps = list(spectra)
claims.test("fig3_normalised", eps, [s.normalised for s in spectra.values()], zoo_runs.health)
claims.test("fig3_raw", eps, [s.values for s in spectra.values()], zoo_runs.health)
claims.test("hessian_scale", [s.scale for s in spectra.values()])

# %% [markdown]
# ## The learning curves of $\mathcal L_\epsilon$ (Fig 11)
# The training loss at the attack's inputs, averaged over each epoch of each model's training (02's probes):
# the paper shows it to argue that $\mathcal L_\epsilon$ has a similar magnitude for every budget, so the
# normalisation above removes a scale, not the trend. Tested over the budgets $\epsilon > 0$ whose model trained.

# %%
curves = zoo_runs.learning_curves(len(train_split.y))
save_figure(plots.learning_curves(curves), out.figure("fig11"))
claims.test("fig11", curves, zoo_runs.health)

# %% [markdown]
# ## Beyond the top eigenvalues: trace, spectral density, layers
# As PyHessian reports them: the trace by Hutchinson's estimator (Rademacher vectors), the eigenvalue density
# by stochastic Lanczos quadrature, and the top eigenvalue of each layer's block of the Hessian, on the first
# `detail_examples` of the fixed set; normalised by the same random-parameter loss as the top-k.

# %%
detail = curvature.details(models, spectra, x, y, P)
tables.show([d.row() for d in detail.values()], out.table("hessian_detail"), decimals=3)
save_figure(plots.spectral_densities(detail), out.figure("density"))

# %% [markdown]
# ## The landscape along the top-2 eigenvectors (Fig 12)

# %%
scans = curvature.landscapes(models, spectra, x, y, P)
print(summaries.landscape_summary(scans))
save_figure(plots.eigen_landscapes(scans), out.figure("fig12"))


# %%
def draw_landscape(eps, direction, scale):
    """Interactive: the adversarial loss along one direction (eigenvector or filter-normalised random)."""
    n = P.landscape_examples
    plots.line_scan(curvature.line_scan(models[eps], x[:n], y[:n], eps, Z, direction, spectra[eps].vectors[0], scale,
                                      P.points, P.seed), eps, direction)


if P.interactive:
    interact_or_draw(draw_landscape, True, {"eps": (list(models), max(models)),
                                            "direction": (("eigenvector", "random"), "eigenvector"),
                                            "scale": (0.05, 2.0, 0.05, P.span)})

# %% [markdown]
# ## Claims

# %%
claims.report(out.claims)
