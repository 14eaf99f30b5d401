"""Runs of one architecture and data set trained side by side as one stacked model (a Fig 5 grid, a zoo,
Table 1's seeds in one set of kernels).

:func:`compatible` groups the specs that may train together (the rule: :func:`batch_key`);
:func:`train_batched` trains one group and writes each member into its own run folder as
:func:`~.loop.train` would (``init.pt``, ``epoch_<k>.pt``, ``final.pt``, ``probes.pt``, ``result.json``
with ``trainer: {kind: batched, members: M, member: m}`` added), through :func:`~.loop.run_epochs`: one
checkpoint for the stack (``last-batched-<key>.pt`` in the first member's folder, named in each member's
``stack.json``: :func:`stack_checkpoint`), exact resume.

* **The stack** (:class:`Stack`): the members' parameters and buffers stacked by
  ``torch.func.stack_module_state``, run by ``vmap`` over ``functional_call`` of one template module on
  the meta device; inputs ``[M, B, ...]``, each convolution batched as a grouped convolution.
* **Each member is its own run**: its seeded initialisation (:func:`~.loop.initial_model`); its data
  order, augmentation and attack random starts from its own two generators, drawn in the sequential
  order (:func:`~.loop.generators`, :func:`~.loop.epoch_batches`); its ε and learning rate read from its
  own schedules at every update (:class:`~.loop.Schedules`); its attack step (its step/ε); its probes.
  A member whose ε is 0 at an update trains on its clean batch and draws nothing from its attack
  generator, as the sequential loop skips its attack.
* **The attack** (:func:`stacked_attack`) is the sequential one on the flattened stack ``[M*B, ...]``:
  the threat model's :class:`~landscape_core.attacks.steps.Step` with per-example budgets and steps and
  :func:`~landscape_core.attacks.steps.ascend` on the summed objective, whose input gradient is per
  member (members share no weights); each member's random start is drawn by a Step on its own slice.
* **The optimiser** (:func:`stacked_optimizer`): one ``torch.optim`` optimiser with a parameter group per
  member, built by :func:`~.optim.make_optimizer` from the member's own lr, momentum and weight decay,
  whose parameters are the member's slices of the stacked tensors (views sharing their storage): torch's
  own Adam / SGD update, elementwise, so a member's update is its sequential one for the same gradient.
* **BatchNorm**: the running statistics are stacked buffers handed to ``functional_call`` under
  ``vmap``; BatchNorm's in-place update of them lands in each member's slice, and the batch statistics
  are each member's own (vmap's batch-norm rule).  The attack runs in eval mode (running statistics),
  as the sequential one.
* **Divergence**: a member whose loss is not finite is finished there as :func:`~.loop.train` finishes a
  run (``final.pt`` the last finite model, ``diverged``), then masked: no gradient for its group (no
  update), ε 0 (no draws), no probes.  The others never see it: their slices of every computation are
  their own.  The stack stops when no member is left.

``seconds`` in each member's result is the stack's wall time (shared by its ``members``).
"""
from __future__ import annotations

import copy
import hashlib
import math
import os
import time
import warnings
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from tqdm.auto import tqdm

from ..attacks import AttackSpec
from ..attacks.smoothness import kl_from
from ..attacks.pgd import best_of
from ..attacks.steps import ascend, bcast, cross_entropy, draw, step_for
from ..core.io import load_json, save_checkpoint, save_json
from ..core.modes import model_mode
from ..core.precision import autocast
from ..core.progress import duration, report
from ..core.spec import ParameterError
from ..data import load_data
from .loop import (PROBES, DeadLayerProbe, EpochTrainer, Epochs, Schedules, TrainResult, TrainSpec, epoch_batches,
                   generators, initial_model, probe_tensors, run_epochs, save_run, trades_loss)
from .optim import make_optimizer

__all__ = ["BATCHED_ATTACKS", "STACK_FILE", "batch_key", "compatible", "Stack", "stacked_optimizer",
           "stacked_attack", "stack_checkpoint", "train_batched"]

BATCHED_ATTACKS = ("none", "fgsm", "pgd", "trades-kl")
"""The training attacks :func:`stacked_attack` runs on a stack (every registered training attack)."""
STACK_FILE = "stack.json"
"""In each member's folder while (and after) its stack trains: the stack's checkpoint, relative to the folder,
and the members' folders (``make runs-status`` reads a member's epoch from it)."""


def batch_key(spec: TrainSpec) -> tuple:
    """What the members of one stack share: everything that sets the tensors' shapes or the sequence of
    operations (data set with its subsets and split seed, architecture and width, batch size, epochs,
    optimiser kind, objective, precision, augmentation, and the training attack's name, norm, steps,
    restarts and random start).  Members may differ in everything else: seed (initialisation, data order,
    random starts), ε and its schedule (eps_schedule, eps_min, eps_max, periodic, update), learning rate
    and its schedule (lr, lr_schedule, lr_max, lr_milestones, lr_gamma), momentum, weight decay, the
    attack's step size, TRADES' beta, snapshots."""
    a = spec.attack
    return (spec.data, spec.model, spec.batch_size, spec.epochs, spec.optimizer, spec.objective, spec.precision,
            spec.augment, a.name, a.norm, a.steps, a.restarts, a.random_start)


def compatible(specs: Iterable[TrainSpec]) -> list[list[TrainSpec]]:
    """``specs`` grouped by :func:`batch_key`, in order of first appearance: each group trains as one stack."""
    groups: dict[tuple, list[TrainSpec]] = {}
    for spec in specs:
        groups.setdefault(batch_key(spec), []).append(spec)
    return list(groups.values())


class Stack:
    """``M`` networks of one architecture as stacked tensors ``[M, ...]`` by name: ``params`` (leaves that
    require grad) and ``buffers`` (BatchNorm's running statistics, the input normalisation), run together by
    ``vmap`` over ``functional_call`` of a template module on the meta device (its mode is the stack's)."""

    def __init__(self, models: list[nn.Module]):
        self.net = copy.deepcopy(models[0]).to("meta")
        self.params, self.buffers = stack_module_state(models)
        self.probe = DeadLayerProbe(self.net)
        self.keys = list(models[0].state_dict())

    def __call__(self, x: torch.Tensor, params: dict | None = None, probe: bool = False):
        """Logits ``[M, B, K]`` of inputs ``[M, B, ...]`` (``params``: e.g. detached ones, for an attack); with
        ``probe`` also each member's number of dead ReLU layers, ``[M]``."""
        def one(p, b, xm):
            if not probe:
                return functional_call(self.net, (p, b), (xm,))
            with self.probe:
                return functional_call(self.net, (p, b), (xm,)), self.probe.dead_count()
        return vmap(one)(self.params if params is None else params, self.buffers, x)

    def flat(self) -> torch.Tensor:
        """Each member's parameters as one flat vector (``get_flat_params``' order), ``[M, P]``, detached."""
        return torch.cat([p.detach().flatten(1) for p in self.params.values()], 1)

    def member(self, m: int) -> dict[str, torch.Tensor]:
        """Member ``m``'s ``state_dict`` (copies)."""
        both = {**self.params, **self.buffers}
        return {k: both[k][m].detach().clone() for k in self.keys}


def stacked_optimizer(specs: list[TrainSpec], params: dict[str, torch.Tensor]) -> torch.optim.Optimizer:
    """One optimiser of the members' kind with a parameter group per member: member ``m``'s slices of the
    stacked ``params`` (views sharing their storage) with the options :func:`make_optimizer` gives its spec."""
    groups = [make_optimizer(s.optimizer, [p.detach()[m] for p in params.values()], s.lr, s.momentum,
                             s.weight_decay).param_groups[0] for m, s in enumerate(specs)]
    s = specs[0]
    return make_optimizer(s.optimizer, groups, s.lr, s.momentum, s.weight_decay)


def _plan(spec: AttackSpec) -> tuple[int, str, int, float]:
    """Steps, start, restarts and step/ε of a training attack as the sequential loop runs it at a scheduled ε
    (FGSM: one step of ε from the clean input; TRADES' KL: from ``x + 0.001 N(0, I)``)."""
    if spec.name == "fgsm":
        return 1, "none", 1, 1.0
    ratio = spec.step_size / spec.eps if spec.eps > 0 and spec.step_size is not None else 0.0    # else never run
    if spec.name == "trades-kl":
        return spec.steps, "trades", 1, ratio
    return spec.steps, spec.random_start, spec.restarts, ratio


def _starts(norm: str, kind: str, x: torch.Tensor, eps_v: torch.Tensor, size_v: torch.Tensor, eps: list[float],
            gens) -> torch.Tensor:
    """Each member's random start (a perturbation of its slice of ``x`` ``[M*B, ...]``), drawn from its own
    generator by a Step on its own slice, as its sequential attack draws it; zero where its ε is 0."""
    b, out = x.shape[0] // len(eps), []
    for m, (e, gen) in enumerate(zip(eps, gens)):
        sl = slice(m * b, (m + 1) * b)
        if e <= 0:
            out.append(torch.zeros_like(x[sl]))
        elif kind == "trades":
            out.append(0.001 * draw(x[sl].shape, gen, x[sl], normal=True))
        else:
            out.append(step_for(norm)(x[sl], eps_v[sl], size_v[sl]).start(kind, gen))
    return torch.cat(out)


def stacked_attack(stack: Stack, x: torch.Tensor, y: torch.Tensor, eps: list[float], spec: AttackSpec,
                   ratios: list[float], gens) -> torch.Tensor:
    """The training attack ``spec`` of every member on the stacked batch ``x`` ``[M, B, ...]`` (labels ``y``
    ``[M, B]``), at the members' budgets ``eps`` and step/ε ``ratios`` (floats), random starts from their
    generators ``gens``; a member at ε 0 gets its clean batch.  PGD, FGSM, TRADES' KL as :mod:`..attacks`
    computes them, on the flattened stack in eval mode with the parameters frozen (detached)."""
    if not any(e > 0 for e in eps):
        return x
    b, xf, yf = x.shape[1], x.flatten(0, 1), y.flatten()
    e = torch.tensor(eps, dtype=x.dtype, device=x.device)
    eps_v = e.repeat_interleave(b)
    size_v = (torch.tensor(ratios, dtype=x.dtype, device=x.device) * e).repeat_interleave(b)
    step = step_for(spec.norm)(xf, eps_v, size_v)
    steps, start, restarts, _ = _plan(spec)
    params = {k: v.detach() for k, v in stack.params.items()}

    def model(z):
        return stack(z.view_as(x), params).flatten(0, 1)

    def run(objective):
        x0 = xf + _starts(spec.norm, start, xf, eps_v, size_v, eps, gens)
        return ascend(objective, x0 if start == "trades" else step.clamp(x0), step, steps)

    with model_mode(stack.net, "eval"):
        if start == "trades":
            with torch.no_grad():
                p_clean = F.softmax(model(xf), dim=1)
            best = step.clip(run(kl_from(model, p_clean)))
        else:
            best = best_of(lambda: run(cross_entropy(model, yf)), model, yf, restarts)
    return torch.where(bcast(eps_v == 0, xf), xf, best).detach().view_as(x)


def _losses(stack: Stack, logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor, specs: list[TrainSpec]):
    """Each member's training loss ``[M]``: the cross-entropy, or TRADES' on its clean and attacked logits."""
    if specs[0].objective != "trades":
        return vmap(F.cross_entropy)(logits, y)
    beta = torch.tensor([s.beta for s in specs], dtype=logits.dtype, device=logits.device)
    clean = stack(x)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*batching rule for aten::kl_div")   # a loop, per member
        return vmap(trades_loss)(clean, logits, y, beta)


class StackTrainer(EpochTrainer):
    """The state of one :func:`train_batched` call: the stack, its optimiser, each member's generators,
    schedules, probes and end (None while it trains; the epochs it completed once it diverged)."""

    def __init__(self, specs: list[TrainSpec], run_dirs: list[Path], device: torch.device, data, progress: bool):
        self.specs, self.dirs, self.device, self.progress = specs, run_dirs, device, progress
        train_split, _ = data if data is not None else load_data(specs[0].data)
        self.x, self.y = train_split.x.to(device), train_split.y.to(device)
        self.stack = Stack([initial_model(s, device) for s in specs])
        self.theta0 = self.stack.flat().clone()
        self.opt = stacked_optimizer(specs, self.stack.params)
        self.gens, self.agens = map(list, zip(*(generators(s, device) for s in specs)))
        self.schedules = [Schedules(s) for s in specs]
        self.ratios = [_plan(s.attack)[3] for s in specs]
        self.probes = [{k: [] for k in PROBES} for _ in specs]
        self.ended: list[int | None] = [None] * len(specs)
        self.seconds = 0.0
        self.n_batches = math.ceil(len(self.y) / specs[0].batch_size)
        self.bar = None

    def state(self) -> dict:
        return {"params": {k: v.detach() for k, v in self.stack.params.items()}, "buffers": dict(self.stack.buffers),
                "optimizer": self.opt.state_dict(), "gens": [g.get_state() for g in self.gens],
                "agens": [g.get_state().cpu() for g in self.agens], "theta0": self.theta0.cpu(),
                "seconds": self.seconds, "probes": [probe_tensors(p) for p in self.probes],
                "ended": [-1 if e is None else e for e in self.ended]}

    def load(self, state: dict) -> None:
        with torch.no_grad():
            for name, tensors in (("params", self.stack.params), ("buffers", self.stack.buffers)):
                for k, v in state[name].items():
                    tensors[k].copy_(v)
        self.opt.load_state_dict(state["optimizer"])
        for gens, states in ((self.gens, state["gens"]), (self.agens, state["agens"])):
            for g, s in zip(gens, states):
                g.set_state(s.cpu())
        self.theta0 = state["theta0"].to(self.device)
        self.seconds = state["seconds"]
        self.probes = [{k: list(v.tolist()) for k, v in p.items()} for p in state["probes"]]
        self.ended = [None if e < 0 else e for e in state["ended"]]

    def begin(self, start: int, end: int) -> None:
        if start == 0:
            for m, folder in enumerate(self.dirs):
                save_checkpoint(folder / "init.pt", {"model": self.stack.member(m)})
        self.bar = tqdm(total=(end - start) * self.n_batches, disable=not self.progress, desc="train", leave=False)
        resumed = f"resumed at epoch {start}/{self.specs[0].epochs}" if start else "started"
        report(f"train batched {self.label()}: {resumed}")

    def label(self) -> str:
        s = self.specs[0]
        return f"{len(self.specs)} x {s.model.arch}-{s.model.width}"

    def epoch(self, epoch: int) -> bool:
        t0 = time.perf_counter()
        self.stack.net.train()
        dist: list[list[torch.Tensor]] = [[] for _ in self.specs]      # ‖θ − θ0‖ per member, read at the end
        loaders = [epoch_batches(s, self.x, self.y, g) for s, g in zip(self.specs, self.gens)]
        for i, batch in enumerate(zip(*loaders)):
            self.step(epoch + i / self.n_batches, batch, dist, epoch, t0)
            if all(e is not None for e in self.ended):
                break
            self.bar.update(1)
        self.seconds += time.perf_counter() - t0
        for m, spec in enumerate(self.specs):
            if self.ended[m] is None:
                self.probes[m]["dist"].extend(torch.stack(dist[m]).tolist() if dist[m] else [])
                if epoch + 1 in spec.snapshots:
                    save_checkpoint(self.dirs[m] / f"epoch_{epoch + 1}.pt", {"model": self.stack.member(m)})
        alive = any(e is None for e in self.ended)
        per_epoch = self.seconds / (epoch + 1)
        if alive:
            report(f"train batched {self.label()}: epoch {epoch + 1}/{self.specs[0].epochs}, {per_epoch:.0f} s per "
                   f"epoch, ~{duration(per_epoch * (self.specs[0].epochs - epoch - 1))} left in this run")
        return alive

    def step(self, t: float, batch, dist: list[list[torch.Tensor]], epoch: int, t0: float) -> None:
        """One update of every member still training at fractional epoch ``t`` and its probes; a member at a
        non-finite loss is finished there (no update)."""
        specs, stack, device = self.specs, self.stack, self.device
        eps, lrs = zip(*(s.at(t) for s in self.schedules))
        eps = [e if end is None else 0.0 for e, end in zip(eps, self.ended)]
        xb = torch.stack([xm for xm, _ in batch]).to(device)
        yb = torch.stack([ym for _, ym in batch]).to(device)
        with autocast(specs[0].precision, device):
            x_in = stacked_attack(stack, xb, yb, eps, specs[0].attack, self.ratios, self.agens)
            logits, dead = stack(x_in, probe=True)
            loss = _losses(stack, logits, xb, yb, specs)
        grads = torch.autograd.grad(loss.sum(), list(stack.params.values()))
        with torch.no_grad():
            gnorm = torch.sqrt(sum((g ** 2).flatten(1).sum(1) for g in grads))
            err = (logits.argmax(-1) != yb).float().mean(1)
            # ONE device-to-host copy per batch (on a GPU every read is a synchronisation)
            rows = torch.stack([loss.detach(), gnorm, err, dead.to(loss.device, loss.dtype)]).tolist()
        for m, loss_v in enumerate(rows[0]):
            if self.ended[m] is None and not math.isfinite(loss_v):    # before the step: the last finite model
                self._diverge(m, epoch, dist[m], time.perf_counter() - t0)
        for m, group in enumerate(self.opt.param_groups):
            group["lr"] = lrs[m]
            for p, g in zip(group["params"], grads):
                p.grad = g[m] if self.ended[m] is None else None             # no gradient: no update
        self.opt.step()
        with torch.no_grad():
            d = (stack.flat() - self.theta0).norm(dim=1)
        for m in (m for m, end in enumerate(self.ended) if end is None):
            dist[m].append(d[m])
            for k, v in (("grad_norm", rows[1][m]), ("loss", rows[0][m]), ("robust_err", rows[2][m]),
                         ("eps", eps[m]), ("lr", lrs[m]), ("dead_layers", rows[3][m])):
                self.probes[m][k].append(float(v))

    def _diverge(self, m: int, epoch: int, dist: list[torch.Tensor], elapsed: float) -> None:
        """Member ``m``'s loss is not finite in ``epoch``: its run ends there, marked diverged."""
        self.probes[m]["dist"].extend(torch.stack(dist).tolist() if dist else [])
        self.ended[m] = epoch
        self._save(m, epoch, True, self.seconds + elapsed)
        report(f"train {self.specs[m].label()}: diverged in epoch {epoch + 1} (batched {self.label()})")

    def _save(self, m: int, epochs_done: int, diverged: bool, seconds: float) -> None:
        save_run(self.dirs[m], self.specs[m], self.stack.member(m), self.probes[m], epochs_done=epochs_done,
                 diverged=diverged, seconds=seconds, device=self.device,
                 trainer={"kind": "batched", "members": len(self.specs), "member": m})

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def final(self, ran: Epochs) -> None:
        """Each member still training: ``final.pt``, ``probes.pt`` and, last, ``result.json``."""
        for m, end in enumerate(self.ended):
            if end is None:
                self._save(m, ran.done, False, self.seconds)


def checkpoint_path(specs: list[TrainSpec], run_dirs: list[Path]) -> Path:
    """The stack's checkpoint: in the first member's folder, named for the members (another stack never
    resumes from it)."""
    key = hashlib.sha256(" ".join(s.digest() for s in specs).encode()).hexdigest()[:12]
    return Path(run_dirs[0]) / f"last-batched-{key}.pt"


def stack_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint of the stack that ``run_dir``'s run trains (or trained) in, or None (not in a stack)."""
    pointer = Path(run_dir) / STACK_FILE
    if not pointer.exists():
        return None
    return Path(run_dir) / load_json(pointer)["checkpoint"]


def train_batched(specs: Iterable[TrainSpec], run_dirs: Iterable[str | Path], *, device="cpu", progress: bool = False,
                  stop_after_epochs: int | None = None, data=None) -> list[TrainResult]:
    """Run (or resume) the compatible ``specs`` as one stack, member ``m`` into ``run_dirs[m]`` as
    :func:`~.loop.train` would run it there.  ``stop_after_epochs`` ends early (simulates a kill)."""
    specs, run_dirs = list(specs), [Path(d) for d in run_dirs]
    if not specs or len(compatible(specs)) != 1:
        raise ParameterError("specs", [s.label() for s in specs], "must be one or more compatible specs (batch_key)")
    if len(run_dirs) != len(specs) or len(set(run_dirs)) != len(specs):
        raise ParameterError("run_dirs", [str(d) for d in run_dirs], "must be one distinct folder per spec")
    if specs[0].attack.name not in BATCHED_ATTACKS:
        raise ParameterError("attack.name", specs[0].attack.name, f"batched training runs {list(BATCHED_ATTACKS)}")
    for folder in run_dirs:
        folder.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(specs, run_dirs)
    for m, folder in enumerate(run_dirs):
        save_json(folder / STACK_FILE, {"checkpoint": os.path.relpath(path, folder), "member": m,
                                        "members": [os.path.relpath(d, folder) for d in run_dirs]})
    device = torch.device(device)
    trainer = StackTrainer(specs, run_dirs, device, data, progress)
    ran = run_epochs(trainer, specs[0].epochs, path, map_location=device,
                     stop_after=stop_after_epochs)
    return [TrainResult(epochs_done=ran.done if end is None else end, diverged=end is not None,
                        seconds=trainer.seconds) for end in trainer.ended]
