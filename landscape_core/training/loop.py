"""Adversarial training with per-mini-batch probes, checkpoints and exact resume.

One :class:`TrainSpec` describes a run completely (data, model, training attack, ε and learning-rate
schedules, optimiser, seed); :func:`train` executes it in a run folder:

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
    lr_milestones: tuple[float, ...] = param((), each=dict(gt=0.0, lt=1.0), doc="step decay, fractions of a period")
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


def build_model(spec: TrainSpec, device="cpu") -> nn.Module:
    """The model of ``spec`` with its seeded initialisation (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = build_model_from_spec(spec.model, dataset_info(spec.data.name))
    return model.to(device)


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
    train_split, _ = data if data is not None else load_data(spec.data)
    # the training set moves to the device once (per-batch copies from pageable memory synchronise)
    x_all, y_all = train_split.x.to(device), train_split.y.to(device)
    layout = memory_format(spec.precision, device, x_all.dim())
    model = build_model(spec, device).to(memory_format=layout)
    theta0 = get_flat_params(model)
    opt = make_optimizer(spec.optimizer, model.parameters(), spec.lr, spec.momentum, spec.weight_decay)
    attack = make_attack(spec.attack)
    gen = torch.Generator().manual_seed(spec.seed)                    # shuffling, augmentation
    agen = torch.Generator(device=device).manual_seed(spec.seed + 1)   # attack random starts
    probes = {k: [] for k in PROBES}
    start_epoch, seconds = 0, 0.0

    last = run_dir / "last.pt"
    ck = None
    if last.exists():
        try:
            ck = load_checkpoint(last, map_location=device)
        except DamagedFile as err:         # a run killed while the disk failed, or a truncated copy
            warnings.warn(f"{err}; the run restarts from its first epoch", stacklevel=2)
            last.unlink()
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["gen"].cpu())
        agen.set_state(ck["agen"].cpu())
        theta0 = ck["theta0"].to(device)
        probes = {k: list(v.tolist()) for k, v in ck["probes"].items()}
        start_epoch, seconds = ck["epoch"], ck["seconds"]
    else:
        save_checkpoint(run_dir / "init.pt", {"model": model.state_dict()})

    n_batches = math.ceil(len(y_all) / spec.batch_size)
    eps_spec, lr_spec = spec.eps_spec, spec.lr_spec
    probe = DeadLayerProbe(model)
    diverged, done = False, start_epoch
    pending_dist: list[torch.Tensor] = []
    end_epoch = spec.epochs if stop_after_epochs is None else min(spec.epochs, start_epoch + stop_after_epochs)
    bar = tqdm(total=(end_epoch - start_epoch) * n_batches, disable=not progress, desc="train", leave=False)
    label = spec.label()
    report(f"train {label}: " + (f"resumed at epoch {start_epoch}/{spec.epochs}" if start_epoch else "started"))
    try:
        for epoch in range(start_epoch, end_epoch):
            t0 = time.perf_counter()
            model.train()
            for i, (xb, yb) in enumerate(batches(x_all, y_all, spec.batch_size, generator=gen)):
                t = epoch + i / n_batches
                eps = schedule_value(eps_spec, t) if spec.attack.name != "none" else 0.0
                lr = schedule_value(lr_spec, t)
                for group in opt.param_groups:
                    group["lr"] = lr
                if spec.augment:
                    xb = augment_cifar(xb, gen)
                xb, yb = xb.to(device).contiguous(memory_format=layout), yb.to(device)
                with autocast(spec.precision, device):
                    x_in = attack(model, xb, yb, agen, eps=eps) if eps > 0 else xb
                    with probe:
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
                        [loss.detach(), gnorm, err, probe.dead_count().to(loss.device, loss.dtype)]).tolist()
                if not math.isfinite(loss_v):      # before the step: final.pt keeps the last finite model
                    diverged = True
                    break
                opt.step()
                with torch.no_grad():          # read at the end of the epoch, with the other probes
                    pending_dist.append((get_flat_params(model) - theta0).norm())
                for k, v in (("grad_norm", gnorm_v), ("loss", loss_v), ("robust_err", err_v), ("eps", eps),
                             ("lr", lr), ("dead_layers", dead_v)):
                    probes[k].append(float(v))
                bar.update(1)
            probes["dist"].extend(torch.stack(pending_dist).tolist() if pending_dist else [])
            pending_dist.clear()
            seconds += time.perf_counter() - t0
            if diverged:
                break
            done = epoch + 1
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "gen": gen.get_state(),
                     "agen": agen.get_state().cpu(), "theta0": theta0.cpu(), "epoch": epoch + 1,
                     "seconds": seconds, "probes": {k: torch.tensor(v, dtype=torch.float64) for k, v in probes.items()}}
            if epoch + 1 in spec.snapshots:
                save_checkpoint(run_dir / f"epoch_{epoch + 1}.pt", {"model": model.state_dict()})
            save_checkpoint(last, state)
            per_epoch = seconds / (epoch + 1)
            report(f"train {label}: epoch {epoch + 1}/{spec.epochs}, {per_epoch:.0f} s per epoch, "
                   f"~{duration(per_epoch * (spec.epochs - epoch - 1))} left in this run")
    finally:
        probe.remove()
        bar.close()

    epochs_done = done
    finished = diverged or done >= spec.epochs
    if finished:
        save_checkpoint(run_dir / "final.pt", {"model": model.state_dict()})
        save_checkpoint(run_dir / "probes.pt", {k: torch.tensor(v, dtype=torch.float64) for k, v in probes.items()})
        save_json(run_dir / "result.json", {"spec": spec.to_dict(), "digest": spec.digest(),
                                            "epochs_done": epochs_done, "diverged": diverged,
                                            "seconds": round(seconds, 2), "n_updates": len(probes["loss"]),
                                            "device": device.type, "precision": spec.precision, "torch": torch.__version__,
                                            "numerics": numerics(device, spec.precision)})
    return TrainResult(epochs_done=epochs_done, diverged=diverged, seconds=seconds)


def load_probes(run_dir: Path) -> dict[str, "np.ndarray"]:
    """The per-mini-batch probes of a finished run as numpy arrays."""
    return {k: v.numpy() for k, v in load_checkpoint(Path(run_dir) / "probes.pt").items()}


def load_result(run_dir: Path) -> dict:
    return load_json(Path(run_dir) / "result.json")
