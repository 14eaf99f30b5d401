"""Adversarial training with per-mini-batch probes, checkpoints and exact resume.

One :class:`TrainSpec` describes a run completely (data, model, training attack, ε and learning-rate
schedules, optimiser, seed); :func:`train` executes it in a run folder, through :func:`run_epochs`, the
checkpointed epoch loop it shares with the Bezier-curve trainer (:mod:`landscape_core.analysis.curve_training`):

* every mini-batch: the ε and learning rate in force are read from their schedules at the fractional
  epoch; PGD (parameters frozen, step following ε) makes the adversarial batch; one optimiser step;
  the **probes** of Sec 4.1 / App C.2.4 are recorded: norm of the stochastic gradient, robust training
  error and loss on the batch (before the step), ‖θ − θ0‖ (after it), ε and lr in force, and the
  number of dead ReLU layers (a layer whose pre-activations are ≤ 0 for every input of the batch);
* every epoch: ``last.pt`` (model, optimiser, generator states, probes) is written atomically, so a
  killed run resumes from its last complete epoch and ends bitwise equal to an uninterrupted one (CPU);
  ``epoch_<k>.pt`` snapshots are kept at ``spec.snapshots`` (the period ends of PAS);
* a non-finite loss ends the run cleanly, marked ``diverged`` (no exception);
* at the end ``final.pt`` and ``result.json`` (written last: its presence marks a complete run).

The model's initialisation is seeded (``spec.seed``) without touching the global RNG.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..attacks import AttackSpec, make_attack
from ..core.io import DamagedFile, load_checkpoint, load_json, save_checkpoint, save_json
from ..core.params import get_flat_params
from ..core.machine import numerics
from ..core.precision import PRECISIONS, autocast, memory_format
from ..core.progress import duration, report
from ..core.spec import ParameterError, Spec, param
from ..data import DatasetSpec, augment_cifar, batches, dataset_info, load_data
from ..models import ModelSpec, build_model_from_spec, relu_layers
from .optim import OPTIMIZERS, make_optimizer
from .schedules import ScheduleSpec, schedule_value

PROBES = ("grad_norm", "loss", "robust_err", "dist", "eps", "lr", "dead_layers")
OBJECTIVES = ("ce", "trades")


def trades_loss(clean_logits: torch.Tensor, adv_logits: torch.Tensor, y: torch.Tensor, beta: float) -> torch.Tensor:
    """TRADES (Zhang et al. 2019): ``CE(f(x), y) + beta * KL(p(x) || p(x'))``, the KL summed over classes
    and averaged over the batch (the reference's ``KLDivLoss(sum) / batch_size``)."""
    kl = F.kl_div(F.log_softmax(adv_logits, dim=1), F.softmax(clean_logits, dim=1), reduction="batchmean")
    return F.cross_entropy(clean_logits, y) + beta * kl


@dataclass(frozen=True)
class TrainSpec(Spec):
    """Everything that determines a training run (its digest keys the run store)."""

    data: DatasetSpec = param(DatasetSpec(), doc="data set")
    model: ModelSpec = param(ModelSpec(), doc="architecture and width")
    attack: AttackSpec = param(AttackSpec(name="none", eps=0.0), doc="training attack; its eps is the target")
    eps_schedule: str = param("constant", choices=("constant", "linear", "cosine"), doc="ε scheduler (eq. 5)")
    eps_min: float = param(0.0, doc="ε_min of eq. 5")
    eps_max: float | None = param(None, doc="ε_max of eq. 5 (None: the target)")
    lr: float = param(1e-4, gt=0.0, doc="base learning rate")
    lr_schedule: str = param("constant", choices=("constant", "step", "cosine_anneal", "linear"),
                             doc="linear: a warm-up of the learning rate from 0, clipped at lr (App C.2.3)")
    lr_max: float | None = param(None, gt=0.0, added=True,
                                 doc="linear lr warm-up: the v_max of eq. (5) for the learning rate (None: lr, "
                                     "reached at the end); 2 lr reaches lr half-way")
    lr_milestones: tuple[float, ...] = param((), each=dict(gt=0.0, lt=1.0),
                                             doc="step decay at these FRACTIONS of a period (of the run without "
                                                 "periodic); CurveTrainSpec's lr_milestones are epochs")
    lr_gamma: float = param(0.1, gt=0.0)
    periodic: tuple[float, ...] = param((), each=dict(gt=0.0), doc="PAS: epochs where lr and ε restart")
    update: str = param("batch", choices=("batch", "epoch"), doc="schedules read per mini-batch or per epoch")
    optimizer: str = param("adam", choices=OPTIMIZERS)
    momentum: float = param(0.9, ge=0.0, lt=1.0, doc="SGD momentum")
    weight_decay: float = param(0.0, ge=0.0)
    batch_size: int = param(100, ge=1)
    epochs: int = param(10, ge=1)
    snapshots: tuple[int, ...] = param((), each=dict(ge=1), doc="epochs whose weights are kept (PAS ensemble)")
    augment: bool = param(False, doc="random crop + flip (CIFAR10)")
    seed: int = param(0, ge=0)
    precision: str = param("fp32", choices=PRECISIONS, added=True,
                           doc="bf16: autocast for the attack and the forward pass (weights stay fp32)")
    objective: str = param("ce", choices=OBJECTIVES, added=True,
                           doc="ce: cross-entropy on the attack's inputs (plain / adversarial training); "
                               "trades: CE(f(x), y) + beta KL(p(x) || p(x')), x' from the trades-kl attack")
    beta: float = param(6.0, ge=0.0, added=True, doc="TRADES' beta (objective trades)")

    def validate(self) -> None:
        if not self.attack.for_training:
            raise ParameterError("attack.name", self.attack.name, "training attacks are none, fgsm, pgd or trades-kl")
        if (self.objective == "trades") != (self.attack.name == "trades-kl"):
            raise ParameterError("objective", self.objective, "trades trains with attack trades-kl, and only it")
        if self.periodic and max(self.periodic) >= self.epochs:
            raise ParameterError("periodic", self.periodic, f"must all be < epochs = {self.epochs}")
        if any(s > self.epochs for s in self.snapshots):
            raise ParameterError("snapshots", self.snapshots, f"must all be <= epochs = {self.epochs}")

    def label(self) -> str:
        """A short human name: ``lenet-8 eps 0.3 (constant, lr 0.0001, seed 0)``."""
        what = f"TRADES beta {self.beta:g}, " if self.objective == "trades" else ""
        return (f"{self.model.arch}-{self.model.width} eps {self.attack.eps:g} ({what}{self.eps_schedule}"
                f"{', periodic' if self.periodic else ''}, lr {self.lr:g}{' warmed up' if self.lr_schedule == 'linear' else ''}, "
                f"seed {self.seed}, {self.precision})")

    @property
    def eps_spec(self) -> ScheduleSpec:
        return ScheduleSpec(kind=self.eps_schedule, value=self.attack.eps, v_min=self.eps_min, v_max=self.eps_max,
                            epochs=self.epochs, resets=self.periodic, update=self.update)

    @property
    def lr_spec(self) -> ScheduleSpec:
        return ScheduleSpec(kind=self.lr_schedule, value=self.lr, epochs=self.epochs, resets=self.periodic,
                            milestones=self.lr_milestones, gamma=self.lr_gamma, update=self.update,
                            v_max=self.lr_max if self.lr_schedule == "linear" else None)


def initial_model(spec: TrainSpec, device="cpu") -> nn.Module:
    """The model of ``spec`` with its seeded initialisation (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = build_model_from_spec(spec.model, dataset_info(spec.data.name))
    return model.to(device)


def generators(spec: TrainSpec, device) -> tuple[torch.Generator, torch.Generator]:
    """The run's two streams: data order and augmentation (seed ``spec.seed``, on the CPU), attack random
    starts (``spec.seed + 1``, on ``device``)."""
    return torch.Generator().manual_seed(spec.seed), torch.Generator(device=device).manual_seed(spec.seed + 1)


def epoch_batches(spec: TrainSpec, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator):
    """One epoch's mini-batches in the order drawn from ``gen``, augmented from it when ``spec.augment``."""
    for xb, yb in batches(x, y, spec.batch_size, generator=gen):
        yield (augment_cifar(xb, gen) if spec.augment else xb), yb


class Schedules:
    """The ε (0 without a training attack) and learning rate of ``spec`` in force at fractional epoch ``t``."""

    def __init__(self, spec: TrainSpec):
        self.attacked = spec.attack.name != "none"
        self.eps_spec, self.lr_spec = spec.eps_spec, spec.lr_spec

    def at(self, t: float) -> tuple[float, float]:
        return (schedule_value(self.eps_spec, t) if self.attacked else 0.0), schedule_value(self.lr_spec, t)


class DeadLayerProbe:
    """Forward pre-hooks on every ReLU: counts layers with no positive pre-activation in the batch."""

    def __init__(self, model: nn.Module):
        self.layers = relu_layers(model)
        self.alive: list[torch.Tensor] = []
        self.handles = [m.register_forward_pre_hook(self._hook) for _, m in self.layers]
        self.active = False

    def _hook(self, module, inputs):
        if self.active:
            self.alive.append((inputs[0].detach() > 0).any())

    def __enter__(self):
        self.alive, self.active = [], True
        return self

    def __exit__(self, *exc):
        self.active = False

    def dead_count(self) -> torch.Tensor:
        """Number of dead layers in the last forward, as a 0-dim tensor (read it without a sync per layer)."""
        if not self.alive:
            return torch.zeros(())
        return (~torch.stack(self.alive)).sum()

    def remove(self):
        for h in self.handles:
            h.remove()


# --- the checkpointed epoch loop (model training here, Bezier curves in analysis.curve_training) ---
@dataclass
class Epochs:
    """Where :func:`run_epochs` left a run."""

    start: int          # the epoch this call resumed at (0: the run's first)
    done: int           # epochs complete
    stopped: bool       # an epoch ended the run (diverged)
    finished: bool      # every epoch done, or stopped


class EpochTrainer:
    """One run that :func:`run_epochs` drives: override :meth:`state`, :meth:`load` and :meth:`epoch`."""

    def state(self) -> dict:
        """Everything a resumed run needs (tensors, numbers, lists, dicts), saved after every epoch."""
        raise NotImplementedError

    def load(self, state: dict) -> None:
        """Restore :meth:`state`'s dict."""
        raise NotImplementedError

    def begin(self, start: int, end: int) -> None:
        """Before epoch ``start`` (0 unless resumed), the first this call runs; it stops before ``end``."""

    def epoch(self, epoch: int) -> bool:
        """One pass over the data; False ends the run there (nothing of that epoch is checkpointed)."""
        raise NotImplementedError

    def close(self) -> None:
        """After the last epoch this call runs, whatever happened."""

    def final(self, ran: Epochs) -> None:
        """Once the run is finished: every epoch done, or stopped."""


def _last_checkpoint(path: Path | None, what: str, map_location) -> dict | None:
    """The checkpoint at ``path``, or None: absent, or damaged (a run killed while the disk failed, a
    truncated copy), then deleted with a warning that the ``what`` restarts from its first epoch."""
    if path is None or not path.exists():
        return None
    try:
        return load_checkpoint(path, map_location=map_location)
    except DamagedFile as err:
        warnings.warn(f"{err}; the {what} restarts from its first epoch", stacklevel=4)   # the trainer's caller
        path.unlink()
        return None


def run_epochs(trainer: EpochTrainer, epochs: int, path: str | Path | None = None, *, what: str = "run",
               map_location="cpu", stop_after: int | None = None) -> Epochs:
    """Run ``trainer`` to ``epochs`` epochs, resuming from the checkpoint at ``path`` (None: none kept).

    After every complete epoch ``trainer.state()`` and the epoch count are written to ``path``
    atomically, so a killed run resumes from its last complete epoch; a damaged checkpoint is deleted
    with a warning (``what``: the word for the run in it).  ``stop_after`` ends this call after that
    many epochs (simulates a kill); ``trainer.final`` runs only once the run is finished."""
    path = Path(path) if path is not None else None
    state = _last_checkpoint(path, what, map_location)
    start = 0 if state is None else int(state["epoch"])
    if state is not None:
        trainer.load(state)
    end = epochs if stop_after is None else min(epochs, start + stop_after)
    done, stopped = start, False
    try:
        trainer.begin(start, end)
        for epoch in range(start, end):
            if not trainer.epoch(epoch):
                stopped = True
                break
            done = epoch + 1
            if path is not None:
                save_checkpoint(path, {**trainer.state(), "epoch": done})
    finally:
        trainer.close()
    result = Epochs(start, done, stopped, finished=stopped or done >= epochs)
    if result.finished:
        trainer.final(result)
    return result


# --- adversarial training ------------------------------------------------------------------------
@dataclass
class TrainResult:
    epochs_done: int
    diverged: bool
    seconds: float


def train(spec: TrainSpec, run_dir: Path, *, device="cpu", progress: bool = False,
          stop_after_epochs: int | None = None, data=None) -> TrainResult:
    """Run (or resume) ``spec`` in ``run_dir``.  ``stop_after_epochs`` ends early (simulates a kill)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    trainer = _ModelTrainer(spec, run_dir, device, data, progress)
    ran = run_epochs(trainer, spec.epochs, run_dir / "last.pt", map_location=device, stop_after=stop_after_epochs)
    return TrainResult(epochs_done=ran.done, diverged=ran.stopped, seconds=trainer.seconds)


class _ModelTrainer(EpochTrainer):
    """The state of one :func:`train` call: model, optimiser, generators, probes; one batch per :meth:`step`."""

    def __init__(self, spec: TrainSpec, run_dir: Path, device: torch.device, data, progress: bool):
        self.spec, self.run_dir, self.device, self.progress = spec, run_dir, device, progress
        train_split, _ = data if data is not None else load_data(spec.data)
        # the training set moves to the device once (per-batch copies from pageable memory synchronise)
        self.x, self.y = train_split.x.to(device), train_split.y.to(device)
        self.layout = memory_format(spec.precision, device, self.x.dim())
        self.model = initial_model(spec, device).to(memory_format=self.layout)
        self.theta0 = get_flat_params(self.model)
        self.opt = make_optimizer(spec.optimizer, self.model.parameters(), spec.lr, spec.momentum, spec.weight_decay)
        self.attack = make_attack(spec.attack)
        self.gen, self.agen = generators(spec, device)       # shuffling and augmentation; attack random starts
        self.probes = {k: [] for k in PROBES}
        self.seconds = 0.0
        self.n_batches = math.ceil(len(self.y) / spec.batch_size)
        self.schedules = Schedules(spec)
        self.probe, self.bar = None, None

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "gen": self.gen.get_state(),
                "agen": self.agen.get_state().cpu(), "theta0": self.theta0.cpu(), "seconds": self.seconds,
                "probes": probe_tensors(self.probes)}

    def load(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.gen.set_state(state["gen"].cpu())
        self.agen.set_state(state["agen"].cpu())
        self.theta0 = state["theta0"].to(self.device)
        self.probes = {k: list(v.tolist()) for k, v in state["probes"].items()}
        self.seconds = state["seconds"]

    def begin(self, start: int, end: int) -> None:
        if start == 0:
            save_checkpoint(self.run_dir / "init.pt", {"model": self.model.state_dict()})
        self.probe = DeadLayerProbe(self.model)
        self.bar = tqdm(total=(end - start) * self.n_batches, disable=not self.progress, desc="train", leave=False)
        resumed = f"resumed at epoch {start}/{self.spec.epochs}" if start else "started"
        report(f"train {self.spec.label()}: {resumed}")

    def epoch(self, epoch: int) -> bool:
        t0 = time.perf_counter()
        self.model.train()
        dist: list[torch.Tensor] = []          # ‖θ − θ0‖ after each step, read at the end of the epoch
        finite = True
        for i, (xb, yb) in enumerate(epoch_batches(self.spec, self.x, self.y, self.gen)):
            finite = self.step(epoch + i / self.n_batches, xb, yb, dist)
            if not finite:
                break
            self.bar.update(1)
        self.probes["dist"].extend(torch.stack(dist).tolist() if dist else [])
        self.seconds += time.perf_counter() - t0
        if finite:
            self._end_epoch(epoch + 1)
        return finite

    def step(self, t: float, xb: torch.Tensor, yb: torch.Tensor, dist: list[torch.Tensor]) -> bool:
        """One optimiser step at fractional epoch ``t`` and its probes; False (no step) at a non-finite loss."""
        spec, model, opt, device = self.spec, self.model, self.opt, self.device
        eps, lr = self.schedules.at(t)
        for group in opt.param_groups:
            group["lr"] = lr
        xb, yb = xb.to(device).contiguous(memory_format=self.layout), yb.to(device)
        with autocast(spec.precision, device):
            x_in = self.attack(model, xb, yb, self.agen, eps=eps) if eps > 0 else xb
            with self.probe:
                logits = model(x_in)
            if spec.objective == "trades":
                loss = trades_loss(model(xb), logits, yb, spec.beta)
            else:
                loss = F.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            gnorm = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters() if p.grad is not None))
            err = (logits.argmax(1) != yb).float().mean()
            # ONE device-to-host copy per batch (on a GPU every read is a synchronisation)
            loss_v, gnorm_v, err_v, dead_v = torch.stack(
                [loss.detach(), gnorm, err, self.probe.dead_count().to(loss.device, loss.dtype)]).tolist()
        if not math.isfinite(loss_v):      # before the step: final.pt keeps the last finite model
            return False
        opt.step()
        with torch.no_grad():
            dist.append((get_flat_params(model) - self.theta0).norm())
        for k, v in (("grad_norm", gnorm_v), ("loss", loss_v), ("robust_err", err_v), ("eps", eps), ("lr", lr),
                     ("dead_layers", dead_v)):
            self.probes[k].append(float(v))
        return True

    def _end_epoch(self, done: int) -> None:
        """The snapshot of epoch ``done`` when asked for, and the progress line."""
        if done in self.spec.snapshots:
            save_checkpoint(self.run_dir / f"epoch_{done}.pt", {"model": self.model.state_dict()})
        per_epoch = self.seconds / done
        report(f"train {self.spec.label()}: epoch {done}/{self.spec.epochs}, {per_epoch:.0f} s per epoch, "
               f"~{duration(per_epoch * (self.spec.epochs - done))} left in this run")

    def close(self) -> None:
        if self.probe is not None:
            self.probe.remove()
        if self.bar is not None:
            self.bar.close()

    def final(self, ran: Epochs) -> None:
        """``final.pt``, ``probes.pt`` and, last, ``result.json`` (its presence marks a complete run)."""
        save_run(self.run_dir, self.spec, self.model.state_dict(), self.probes, epochs_done=ran.done,
                 diverged=ran.stopped, seconds=self.seconds, device=self.device)


def probe_tensors(probes: dict[str, list[float]]) -> dict[str, torch.Tensor]:
    """The probe lists as float64 tensors (as ``probes.pt`` and the checkpoints hold them)."""
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in probes.items()}


def save_run(run_dir: Path, spec: TrainSpec, model_state: dict, probes: dict[str, list[float]], *, epochs_done: int,
             diverged: bool, seconds: float, device: torch.device, **provenance) -> None:
    """A finished run's ``final.pt``, ``probes.pt`` and, last, ``result.json`` (its presence marks a complete
    run), with ``provenance`` added to the result (a batched run's trainer)."""
    save_checkpoint(run_dir / "final.pt", {"model": model_state})
    save_checkpoint(run_dir / "probes.pt", probe_tensors(probes))
    result = {"spec": spec.to_dict(), "digest": spec.digest(), "epochs_done": epochs_done, "diverged": diverged,
              "seconds": round(seconds, 2), "n_updates": len(probes["loss"]), "device": device.type,
              "precision": spec.precision, "torch": torch.__version__, "numerics": numerics(device, spec.precision),
              **provenance}
    save_json(run_dir / "result.json", result)


def load_probes(run_dir: Path) -> dict[str, "np.ndarray"]:
    """The per-mini-batch probes of a finished run as numpy arrays."""
    return {k: v.numpy() for k, v in load_checkpoint(Path(run_dir) / "probes.pt").items()}


def load_result(run_dir: Path) -> dict:
    return load_json(Path(run_dir) / "result.json")
