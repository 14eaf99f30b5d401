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
import numpy as np

from landscape_core import pas, plots
from landscape_core import evaluate as ev
from landscape_core.claims import Claims, fmt, fmt_list
from landscape_core.data import load_data
from landscape_core.experiments import PASParams
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
n_train = 400
n_test = 100
arch = 'lenet'
width = 2
eps = 0.4
pgd_steps = 5
step_ratio = 0.25
optimizer = 'adam'
batch_size = 100
epochs = 2
lrs = (0.001, 0.01)
table_lr = 1.0e-3
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
P, out = start(PASParams, globals(), _before)
claims = Claims(out.notebook, P.profile)
dev = P.torch_device()
spec0 = pas.run_spec(P, "constant", P.table_lr, P.seed)
data = load_data(spec0.data)
x_test, y_test = data[1].x[: P.n_test], data[1].y[: P.n_test]
ev_spec = ev.EvalSpec(attacks=P.attacks, batch_size=P.eval_batch_size, pgd100_steps=P.pgd100_steps,
                      apgd_steps=P.apgd_steps, apgd_restarts=P.apgd_restarts, square_queries=P.square_queries,
                      seed=P.seed)
suite = ev_spec.suite(P.dataset, P.eps, spec0.attack)
pgd_only = {"PGD": suite["PGD"]}
print(f"{P.dataset}: {len(data[0].y)} training / {len(y_test)} test images; {P.arch}-{P.width}, eps {P.eps:g},"
      f" PGD-{P.pgd_steps} training, {P.epochs} epochs, {P.seeds} seed(s)")
print("evaluation:", ", ".join(f"{k} ({v.name}, {v.steps if v.name != 'square' else v.n_queries})"
                               for k, v in suite.items()))

# %% [markdown]
# ## The schedules used
# Budget (left): constant, cosine ($\epsilon_{max}=1.5\epsilon$) and linear ($\epsilon_{max}=2\epsilon$)
# warm-up, and the periodic version used by PAS; learning rate of the PAS runs (right).

# %%
periodic_spec = pas.run_spec(P, P.periodic_scheduler, P.table_lr, P.seed, periodic=True)
eps_schedules = {s: pas.run_spec(P, s, P.table_lr, P.seed).eps_spec for s in pas.SCHEDULERS}
eps_schedules[f"PAS {P.periodic_scheduler}"] = periodic_spec.eps_spec
save_figure(plots.schedules(eps_schedules, r"budget $\epsilon$"), out.figure("eps_schedules"))
save_figure(plots.schedules({"PAS": periodic_spec.lr_spec}, "learning rate"), out.figure("lr_schedule"))

# %% [markdown]
# ## Fig 5: robust test error against the learning rate

# %%
fig5 = {s: {} for s in pas.SCHEDULERS}
models = {}
for cell in pas.grid(P):
    run = get_or_train(pas.run_spec(P, cell["scheduler"], cell["lr"], cell["seed"]), out.runs, device=dev,
                       progress=P.progress, data=data)
    models[(cell["scheduler"], cell["lr"], cell["seed"])] = run.model(device=dev)
for s in pas.SCHEDULERS:
    for lr in P.lrs:
        errs = [100 * ev.evaluate(models[(s, lr, P.seed + k)], x_test, y_test, pgd_only,
                                  batch_size=P.eval_batch_size, seed=P.seed).robust_error["PGD"]
                for k in range(P.seeds)]
        fig5[s][lr] = ev.mean_std(errs)
print("robust test error (%) under the training PGD, mean(std) over seeds")
print("lr        " + "".join(f"{s:>14}" for s in pas.SCHEDULERS))
for lr in P.lrs:
    print(f"{lr:<10g}" + "".join(f"{ev.paper_format(*fig5[s][lr]):>14}" for s in pas.SCHEDULERS))
save_figure(plots.lr_sensitivity(fig5, list(P.lrs)), out.figure("fig5"))

# %% [markdown]
# ## Table 1: the attack suite on the models at the Table 1 learning rate

# %%
rows = []
for s in pas.SCHEDULERS:
    for k in range(P.seeds):
        r = ev.evaluate(models[(s, P.table_lr, P.seed + k)], x_test, y_test, suite, batch_size=P.eval_batch_size,
                        seed=P.seed, progress=P.progress)
        rows.append({"periodic": "No", "scheduler": s.capitalize(), "model": "final", "seed": P.seed + k, **r.row()})
for k in range(P.seeds):
    run = get_or_train(pas.run_spec(P, P.periodic_scheduler, P.table_lr, P.seed + k, periodic=True), out.runs,
                       device=dev, progress=P.progress, data=data)
    res = ev.evaluate_members_and_ensemble(run.snapshots(dev), x_test, y_test, suite,
                                           batch_size=P.eval_batch_size, seed=P.seed, progress=P.progress)
    final = f"member_{len(run.spec.snapshots)}"
    for name in (final, "ensemble"):
        rows.append({"periodic": "Yes", "scheduler": P.periodic_scheduler.capitalize(),
                     "model": "final member" if name == final else "ensemble", "seed": P.seed + k, **res[name].row()})
table = ev.results_table(rows)
ev.write_table(table, out.tables / "table1")
formatted = ev.format_table(table)
cols = ["periodic", "scheduler", "model", *ev.TABLE1_COLUMNS, "Worst"]
cols = [c for c in cols if c in formatted[0]]
print(" | ".join(f"{c:>11}" for c in cols))
for row in formatted:
    print(" | ".join(f"{str(row[c]):>11}" for c in cols))

# %% [markdown]
# The paper's MNIST LeNet row (100 epochs, width 16, PGD-50, 10,000 test images), beside ours:

# %%
for row in table[:3]:
    print(ev.compare_with_paper(row, "mnist_lenet", False, row["scheduler"], label=f"ours ({P.profile})"))

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
ens = [r for r in rows if r["model"] == "ensemble"]
fin = [r for r in rows if r["model"] == "final member"]
e_mean, f_mean = np.mean([r["PGD"] for r in ens]), np.mean([r["PGD"] for r in fin])
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
