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
from landscape_core.core.io import save_figure
from landscape_core.report import plots, summaries, tables, views
from landscape_core.report.claims import Claims
from landscape_core.report.notebook import interact_or_draw, start
from landscape_core.studies import cosine
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
n_test = 100
a_values = (0.0, 0.05, 0.1)
repeats = 2

# %%
P, out = start(cosine.CosineParams, globals(), _before)
claims = Claims(out.notebook, P.profile)
Z = P.zoo
train_split, test_split = data = zoo_data(Z)
dev = P.torch_device()
x, y = train_split.x[: P.n_examples].to(dev), train_split.y[: P.n_examples].to(dev)
xt, yt = test_split.x[: P.n_test].to(dev), test_split.y[: P.n_test].to(dev)
budgets = P.budgets                                 # at eps = 0 there is no perturbation to compare
print(f"models of 02: {Z.training.arch}-{Z.training.width}, eps {budgets}; {len(y)} training / {len(yt)} test examples")

# %%
zoo_runs = load_zoo(Z, out.runs, device=dev, data=data)
print(summaries.health(zoo_runs.health))
results = cosine.similarities(zoo_runs.models(dev), x, y, xt, yt, P, zoo_runs.health)
skipped = [e for e in budgets if e not in results]
if skipped:
    print(f"not analysed (constant classifiers): eps {skipped}")
tables.show(tables.similarity_rows(cosine.by_direction(results)), out.table())

# %% [markdown]
# ## Fig 4: cosine similarity against $a$ (eigenvector dashed, random solid)

# %%
save_figure(plots.perturbation_similarity(results), out.figure("fig4"))

# %% [markdown]
# Interactive (JupyterLab): moving $a$ shows the cosine similarity and robust error there, eigenvector against random.

# %%
if P.interactive:
    interact_or_draw(views.similarity_view, True, {"a": (0.0, max(P.a_values), 0.01, max(P.a_values))}, results=results)

# %% [markdown]
# ## Claims
# The sentences are about the minima of adversarially trained models: they are tested on the budgets
# whose model **converged** (02's regime), and are untestable at this scale when none did. The cosine
# rule reads each direction's deepest drop over $a$; the error rule compares the eigenvector's rise with
# the random direction's largest change (rules and their calibration on the slides' tables:
# `landscape_core/report/catalogue.py`).

# %%
table = cosine.perturbation_table(results)
claims.test("fig4_cosine", table, {e: zoo_runs.health[e] for e in budgets})
claims.test("fig4_error", table, len(yt), {e: zoo_runs.health[e] for e in budgets})
claims.report(out.claims)
