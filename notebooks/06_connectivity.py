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
# # 06 · Mode connectivity: adversarial minima are less connected
#
# Liu et al. (NeurIPS 2020), Sec 6 and App C.2.5, with the Bezier curves of Garipov et al. (2018).
#
# Two models trained with the same spec and different seeds are joined by a quadratic Bezier curve
# whose control point is trained (t drawn uniformly per mini-batch; PGD generated at the point of the
# curve for adversarial training). In vanilla training such curves are nearly flat; the paper finds that
# under a large budget the path between two adversarially trained minima must climb over suboptimal
# regions. The barrier height is the maximum of the loss along a path minus the mean of its end points;
# it is compared relative to the end points' loss.

# %%
import matplotlib.pyplot as plt
import numpy as np

from landscape_core import curves, dynamics
from landscape_core.attacks import make_attack
from landscape_core.claims import Claims, fmt
from landscape_core.experiments import ConnectivityParams
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
curve_epochs = 1
curve_lr = 1.0e-3
curve_optimizer = 'adam'
n_bends = 1
points = 5
n_eval = 100

# %%
P, out = start(ConnectivityParams, globals(), _before)
claims = Claims(out.notebook, P.profile)
Z, data = dynamics.zoo(P.profile)
dev = P.torch_device()
x, y = data[0].x.to(dev), data[0].y.to(dev)
xe, ye = x[: P.n_eval], y[: P.n_eval]
budgets = (0.0, max(Z.eps_list))
spec = curves.CurveTrainSpec(epochs=P.curve_epochs, batch_size=Z.batch_size, lr=P.curve_lr,
                             optimizer=P.curve_optimizer, n_bends=P.n_bends, seed=P.seed)
ts = np.linspace(0, 1, P.points)
print(f"end points: {Z.arch}-{Z.width} trained as in 02 with seeds {Z.seed} and {Z.seed + 1}, eps {budgets}")

# %%
paths = {}
for eps in budgets:
    ends = [get_or_train(dynamics.eps_spec(Z.replace(seed=Z.seed + s), eps), out.runs, device=dev, data=data)
            for s in (0, 1)]
    train_attack = ends[0].spec.attack
    attack = make_attack(train_attack) if eps > 0 else None
    ck = out.runs / f"curve_{ends[0].path.name}_{ends[1].path.name}_{spec.digest()}.pt"
    paths[eps] = curves.connect(ends[0].model(device=dev), ends[1].model(device=dev), x, y, xe, ye, spec, ts,
                                attack, checkpoint_path=ck, seed=P.seed, progress=P.progress)

# %% [markdown]
# ## Loss and error along the straight line and the trained curve

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
rows = []
for eps, res in paths.items():
    kind = "clean" if eps == 0 else "adversarial"
    for name, ls in (("line", "--"), ("curve", "-")):
        sc = res[name]
        loss = sc.clean_loss if eps == 0 else sc.adv_loss
        err = sc.clean_err if eps == 0 else sc.adv_err
        axes[0].plot(ts, loss, ls, marker="o", ms=3, label=rf"$\epsilon$={eps:g} {name}")
        axes[1].plot(ts, 100 * err, ls, marker="o", ms=3, label=rf"$\epsilon$={eps:g} {name}")
        ends = 0.5 * (loss[0] + loss[-1])
        b = curves.barrier_height(loss)
        rows.append({"training": kind, "eps": eps, "path": name, "endpoint loss": ends, "barrier": b,
                     "relative barrier": b / ends, "max error (%)": 100 * err.max()})
axes[0].set(xlabel="t", ylabel="loss (adversarial for eps > 0)")
axes[1].set(xlabel="t", ylabel="error (%) (robust for eps > 0)")
axes[0].legend(fontsize=7)
fig.tight_layout()
save_figure(fig, out.figure("paths"))

header = "| training | eps | path | endpoint loss | barrier | relative barrier | max error (%) |"
lines = [header, "|---|---|---|---|---|---|---|"]
lines += [f"| {r['training']} | {r['eps']:g} | {r['path']} | {r['endpoint loss']:.4f} | {r['barrier']:.4f} |"
          f" {r['relative barrier']:.3f} | {r['max error (%)']:.1f} |" for r in rows]
print("\n".join(lines))
atomic_write_text(out.tables / f"{out.notebook}.md", "\n".join(lines) + "\n")

# %% [markdown]
# ## Claims

# %%
rel = {(r["eps"], r["path"]): r["relative barrier"] for r in rows}
adv, clean = rel[(budgets[1], "curve")], rel[(0.0, "curve")]
claims.check("App C.2.5: the adversarial barrier along the trained curve is higher (relative to the end points)"
             " than the clean one", adv > clean,
             f"relative barrier along the curve: adversarial (eps={budgets[1]:g}) {fmt(adv)}, clean {fmt(clean)}",
             "adversarial relative barrier > clean relative barrier")
claims.check("Garipov et al.: curve training lowers the barrier of the straight line",
             all(rel[(e, "curve")] < rel[(e, "line")] for e in budgets),
             "relative barrier line -> curve: " + ", ".join(
                 f"eps={e:g} {fmt(rel[(e, 'line')])} -> {fmt(rel[(e, 'curve')])}" for e in budgets),
             "curve < line for both budgets")

# %%
claims.report(out.claims)
