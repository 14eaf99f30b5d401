"""The setup table: every setting the sources state, their words, and what each profile does.

One row per setting: the sources' value and where it is said (quoted), the value of each profile read from
its validated parameters, and the status of the paper profile: "as the paper", or why it departs. Settings
the sources do not state are listed too ("not in the sources", with what we chose). ``tests/test_setup.py``
fails when the paper profile departs from a stated setting without a reason in its row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..studies.pas import EPS_MAX_RATIO

__all__ = ["Setting", "SETTINGS", "setup_rows"]

Params = Mapping[str, Any]          # notebook name -> its validated parameters


@dataclass(frozen=True)
class Setting:
    setting: str
    source: Any                  # the sources' value (None: not stated)
    where: str                   # where it is said, with the words
    value: Callable[[Params], Any]   # the profile's value, from its validated parameters
    departs: str = ""            # why the paper profile differs from the sources (empty: it must not)


def _t(P: Params, nb: str = "02_gradient_dynamics"):
    return P[nb].training


def _task(P: Params, nb: str, name: str):
    return next((t for t in P[nb].tasks if t.name == name), None)


def _attack(T, eps: float) -> str:
    a = T.attack(eps)
    step = f"{a.step_size * 255:.3g}/255" if T.dataset.startswith("cifar") else f"{a.step_size:.3g}"
    return f"PGD-{a.steps}, step {step}"


def _num(x: float) -> str:
    """1e-4 as the sources write it (not 0.0001)."""
    if x and abs(x) < 0.01:
        m, e = f"{x:.1e}".split("e")
        return f"{float(m):g}e{int(e)}"
    return f"{x:g}"


def _lr_text(schedule: str, milestones, epochs: int) -> str:
    if schedule == "constant":
        return "constant"
    if schedule == "step":
        return f"lr / 10 after {' and '.join(f'{m * epochs:g}' for m in milestones)} of {epochs} epochs"
    return schedule


def _curve(P: Params, nb: str) -> str:
    c = P[nb].curve_spec()
    opt = f"SGD lr {c.lr:g}, momentum {c.momentum:g}" if c.optimizer == "sgd" else f"Adam lr {_num(c.lr)}"
    lr = (f"lr / 10 after {' and '.join(str(m) for m in c.lr_milestones)} of {c.epochs} epochs" if c.lr_milestones
          else f"constant lr, {c.epochs} epochs")
    return f"{opt}, weight decay {_num(c.weight_decay)}, {lr}"


CIFAR_ZOO = "cifar10_resnet18"      # 02's CIFAR10 task: 03, 04 and 06 run on its zoo too ("<notebook> [task]")


def _cifar(P: Params, nb: str, name: str, get: Callable) -> Any:
    t = _task(P, nb, name)
    return None if t is None else get(t)


_ARCH = {"vgg16": "VGG", "resnet18": "ResNet18", "lenet": "LeNet"}

SETTINGS: tuple[Setting, ...] = (
    Setting("MNIST: training set", "all 60,000", "Sec 4-5 (MNIST)",
            lambda P: "all 60,000" if _t(P).dataset == "mnist" and _t(P).n_train is None
            else f"{_t(P).train_size} of {_t(P).dataset}"),
    Setting("MNIST: network", "LeNet, width 16", "original README: --model_type lenet --width 16",
            lambda P: f"{'LeNet' if _t(P).arch == 'lenet' else _t(P).arch}, width {_t(P).width}"),
    Setting("MNIST: optimiser and learning rate", "Adam, 1e-4",
            "original README (train_normal.py, eps 0.4): --optim name=adam,lr=1e-4 --lr_schedule name=constant",
            lambda P: f"{'Adam' if _t(P).optimizer == 'adam' else _t(P).optimizer}, {_num(_t(P).lr)}"),
    Setting("MNIST: epochs", 100, 'Sec 5: "For MNIST, we train each model for 100 epochs"', lambda P: _t(P).epochs),
    Setting("MNIST: training attack at eps 0.1", "PGD-20, step 0.01",
            'reviewer 1: "PGD attack with 0.01 step size and eps/.01 + 10 iterations (MNIST)"; original README, '
            "Hessian at eps 0.1: step_size=0.01, iter_num=20", lambda P: _attack(_t(P), 0.1)),
    Setting("MNIST: training attack at eps 0.4", "PGD-50, step 0.01",
            "original README (train_normal.py, eps 0.4): --attack name=pgd,step_size=0.01,iter_num=50",
            lambda P: _attack(_t(P), 0.4)),
    Setting("Fig 2 / Fig 8: windows (MNIST)", "500 updates",
            'slides (Fig 8): "during the first or last 500 mini-batch updates for MNIST models"',
            lambda P: f"{P['02_gradient_dynamics'].first_n} updates"),
    Setting("Fig 2: windows (CIFAR10)", "2000 updates",
            'Sec 4.1: "during the first 2000 mini-batch updates for CIFAR10 models"',
            lambda P: _cifar(P, "02_gradient_dynamics", "cifar10_resnet18",
                             lambda t: f"{t.first_n or P['02_gradient_dynamics'].first_n} updates")),
    Setting("CIFAR10: networks", "VGG and ResNet18, width 8",
            "Table 1 (CIFAR10 VGG, CIFAR10 ResNet18); original README: --model_type resnet --width 8",
            lambda P: (" and ".join(_ARCH.get(t.training.arch, t.training.arch) for t in P["05_pas_table1"].tasks)
                       + f", width {'/'.join(sorted({str(t.training.width) for t in P['05_pas_table1'].tasks}))}")
            if P["05_pas_table1"].tasks else None),
    Setting("CIFAR10: optimiser", "SGD, lr 0.1",
            "original README (train_curve.py): --optim name=sgd,lr=0.1,momentum=0.9",
            lambda P: _cifar(P, "05_pas_table1", "cifar10_resnet18",
                             lambda t: f"{t.training.optimizer.upper()}, lr {t.training.lr:g}")),
    Setting("CIFAR10: epochs", 200, 'Sec 5: "For CIFAR10, we train each model for 200 epochs"',
            lambda P: _cifar(P, "05_pas_table1", "cifar10_resnet18", lambda t: t.training.epochs)),
    Setting("CIFAR10: learning rate schedule", "lr / 10 after 100 and 150 of 200 epochs",
            "original README: --lr_schedule name=jump,min_jump_pt=100,jump_freq=50,power=0.1",
            lambda P: _cifar(P, "05_pas_table1", "cifar10_resnet18",
                             lambda t: _lr_text(t.lr_schedule, t.lr_milestones, t.training.epochs))),
    Setting("Fig 2 (CIFAR10 zoo): learning rate schedule", None,
            "not in the sources; the original code's CIFAR10 schedule (row above) is taken: a vanilla model whose "
            'late gradient is "almost zero" (Fig 2d) needs a decayed lr',
            lambda P: _cifar(P, "02_gradient_dynamics", "cifar10_resnet18",
                             lambda t: _lr_text(t.lr_schedule, t.lr_milestones, t.training.epochs))),
    Setting("CIFAR10: training attack at 8/255", "PGD-10, step 2/255",
            'reviewer 1: "10 iterations and eps / 4 for CIFAR10"; original README: step_size=2,threshold=8,'
            "iter_num=10", lambda P: _cifar(P, "05_pas_table1", "cifar10_resnet18",
                                            lambda t: _attack(t.training, 8 / 255))),
    Setting("Periodic lr (CIFAR10): resets", "after 100 and 150 of 200 epochs",
            'Sec 5: "we reset the learning rate and the adversarial budget after 100 and 150 epochs"',
            lambda P: _cifar(P, "05_pas_table1", "cifar10_resnet18",
                             lambda t: f"after {' and '.join(f'{r:g}' for r in t.resets)} of "
                                       f"{t.training.epochs} epochs")),
    Setting("Periodic lr (MNIST)", "none",
            'Sec 5: "For MNIST, we ... do not use a periodic scheduling for the learning rate"',
            lambda P: "none" if not P["05_pas_table1"].has_pas else f"{P['05_pas_table1'].periods} periods"),
    Setting("Fig 5 / Table 1 (MNIST): budget", 0.4, 'Sec 5: "For all models, we used eps = 0.4"',
            lambda P: P["05_pas_table1"].eps),
    Setting("Fig 5: Adam learning rates", "1e-4, 3e-4, 1e-3", "slides' Fig 5 table",
            lambda P: ", ".join(_num(lr) for lr in P["05_pas_table1"].lrs)),
    Setting("Cosine warm-up (MNIST): eps_max", "0.6 at eps 0.4",
            "original README: --attack_threshold_schedule name=cycle_cos,eps_min=0,eps_max=0.6,max=0.4",
            lambda P: f"{EPS_MAX_RATIO['cosine'] * P['05_pas_table1'].eps:g} at eps {P['05_pas_table1'].eps:g}"),
    Setting("Linear warm-up (MNIST): eps_max", None, "not in the sources",
            lambda P: f"{EPS_MAX_RATIO['linear'] * P['05_pas_table1'].eps:g} at eps {P['05_pas_table1'].eps:g}"),
    Setting("Warm-ups (CIFAR10): eps_max", None, "not in the sources",
            lambda P: _cifar(P, "05_pas_table1", "cifar10_resnet18",
                             lambda t: f"{t.eps_max_ratio:g} x 8/255 = {t.eps_max_ratio * 8:g}/255")),
    Setting("Seeds (Table 1, Fig 5)", 3, 'original README: "All experiments are run for three times"',
            lambda P: P["05_pas_table1"].seeds),
    Setting("Table 1: evaluation", "PGD (training), PGD100, APGD100 CE and DLR, Square 5000",
            'Sec 5: "50-iteration PGD for MNIST models and 10-iteration PGD for CIFAR10 ... 100-iteration PGD ... '
            'AutoPGD ... for 100 iterations ... SquareAttack [3] for 5000 iterations"',
            lambda P: (f"PGD (training), PGD{P['05_pas_table1'].pgd100_steps}, APGD{P['05_pas_table1'].apgd_steps} "
                       f"CE and DLR, Square {P['05_pas_table1'].square_queries}")),
    Setting("Table 1: APGD restarts", None, "not in the sources", lambda P: P["05_pas_table1"].apgd_restarts),
    Setting("Table 1: test set (MNIST)", 10000, "Sec 5: the test set", lambda P: P["05_pas_table1"].n_test),
    Setting("Weight decay of model training", None, "not in the sources (the README gives 1e-6 for the curves only)",
            lambda P: _num(P["02_gradient_dynamics"].zoo().spec(0.1).weight_decay) or "none"),
    Setting("Fig 3: top eigenvalues", 20, 'Sec 4.2: "estimate the top 20 eigenvalues"', lambda P: P["03_hessian"].k),
    Setting("Fig 4: PGD repeats", 4, 'Sec 4.2: "we run each experiment 4 times"',
            lambda P: P["04_cosine_similarity"].repeats),
    Setting("Fig 4 (MNIST): a values", "0, 0.01, 0.03, 0.05, 0.1", "slides' MNIST table",
            lambda P: ", ".join(f"{a:g}" for a in P["04_cosine_similarity"].a_values)),
    Setting("Fig 3, 11, 12 (CIFAR10): the models analysed", "ResNet18, width 8",
            'Sec 4.2: "In Figure 3, we show the top 20 Hessian eigenvalues ... of CIFAR10 models"; Sec 4: "ResNet18 '
            'models on CIFAR10"; original README: --model_type resnet --width 8',
            lambda P: (lambda T: f"{_ARCH.get(T.arch, T.arch)}, width {T.width}")(
                P[f"03_hessian [{CIFAR_ZOO}]"].zoo.training)),
    Setting("Fig 4 (CIFAR10): a values", "0, 0.1, 0.3, 0.5, 1", "slides' CIFAR10 table",
            lambda P: ", ".join(f"{a:g}" for a in P[f"04_cosine_similarity [{CIFAR_ZOO}]"].a_values)),
    Setting("App C.2.5: curve", "Bezier, 3 bends", "original README (train_curve.py): --fix_points 1,0,0,0,1 "
            "--curve_type bezier", lambda P: f"Bezier, {P['06_connectivity'].n_bends} bends"),
    Setting("App C.2.5 (CIFAR10): curve training",
            "SGD lr 0.1, momentum 0.9, weight decay 1e-6, lr / 10 after 100 and 150 of 200 epochs",
            "original README (train_curve.py): --optim name=sgd,lr=0.1,momentum=0.9,weight_decay=1e-6 --lr_schedule "
            "name=jump,min_jump_pt=100,jump_freq=50,power=0.1 --epoch_num 200",
            lambda P: _curve(P, f"06_connectivity [{CIFAR_ZOO}]")),
    Setting("App C.2.5 (MNIST): curve training", None,
            "not in the sources (the README's curve command is CIFAR10's): trained like the end points (02's optimiser, "
            "lr and epochs)", lambda P: _curve(P, "06_connectivity")),
    Setting("App C.2.3: learning-rate warm-up", None,
            'not in the sources (Sec 5: "warmup of the learning rate does not yield similar benefits"; App C.2.3 is '
            "not in our copy): at constant eps, the lr rises linearly from 0 as the linear eps warm-up does",
            lambda P: (f"linear from 0, reaching the lr at {P['05_pas_table1'].lr_warmup:g} of the run, at each Fig 5 lr"
                       if P["05_pas_table1"].lr_warmup else "none")),
)


def setup_rows(profiles: Mapping[str, Params]) -> list[dict]:
    """The table: one row per setting, the sources' value and words, each profile's value, and the paper
    profile's status. ``profiles``: profile name -> notebook name -> validated parameters."""
    rows = []
    for s in SETTINGS:
        values = {name: _value(s, P) for name, P in profiles.items()}
        paper = values.get("paper")
        if s.source is None:
            status = "not in the sources: our choice"
        elif _same(paper, s.source):
            status = "as the paper"
        else:
            status = f"departs: {s.departs}" if s.departs else "DEPARTS, unexplained"
        rows.append({"setting": s.setting, "sources": "-" if s.source is None else s.source, "where": s.where,
                     **{f"{name} profile": "-" if v is None else v for name, v in values.items()}, "paper status": status})
    return rows


def _value(s: Setting, P: Params):
    try:
        return s.value(P)
    except (AttributeError, KeyError, IndexError, TypeError):
        return None


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-9 * max(1.0, abs(b))
    return str(a) == str(b)
