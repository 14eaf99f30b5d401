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
# # 05 · Periodic adversarial scheduling: learning-rate sensitivity and Table 1
#
# Liu et al. (NeurIPS 2020), Sec 5, eq. (5), Fig 5, Table 1.
#
# The budget is warmed up with a cosine or linear scheduler (eq. 5, clipped to $[0,\epsilon]$) instead
# of being constant from the first update; with periodic adversarial scheduling (PAS) the budget and
# the learning rate restart at the start of each period and the models at the period ends form an
# ensemble (mean of their softmax outputs). Robustness is measured with the training attack (PGD),
# PGD100, APGD-CE, APGD-DLR (the AutoAttack authors' `pyautoattack`) and the black-box Square attack,
# and per example under the worst of them.

# %%
from landscape_core.core.io import save_figure
from landscape_core.report import plots, tables
from landscape_core.report.claims import Claims, fmt
from landscape_core.report.notebook import start
from landscape_core.data import load_data
from landscape_core.report import summaries
from landscape_core.studies import pas

_before = set(globals())

# %% tags=["parameters"]
profile = 'smoke'
seed = 0
device = 'cpu'
interactive = False
progress = False
training = dict(dataset='mnist5k', download=False, n_train=400, arch='lenet', width=2, pgd_steps=5,
                step_ratio=0.25, optimizer='adam', lr=1.0e-3, batch_size=100, epochs=2)
n_test = 100
eps = 0.4
lrs = (0.001, 0.01)
seeds = 1
periods = 2
resets = ()
periodic_scheduler = 'cosine'
periodic_lr_schedule = 'constant'
periodic_lr_milestones = ()
attacks = ('PGD', 'PGD100', 'APGD100-CE', 'APGD100-DLR', 'Square5K')
pgd100_steps = 20
apgd_steps = 20
apgd_restarts = 1
square_queries = 100
eval_batch_size = 100

# %%
P, out = start(pas.PASParams, globals(), _before)
claims = Claims(out.notebook, P.profile)
dev = P.torch_device()
T = P.training
data = load_data(T.data_spec())
suite = P.suite()
print(f"{T.dataset}: {len(data[0].y)} training / {min(P.n_test, len(data[1].y))} test images; {T.arch}-{T.width},"
      f" eps {P.eps:g}, PGD-{T.pgd_steps} training, {T.epochs} epochs, {P.seeds} seed(s)")
print("evaluation:", ", ".join(f"{k} ({v.name}, {v.steps if v.name != 'square' else v.n_queries})"
                               for k, v in suite.items()))

# %% [markdown]
# ## The schedules used
# Budget (left): constant, cosine ($\epsilon_{max}=1.5\epsilon$) and linear ($\epsilon_{max}=2\epsilon$)
# warm-up, and the periodic version used by PAS; learning rate of the PAS runs (right).

# %%
eps_schedules, lr_schedule = pas.schedules(P)
save_figure(plots.schedules(eps_schedules, r"budget $\epsilon$"), out.figure("eps_schedules"))
save_figure(plots.schedules({"PAS": lr_schedule}, "learning rate"), out.figure("lr_schedule"))

# %% [markdown]
# ## Fig 5: robust test error against the learning rate

# %%
result = pas.run(P, out.runs, device=dev, data=data)
fig5 = result.fig5
print(summaries.fig5_table(result))
save_figure(plots.lr_sensitivity(fig5, list(P.lrs)), out.figure("fig5"))

# %% [markdown]
# ## Table 1: the attack suite on the models at the Table 1 learning rate

# %%
rows = result.rows
table = tables.results_table(rows)
tables.write_table(table, out.tables / "table1")
print(summaries.table1(table))

# %% [markdown]
# The paper's Table 1 row of the same task (MNIST LeNet: 100 epochs, width 16, PGD-50, 10,000 test images), beside ours:

# %%
print(summaries.paper_comparison(table, T.dataset, T.arch, label=f"ours ({P.profile})"))

# %% [markdown]
# ## Claims

# %%
pgd_err = {s: fig5[s][P.table_lr][0] for s in pas.SCHEDULERS}
claims.check("Table 1 / Fig 5: cosine and linear warm-up give lower robust error than constant eps",
             pgd_err["cosine"] < pgd_err["constant"] and pgd_err["linear"] < pgd_err["constant"],
             f"PGD robust error at lr {P.table_lr:g}: constant {fmt(pgd_err['constant'])}, cosine "
             f"{fmt(pgd_err['cosine'])}, linear {fmt(pgd_err['linear'])} (%)", "both warm-ups < constant")
top = max(P.lrs)
claims.check("Fig 5: at the largest learning rate constant eps degrades (or collapses) while warm-up does not",
             fig5["constant"][top][0] > max(fig5["cosine"][top][0], fig5["linear"][top][0]),
             f"PGD robust error at lr {top:g}: constant {fmt(fig5['constant'][top][0])}, cosine "
             f"{fmt(fig5['cosine'][top][0])}, linear {fmt(fig5['linear'][top][0])} (%)",
             "constant > both warm-ups at the largest lr")
e_mean, f_mean = result.mean_over_seeds("ensemble", "PGD"), result.mean_over_seeds("final member", "PGD")
claims.check("Table 1: the periodic (PAS) ensemble beats its single final member",
             e_mean < f_mean, f"PGD robust error: ensemble {fmt(e_mean)}, final member {fmt(f_mean)} (%)",
             "ensemble < final member (mean over seeds)")
white = [c for c in ("PGD", "PGD100", "APGD100-CE", "APGD100-DLR") if c in suite]
if "Square5K" in suite:
    gap = max(r["Square5K"] - max(r[c] for c in white) for r in rows)
    claims.check("Table 1: Square (black-box) does not beat the white-box attacks (no gradient masking)",
                 gap <= 1.0, f"largest (Square - strongest white-box) over all evaluated models: {gap:+.2f} points",
                 "Square <= strongest white-box + 1 point for every model")
if "APGD100-CE" in suite and "PGD100" in suite:
    gap = min(r["APGD100-CE"] - r["PGD100"] for r in rows)
    claims.check("Table 1: APGD is at least as strong as PGD100", gap >= -1.0,
                 f"smallest (APGD100-CE - PGD100) over all evaluated models: {gap:+.2f} points",
                 "APGD-CE >= PGD100 - 1 point for every model")

# %%
claims.report(out.claims)
