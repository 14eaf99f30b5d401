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
from landscape_core.report.claims import Claims, Regime, fmt_list
from landscape_core.report.notebook import interact_or_draw, start
from landscape_core.studies import cosine
from landscape_core.studies.gradient_dynamics import load_zoo, zoo_data

_before = set(globals())

# %% tags=["parameters"]
profile = 'smoke'
seed = 0
device = 'cpu'
interactive = False
progress = False
variant = ''
zoo = {'training': {'dataset': 'mnist5k', 'download': False, 'n_train': 600, 'arch': 'lenet', 'width': 2,
                    'pgd_steps': 5, 'step_ratio': 0.25, 'optimizer': 'adam', 'lr': 0.001,
                    'batch_size': 100, 'epochs': 2, 'precision': 'fp32'},
       'eps_list': (0.0, 0.2, 0.4), 'seed': 0}
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
# Drops are measured from the $a=0$ baseline to the largest $a$. The claims are about adversarially
# trained models: they are checked on the budgets whose model left the initial plateau (a constant
# classifier has no curvature to probe), and are untestable at this scale when none did.

# %%
trained = [e for e in results if zoo_runs.health[e].trained]
regime = Regime.trained({f"eps={e:g}": zoo_runs.health[e] for e in budgets}, "adversarially trained models", need=1)
drop, rise = cosine.changes({e: results[e] for e in trained})
claims.check("Fig 4: cosine similarity falls much faster along the top eigenvector than along a random direction",
             all(de > 0.05 and de > 2 * dr for de, dr in zip(drop["Eigenvector"], drop["Random"])),
             f"cosine drop at a={P.a_values[-1]:g}: eigenvector {fmt_list(drop['Eigenvector'])},"
             f" random {fmt_list(drop['Random'])} (eps {fmt_list(trained, 2)})",
             "for every trained eps: eigenvector drop > 0.05 and > 2x the random drop", regime)
claims.check("Sec 4.2: robust test error rises along the eigenvector and stays flat along the random direction",
             all(r >= 5 for r in rise["Eigenvector"]) and all(abs(r) < 2 for r in rise["Random"]),
             f"error change (points) at a={P.a_values[-1]:g}: eigenvector {fmt_list(rise['Eigenvector'])},"
             f" random {fmt_list(rise['Random'])} (eps {fmt_list(trained, 2)})",
             "for every trained eps: eigenvector rise >= 5 points, |random change| < 2 points", regime)

# %%
claims.report(out.claims)
