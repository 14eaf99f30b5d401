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
from landscape_core.report import plots, summaries, views
from landscape_core.report.claims import Claims
from landscape_core.core.io import save_figure
from landscape_core.report.notebook import interact_or_draw, start
from landscape_core.studies.base import zoo_data
from landscape_core.studies.gradient_dynamics import (GradientDynamicsParams, late_gradients, train_task_zoos, train_zoo,
                                                      width_sweep)

_before = set(globals())

# %% tags=["parameters"]
profile = 'smoke'
seed = 0
device = 'cpu'
interactive = False
progress = False
variant = ''
training = {'dataset': 'mnist5k', 'download': False, 'n_train': 600, 'arch': 'lenet', 'width': 2,
            'pgd_steps': 5, 'step_ratio': 0.25, 'pgd_step': None, 'optimizer': 'adam', 'lr': 0.001, 'batch_size': 100,
            'epochs': 2, 'precision': 'fp32'}
eps_list = (0.0, 0.2, 0.4)
first_n = 6
last_n = 6
stall_eps = 0.4
stall_widths = (1, 2, 4)
stall_epochs = 1
tasks = ()

# %%
P, out = start(GradientDynamicsParams, globals(), _before)
claims = Claims(out.notebook, P.profile)
dev = P.torch_device()
T = P.training
data = zoo_data(P.zoo())
print(f"{T.dataset}: {len(data[0].y)} training images; {T.arch}-{T.width}, {T.epochs} epochs, "
      f"{T.attack_rule()}, {T.optimizer} lr {T.lr:g}")

# %% [markdown]
# ## Training one model per budget

# %%
zoo = train_zoo(P.zoo(), out.runs, first_n=P.first_n, last_n=P.last_n, device=dev, progress=P.progress, data=data)
print(f"updates per run: {zoo.updates}; windows: first {P.first_n}, last {P.last_n}")
print(summaries.zoo_table(zoo))
save_figure(plots.gradient_dynamics(zoo.probes, P.first_n, P.last_n, smooth=max(P.first_n // 20, 1)),
            out.figure("fig2"))

# %% [markdown]
# Interactive (JupyterLab): a budget (or all) and the first or last updates redraw panels (a)-(c) for that window.

# %%
if P.interactive:
    interact_or_draw(views.dynamics_view, True, {"eps": (["all", *sorted(zoo.probes)], "all"),
                                                 "window": (("first", "last"), "first")},
                     probes=zoo.probes, first_n=P.first_n, last_n=P.last_n, smooth=max(P.first_n // 20, 1))

# %% [markdown]
# ## Fig 2 on the profile's other tasks
# The paper's Fig 2 shows CIFAR10 ResNet18-8 models (Fig 8 the MNIST LeNets above): the same windows and
# claims on each task the profile lists (`tasks`); the embedded profiles have none (no CIFAR10 offline).

# %%
task_zoos = train_task_zoos(P, out.runs, device=dev)
for name, z in task_zoos.items():
    print(f"{name}:\n{summaries.zoo_table(z)}")
    save_figure(plots.gradient_dynamics(z.probes, z.first_n, z.last_n, smooth=max(z.first_n // 20, 1)),
                out.figure(f"fig2_{name}"))
print(f"{len(task_zoos)} other task(s)")

# %% [markdown]
# ## Claims of Sec 4.1 (on every task)
# Each rule is in the catalogue (`landscape_core/report/catalogue.py`: the sentence, the rule, its regime).
# A trend is Spearman's rank correlation between $\epsilon$ and the window mean, $|\rho| \ge 0.9$ in the
# stated direction. The early windows describe the start of training, the plateau included, so every
# model counts. The late gradients (Fig 2d, Thm 2) are about the final near-minimum region: they are
# tested over the budgets whose model **converged** (trained, and at the end of its training the robust
# training error moved by at most 10% of its whole fall from chance), and are untestable with fewer
# than three. The early fall is the robust training error of the first window's first tenth minus its last.

# %%
for task, z in {"": zoo, **task_zoos}.items():
    eps, w = [w.eps for w in z.windows], z.windows
    claims.test("fig2a", eps, [x.early_grad for x in w], z.first_n, label=task)
    claims.test("fig2b", eps, [x.early_fall for x in w], z.first_n, label=task)
    claims.test("fig2c", eps, [x.dist_at_n for x in w], z.first_n, label=task)
    claims.test("fig2d", eps, [x.late_grad for x in w], z.last_n, z.health, label=task)
    claims.test("fig2d_zero", eps, [x.late_grad for x in w], z.health, label=task)
    claims.test("thm2_tail", late_gradients(z, z.last_n), z.health, label=task)

# %% [markdown]
# ## App C.2.4: dead layers and constant classifiers against width
# Models of several widths trained at $\epsilon$ = `stall_eps`; the smallest width also without attack,
# and with the cosine warm-up of the budget (Sec 6). A run has stalled when it predicts one class for
# every training input, or when most updates of its last epoch see a dead ReLU layer; it has trained when
# it left the initial plateau. If no width trains within the sweep's epochs, the contrast the paper draws
# cannot be seen at this scale: the claim is then untestable.

# %%
sweep = width_sweep(P, out.runs, device=dev, data=data)
print(sweep.describe())
save_figure(plots.dead_layers_vs_width(sweep.stalls, P.stall_eps), out.figure("dead_layers"))
claims.test("c24_width", sweep.stalls[0], sweep.clean, sweep.stalls[-1], P.stall_eps)
claims.test("sec6_small_warmup", sweep.stalls[0], sweep.warmup, P.stall_eps)

# %% [markdown]
# ## Claims

# %%
claims.report(out.claims)
