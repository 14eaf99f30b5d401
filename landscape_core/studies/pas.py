"""05_pas_table1: Sec 5, eq. (5), Fig 5, Table 1 - ε warm-up, learning-rate sensitivity, PAS and Table 1.

* the ε schedulers are eq. (5) with the paper's MNIST settings expressed relative to the target
  (cosine ε_max = 1.5 ε, linear ε_max = 2 ε, ε_min = 0, both clipped at ε - ε reaches the target at
  61% and 50% of a period), the PGD step follows ε (step = ``step_ratio`` × ε in force);
* PAS divides training into periods (``periods`` equal parts, or the paper's CIFAR resets at 100 and
  150 of 200 epochs); ε and the learning rate restart at each reset and the model at the end of every
  period is kept; the prediction is the ensemble of those models (mean of their softmax outputs).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..analysis.attack_grid import AttackGridSpec, Transfer, grid_suite, grid_worst, l2_suite
from ..analysis.dynamics import Health, health
from ..analysis.masking import MaskingSpec, ModelFlags, masking_checks
from ..analysis.robustness import SUITE_ATTACKS, TABLE1_ATTACKS, Ensemble, EvalSpec, EvalSuite, evaluate
from ..analysis.stats import mean_std
from ..core.spec import ParameterError, param
from ..data import Split, load_data
from ..training import ScheduleSpec, TrainSpec, get_or_train
from .base import NotebookParams, Task, TrainingParams, at_most, increasing

__all__ = ["PASParams", "Table1Task", "SCHEDULERS", "LR_WARMUP", "fig5_rows", "EPS_MAX_RATIO", "period_resets", "run_spec", "grid", "PASResult",
           "run", "Evaluated", "table_models", "transfer_spec", "attack_grid", "scheduler_means", "masking", "scheduled_spec", "task_spec",
           "TaskResult", "run_tasks"]

SCHEDULERS = ("constant", "cosine", "linear")
EPS_MAX_RATIO = {"constant": None, "cosine": 1.5, "linear": 2.0}   # MNIST: 0.6 / 0.4 and 0.8 / 0.4
LR_WARMUP = "lr warm-up"     # App C.2.3: constant eps, the learning rate warmed up instead (a row of Fig 5)


@dataclass(frozen=True)
class Table1Task(Task):
    """Another task of Table 1 (the paper's CIFAR10 rows): its data, network, budget and schedules.

    Every scheduler is trained without (``periodic_lr`` holds false: the final model is evaluated) and
    with (true) resets of the learning rate and the budget at ``resets`` (the paper: after 100 and 150 of
    200 epochs), whose rows are the ensemble of the period-end models.  The learning rate follows
    ``lr_schedule`` over the run, or over each period when it resets (milestones are fractions of it:
    0.5, 0.75 decay after 100 and 150 of 200 epochs, the original code's jump schedule).  The warm-ups
    rise to ``eps_max_ratio`` x eps (CIFAR10: 16/255), clipped at eps."""

    eps: float = param(8 / 255, gt=0.0, doc="target budget")
    eps_max_ratio: float = param(2.0, ge=1.0, doc="warm-up eps_max / eps (cosine and linear)")
    resets: tuple[float, ...] = param((100.0, 150.0), each=dict(gt=0.0), min_len=1,
                                      doc="epochs at which the periodic rows reset lr and eps")
    periodic_lr: tuple[bool, ...] = param((False, True), min_len=1,
                                          doc="rows without (false) and with (true) the periodic learning rate")

    def validate(self):
        super().validate()
        where = f"task {self.name}"
        increasing("resets", self.resets, where, strict=True)
        if self.resets[-1] >= self.training.epochs:
            raise ParameterError("resets", list(self.resets), f"must be < training.epochs = {self.training.epochs}",
                                 where)
        if len(set(self.periodic_lr)) != len(self.periodic_lr):
            raise ParameterError("periodic_lr", list(self.periodic_lr), "must not repeat a value", where)


@dataclass(frozen=True)
class PASParams(NotebookParams):
    """05_pas_table1: Sec 5, Fig 5, Table 1.  ``training.lr`` is the learning rate of the Table 1 rows."""

    training: TrainingParams = param(TrainingParams(n_train=400), doc="how each model is trained")
    n_test: int = param(100, ge=10, doc="test examples evaluated")
    eps: float = param(0.4, gt=0.0, doc="target budget (MNIST 0.4, CIFAR10 8/255)")
    lrs: tuple[float, ...] = param((1.0e-3, 1.0e-2), each=dict(gt=0.0), min_len=1, doc="Fig 5 learning rates")
    seeds: int = param(1, ge=1)
    periods: int = param(2, ge=0, doc="PAS periods (equal length) unless resets is given; 0: no PAS run (the "
                                      "paper's MNIST rows: no periodic scheduling)")
    resets: tuple[float, ...] = param((), each=dict(gt=0.0), doc="explicit PAS resets (CIFAR: 100, 150 of 200)")
    lr_warmup: float = param(0.5, ge=0.0, le=1.0, added=True,
                             doc="App C.2.3: the fraction of the run over which a constant-eps run's learning rate "
                                 "rises linearly from 0 (a Fig 5 row at every lr; 0.5: when the linear eps warm-up "
                                 "reaches its target); 0: no such runs")
    periodic_scheduler: str = param("cosine", choices=SCHEDULERS)
    periodic_lr_schedule: str = param("constant", choices=("constant", "step", "cosine_anneal"))
    periodic_lr_milestones: tuple[float, ...] = param((), each=dict(gt=0.0, lt=1.0))
    attacks: tuple[str, ...] = param(TABLE1_ATTACKS, each=dict(choices=SUITE_ATTACKS),
                                     doc="Table 1 columns (MultiTargeted: the second source's, not the paper's)")
    pgd100_steps: int = param(20, ge=1)
    apgd_steps: int = param(20, ge=1)
    apgd_restarts: int = param(1, ge=1)
    square_queries: int = param(100, ge=1)
    eval_batch_size: int = param(100, ge=1)
    attack_grid: AttackGridSpec = param(AttackGridSpec(steps=5, restarts=2, l2_eps=(2.0,), l2_steps=10), added=True,
                                        doc="step-size grid, restarts, L2 and transfer columns (reviewer 1)")
    masking: MaskingSpec = param(MaskingSpec(n_examples=20, iterations=(5, 20, 100), sweep_steps=10,
                                             square_queries=100), added=True, doc="gradient-masking check")
    tasks: tuple[Table1Task, ...] = param((), added=True, doc="Table 1's other tasks (the paper: CIFAR10 VGG16-8 "
                                                             "and ResNet18-8), evaluated with the same attacks")

    def validate(self):
        if self.training.lr not in self.lrs:
            raise ParameterError("training.lr", self.training.lr, f"must be one of lrs = {list(self.lrs)}",
                                 "05_pas_table1")
        increasing("lrs", self.lrs, "05_pas_table1", strict=True)
        if self.periods == 1 and not self.resets:
            raise ParameterError("periods", self.periods, "must be 0 (no PAS run) or at least 2 (one period is the "
                                 "cosine run itself)", "05_pas_table1")
        at_most("n_test", self.n_test, self.training.test_size, "the test set", "05_pas_table1")
        at_most("masking.n_examples", self.masking.n_examples, self.n_test, "n_test", "05_pas_table1")
        Task.check_list(self.tasks, "05_pas_table1")
        for t in self.tasks:
            at_most("n_test", self.n_test, t.training.test_size, f"the test set of task {t.name}", "05_pas_table1")

    @property
    def table_lr(self) -> float:
        return self.training.lr

    @property
    def has_pas(self) -> bool:
        """Whether the notebook trains the PAS run (periodic budget and lr, ensemble of the period ends)."""
        return self.periods > 0 or bool(self.resets)

    def eval_spec(self) -> EvalSpec:
        return EvalSpec(attacks=self.attacks, batch_size=self.eval_batch_size, pgd100_steps=self.pgd100_steps,
                        apgd_steps=self.apgd_steps, apgd_restarts=self.apgd_restarts,
                        square_queries=self.square_queries, seed=self.seed)

    def training_specs(self) -> list[TrainSpec]:
        return ([run_spec(self, *cell) for cell in grid(self)]
                + [run_spec(self, self.periodic_scheduler, self.table_lr, self.seed + k, periodic=True)
                   for k in range(self.seeds) if self.has_pas] + [transfer_spec(self)]
                + [task_spec(t, s, self.seed + k, p) for t in self.tasks for p in t.periodic_lr for s in SCHEDULERS
                   for k in range(self.seeds)])

    def suite(self, task: Table1Task | None = None) -> EvalSuite:
        """The Table 1 attacks at the notebook's budget, or at ``task``'s (its data set, budget, training PGD)."""
        T, eps = (task.training, task.eps) if task else (self.training, self.eps)
        return self.eval_spec().suite(T.dataset, eps, T.attack(eps))


def period_resets(epochs: int, periods: int) -> tuple[float, ...]:
    """Reset epochs for ``periods`` equal periods (the paper's CIFAR split 100/50/50 is given explicitly)."""
    return tuple(float(round(epochs * k / periods)) for k in range(1, periods))


def scheduled_spec(T: TrainingParams, eps: float, scheduler: str, eps_max_ratio: float | None, *, seed: int,
                   periodic: bool = False, resets: tuple[float, ...] = (), lr: float | None = None,
                   lr_schedule: str = "constant", lr_milestones: tuple[float, ...] = (),
                   lr_max: float | None = None) -> TrainSpec:
    """The one way to a run of Sec 5: ``scheduler``'s budget (warm-ups to ``eps_max_ratio`` x ``eps``);
    ``periodic``: lr and eps restart at ``resets`` and the model at every period end is kept."""
    return T.spec(eps, seed=seed, lr=lr, eps_schedule=scheduler,
                  eps_max=None if eps_max_ratio is None else eps_max_ratio * eps, lr_schedule=lr_schedule,
                  lr_milestones=tuple(lr_milestones), lr_max=lr_max, periodic=tuple(resets),
                  snapshots=tuple(int(r) for r in resets) + (T.epochs,) if periodic else ())


def run_spec(P: PASParams, scheduler: str, lr: float, seed: int, periodic: bool = False) -> TrainSpec:
    """A run of the Fig 5 grid (``scheduler`` one of :data:`SCHEDULERS` or :data:`LR_WARMUP`) or of PAS."""
    if scheduler == LR_WARMUP:
        return scheduled_spec(P.training, P.eps, "constant", None, seed=seed, lr=lr, lr_schedule="linear",
                              lr_max=lr / P.lr_warmup)
    resets = (tuple(P.resets) or period_resets(P.training.epochs, P.periods)) if periodic else ()
    return scheduled_spec(P.training, P.eps, scheduler, EPS_MAX_RATIO[scheduler], seed=seed, periodic=periodic,
                          resets=resets, lr=lr,
                          lr_schedule=P.periodic_lr_schedule if periodic else "constant",
                          lr_milestones=tuple(P.periodic_lr_milestones) if periodic else ())


def fig5_rows(P: PASParams) -> tuple[str, ...]:
    """The rows of Fig 5: the eps schedulers, and App C.2.3's learning-rate warm-up when the notebook has it."""
    return SCHEDULERS + ((LR_WARMUP,) if P.lr_warmup > 0 else ())


def grid(P: PASParams) -> list[tuple[str, float, int]]:
    """The Fig 5 grid: every (row, learning rate, seed)."""
    return [(s, lr, P.seed + k) for s in fig5_rows(P) for lr in P.lrs for k in range(P.seeds)]


def schedules(P: PASParams) -> tuple[dict[str, ScheduleSpec], dict[str, ScheduleSpec]]:
    """The ε schedules used (each scheduler, and the periodic one of PAS) and the learning rate, labelled (the
    PAS run's, or the Table 1 runs' when the notebook has no PAS run)."""
    eps = {s: run_spec(P, s, P.table_lr, P.seed).eps_spec for s in SCHEDULERS}
    lr = {"Table 1 runs": run_spec(P, P.periodic_scheduler, P.table_lr, P.seed).lr_spec}
    if P.lr_warmup > 0:
        lr[LR_WARMUP] = run_spec(P, LR_WARMUP, P.table_lr, P.seed).lr_spec
    if not P.has_pas:
        return eps, lr
    periodic = run_spec(P, P.periodic_scheduler, P.table_lr, P.seed, periodic=True)
    eps[f"PAS {P.periodic_scheduler}"] = periodic.eps_spec
    return eps, {**lr, "PAS": periodic.lr_spec}


@dataclass
class Evaluated:
    """One evaluated model of Table 1, built once (:func:`table_models`, :func:`run_tasks`) and read by every
    table and claim: which run it is, the model, and how its training ended."""

    scheduler: str            # constant / cosine / linear
    periodic: bool            # lr and eps reset (PAS)
    kind: str                 # "final" (the run's last model), "final member" or "ensemble" (of the period ends)
    seed: int
    model: nn.Module
    health: Health
    task: str = ""            # a task of Table 1 ('': the notebook's own)

    @property
    def label(self) -> str:
        """Its name in reviewer 1's grid and the masking table: ``cosine seed=0``, ``PAS ensemble seed=0``;
        a task's: ``cifar10_resnet18 Cosine periodic=Yes seed=0``."""
        if self.task:
            return f"{self.task} {self.scheduler.capitalize()} periodic={self.keys()['periodic']} seed={self.seed}"
        return f"{self.scheduler} seed={self.seed}" if self.kind == "final" else f"PAS {self.kind} seed={self.seed}"

    def keys(self) -> dict:
        """The columns that name its Table 1 row."""
        return {"periodic": "Yes" if self.periodic else "No", "scheduler": self.scheduler.capitalize(),
                "model": self.kind, "seed": self.seed}


@dataclass
class PASResult:
    """Fig 5 (robust error under the training PGD, mean and std over seeds, per scheduler and lr), the
    Table 1 models (the three schedulers, the PAS final member and ensemble, per seed) with their
    evaluation under the suite, and how each grid run ended (``health`` by grid cell)."""

    lrs: tuple[float, ...]
    fig5: dict[str, dict[float, tuple[float, float]]]
    models: list[Evaluated]
    results: list[dict]                    # the suite's errors of each of ``models``
    health: dict[tuple[str, float, int], Health]

    @property
    def rows(self) -> list[dict]:
        """Table 1: one row per evaluated model."""
        return [{**m.keys(), **r} for m, r in zip(self.models, self.results)]

    @property
    def row_health(self) -> list[Health]:
        """How each row's run ended, in the order of :attr:`rows`."""
        return [m.health for m in self.models]

    def cells(self, scheduler: str | None = None, lr: float | None = None) -> dict[str, Health]:
        """Health of the grid's runs (of one scheduler, at one lr, or all), labelled for a regime."""
        return {f"{s} lr={l:g} seed={k}": h for (s, l, k), h in self.health.items()
                if scheduler in (None, s) and lr in (None, l)}

    def fig5_means(self) -> dict[str, dict[float, float]]:
        """Fig 5 as the claim rule reads it: scheduler -> lr -> mean robust error (%)."""
        return {s: {lr: m for lr, (m, _) in by_lr.items()} for s, by_lr in self.fig5.items()}


def run(P: PASParams, store: Path, *, device="cpu", data: tuple[Split, Split] | None = None) -> PASResult:
    """Train the Fig 5 grid and the PAS runs (run store), evaluate Fig 5 under PGD and Table 1 under the suite."""
    data = data or load_data(P.training.data_spec())
    x_test, y_test = data[1].x[: P.n_test], data[1].y[: P.n_test]
    suite = P.suite()
    runs = {cell: get_or_train(run_spec(P, *cell), store, device=device, progress=P.progress, data=data)
            for cell in grid(P)}
    healths = {cell: health(r, data[0], device) for cell, r in runs.items()}

    def errors(model, attacks) -> dict:
        return evaluate(model, x_test, y_test, attacks, batch_size=P.eval_batch_size, seed=P.seed,
                        progress=P.progress and len(attacks) > 1).row()

    fig5 = {s: {lr: mean_std([errors(runs[(s, lr, P.seed + k)].model(device=device), {"PGD": suite["PGD"]})["PGD"]
                              for k in range(P.seeds)]) for lr in P.lrs} for s in fig5_rows(P)}
    models = table_models(P, store, device=device, data=data)
    return PASResult(tuple(P.lrs), fig5, models, [errors(m.model, suite) for m in models], healths)


def table_models(P: PASParams, store: Path, *, device="cpu", data: tuple[Split, Split] | None = None
                 ) -> list[Evaluated]:
    """The models of Table 1 (trained first when the store lacks them): each scheduler's run at the Table 1
    lr per seed, then per seed the PAS run's final member and its ensemble (with the PAS run's health)."""
    data = data or load_data(P.training.data_spec())
    out = []
    for s in SCHEDULERS:
        for k in range(P.seeds):
            run = get_or_train(run_spec(P, s, P.table_lr, P.seed + k), store, device=device, progress=P.progress,
                               data=data)
            out.append(Evaluated(s, False, "final", P.seed + k, run.model(device=device), health(run, data[0], device)))
    for k in range(P.seeds if P.has_pas else 0):
        run = get_or_train(run_spec(P, P.periodic_scheduler, P.table_lr, P.seed + k, periodic=True), store,
                           device=device, progress=P.progress, data=data)
        members, h = run.snapshots(device), health(run, data[0], device)
        out += [Evaluated(P.periodic_scheduler, True, "final member", P.seed + k, members[-1], h),
                Evaluated(P.periodic_scheduler, True, "ensemble", P.seed + k, Ensemble(members), h)]
    return out


def transfer_spec(P: PASParams) -> TrainSpec:
    """The surrogate of the transfer column: the cosine warm-up run at the Table 1 lr with a seed no
    evaluated run uses (trained independently of every evaluated model)."""
    return run_spec(P, "cosine", P.table_lr, P.seed + P.seeds)


def attack_grid(P: PASParams, models: list[Evaluated], store: Path, *, device="cpu",
                data: tuple[Split, Split] | None = None) -> list[dict]:
    """Reviewer 1's table: each Table 1 model's robust error (%) under the training PGD, the step-size grid,
    PGD with restarts, the L2 columns and the transfer attack (its surrogate from ``store``), and the
    per-example worst of the L-inf grid."""
    data = data or load_data(P.training.data_spec())
    x, y = data[1].x[: P.n_test].to(device), data[1].y[: P.n_test].to(device)
    train = P.training.attack(P.eps)
    linf = grid_suite(P.eps, P.attack_grid, random_start=train.random_start)
    surrogate = get_or_train(transfer_spec(P), store, device=device, progress=P.progress, data=data).model(device=device)
    transfer = {"transfer": Transfer(surrogate, train)}
    rows = []
    for m in models:
        res = evaluate(m.model, x, y, {"PGD": train, **linf, **l2_suite(P.attack_grid), **transfer},
                       batch_size=P.eval_batch_size, seed=P.seed)
        row = res.row()
        rows.append({"model": m.label, "Clean": row["Clean"], "PGD": row["PGD"], **{c: row[c] for c in linf},
                     "grid worst": grid_worst(res, ["PGD", *linf]), **{c: row[c] for c in res.wrong if c.startswith(
                         ("PGD-L2", "APGD-L2"))}, "transfer": row["transfer"], "end of training": m.health.state()})
    return rows


def scheduler_means(models: list[Evaluated], rows: list[dict], column: str) -> dict[str, float]:
    """Per scheduler (constant, cosine, linear), the mean of ``column`` over the rows of its final models
    (``rows``: one per model of ``models``, as :func:`attack_grid` gives them)."""
    by_label = {m.label: m for m in models}
    out = {}
    for s in SCHEDULERS:
        vals = [r[column] for r in rows if by_label[r["model"]].kind == "final" and by_label[r["model"]].scheduler == s]
        out[s] = sum(vals) / len(vals)
    return out


def masking(P: PASParams, models: list[Evaluated], *, device="cpu",
            data: tuple[Split, Split] | None = None) -> list[ModelFlags]:
    """The gradient-masking flags of every Table 1 model (first ``masking.n_examples`` test points)."""
    data = data or load_data(P.training.data_spec())
    x, y = data[1].x[: P.n_test].to(device), data[1].y[: P.n_test].to(device)
    return masking_checks({m.label: (m.model, m.health) for m in models}, x, y, P.eps, P.masking)


def task_spec(task: Table1Task, scheduler: str, seed: int, periodic: bool) -> TrainSpec:
    """The training run of one Table 1 row of ``task``: ``scheduler``'s warm-up, with or without resets."""
    return scheduled_spec(task.training, task.eps, scheduler, None if scheduler == "constant" else task.eps_max_ratio,
                          seed=seed, periodic=periodic, resets=tuple(task.resets) if periodic else (),
                          lr_schedule=task.lr_schedule,
                          lr_milestones=task.lr_milestones)


@dataclass
class TaskResult:
    """The Table 1 models of one task (final model without resets, ensemble of the period ends with them;
    one per seed) and their evaluation under the suite."""

    task: Table1Task
    models: list[Evaluated]
    results: list[dict]

    @property
    def rows(self) -> list[dict]:
        return [{**m.keys(), **r} for m, r in zip(self.models, self.results)]

    def mean(self, periodic: bool, scheduler: str, column: str = "PGD") -> float:
        """Mean over seeds of ``column`` in the rows of ``scheduler`` with / without the periodic lr."""
        vals = [r[column] for m, r in zip(self.models, self.results)
                if m.periodic == periodic and m.scheduler == scheduler]
        return sum(vals) / len(vals) if vals else float("nan")

    def runs(self, periodic: bool | None = None, scheduler: str | None = None) -> dict[str, Health]:
        """Health of the task's runs (with / without the periodic lr, of one scheduler, or all), labelled."""
        return {m.label: m.health for m in self.models
                if periodic in (None, m.periodic) and scheduler in (None, m.scheduler)}


def run_tasks(P: PASParams, store: Path, *, device="cpu") -> list[TaskResult]:
    """Train (run store) and evaluate every row of each of ``P.tasks`` under the Table 1 suite, on the
    first ``n_test`` test images of the task's data set."""
    out = []
    for task in P.tasks:
        data = load_data(task.training.data_spec())
        x, y = data[1].x[: P.n_test], data[1].y[: P.n_test]
        models = []
        for periodic in task.periodic_lr:
            for s in SCHEDULERS:
                for k in range(P.seeds):
                    run_k = get_or_train(task_spec(task, s, P.seed + k, periodic), store, device=device,
                                         progress=P.progress, data=data)
                    model = Ensemble(run_k.snapshots(device)) if periodic else run_k.model(device=device)
                    models.append(Evaluated(s, periodic, "ensemble" if periodic else "final", P.seed + k, model,
                                            health(run_k, data[0], device), task.name))
        results = [evaluate(m.model, x, y, P.suite(task), batch_size=P.eval_batch_size, seed=P.seed,
                            progress=P.progress).row() for m in models]
        out.append(TaskResult(task, models, results))
    return out
