# %% [markdown]
# # 06 · Mode connectivity: adversarial minima are less connected
#
# Liu et al. (NeurIPS 2020), Sec 6 and App C.2.5, with the Bezier curves of Garipov et al. (2018).
#
# Two models trained with the same spec and different seeds are joined by a quadratic Bezier curve
# whose control point is trained (t drawn uniformly per mini-batch; PGD generated at the point of the
# curve for adversarial training). In vanilla training such curves are nearly flat; the paper finds that
# under a large budget the path between two adversarially trained minima must climb over suboptimal
# regions. The barrier height is the maximum of the loss along a path minus the mean of its end points.
# End points must be minima: the adversarial ones are 02's models at the largest budget whose model left
# the initial plateau, and the claims are untestable at this scale when an end point did not converge.

# %%
import numpy as np

from landscape_core.core.io import save_figure
from landscape_core.report import plots, summaries, tables, views
from landscape_core.report.claims import Claims
from landscape_core.report.notebook import interact_or_draw, start
from landscape_core.studies import connectivity
from landscape_core.studies.base import zoo_data

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
curve_epochs = 1
curve_lr = 1.0e-3
curve_optimizer = 'adam'
curve_milestones = ()
n_bends = 1
points = 5
n_eval = 100

# %%
P, out = start(connectivity.ConnectivityParams, globals(), _before)
claims = Claims(out.notebook, P.profile)
Z = P.zoo
data = zoo_data(Z)
dev = P.torch_device()

# %%
paths = connectivity.connect_zoo(P, out.runs, device=dev, data=data)
budgets = tuple(paths)
print(f"end points: {Z.training.arch}-{Z.training.width} trained as in 02 with seeds {Z.seed} and {Z.seed + 1}, eps {budgets}")
print(summaries.health(connectivity.end_points(paths)))

# %% [markdown]
# ## Loss and error along the straight line and the trained curve

# %%
save_figure(plots.connectivity_paths(paths, np.linspace(0, 1, P.points)), out.figure("paths"))
rows = connectivity.barrier_rows(paths)
tables.show(rows, out.table(), formats=connectivity.BARRIER_FORMATS)

# %% [markdown]
# Interactive (JupyterLab): moving $t$ marks that point of line and curve, its loss and error in the titles.

# %%
if P.interactive:
    interact_or_draw(views.path_view, True, {"t": (0.0, 1.0, 1 / (P.points - 1), 0.5)}, paths=paths)

# %% [markdown]
# ## Claims
# Sec 6 says the path between two adversarial minima "needs to go over suboptimal regions": the height of
# the barrier along the trained curve (the largest loss on the path above the mean of its end points),
# adversarial against clean. The end points must be minima: every one must have **converged** (02's
# regime). That curve training lowers the line's barrier (Garipov et al.) is our check that the curves
# trained, counted apart.

# %%
claims.test("c25_barrier", rows, connectivity.end_points(paths))
claims.test("garipov", rows, connectivity.end_points(paths))
claims.report(out.claims)
