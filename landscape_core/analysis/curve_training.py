"""Training the control points of a Bezier curve between two minima (Garipov et al. 2018; Liu et al. 2020,
App C.2.5), with atomic per-epoch checkpoints, exact resume, and curves kept in the run store.

Per mini-batch one t ~ U(0, 1); with an attack, PGD is generated at the point phi(t); the loss is the
cross-entropy at phi(t) plus weight decay on phi(t) (not on the control points).  :func:`get_or_train_curve`
keeps a trained curve in the run store under a :class:`CurveRunSpec` (the two end points by run key,
the training, the attack and the seed), so notebooks reuse it and an interrupted training resumes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..attacks import AttackSpec, make_attack
from ..attacks.evaluation import AttackLike
from ..core.io import DamagedFile, load_checkpoint, load_json, save_checkpoint, save_json
from ..core.machine import numerics
from ..core.spec import ParameterError, Spec, param
from ..data import batches
from ..training import OPTIMIZERS, EpochTrainer, get_or_run, make_optimizer, run_epochs
from ..training.store import damaged
from .curves import BezierCurve

__all__ = ["CurveTrainSpec", "train_curve", "CurveRunSpec", "CurveRun", "get_or_train_curve"]


@dataclass(frozen=True)
class CurveTrainSpec(Spec):
    """Curve training; clean or adversarial is decided by whether :func:`train_curve` gets an attack.

    ``lr_milestones`` are EPOCHS here, where :class:`~landscape_core.training.TrainSpec`'s are fractions
    of a period: the name stays, as it is part of every stored curve's run key."""

    epochs: int = param(10, ge=1, doc="passes over the training set")
    batch_size: int = param(128, ge=1, doc="mini-batch size; one t ~ U(0,1) per mini-batch")
    lr: float = param(0.1, gt=0.0, doc="learning rate of the control points")
    momentum: float = param(0.9, ge=0.0, lt=1.0, doc="SGD momentum (ignored by adam)")
    weight_decay: float = param(1.0e-6, ge=0.0, doc="wd/2 ||phi(t)||^2 added to the loss (on the point)")
    optimizer: str = param("sgd", choices=OPTIMIZERS)
    n_bends: int = param(1, ge=1, doc="interior control points (1: quadratic curve)")
    seed: int = param(0, ge=0, doc="seed of the generator when train_curve gets none")
    lr_milestones: tuple[int, ...] = param((), each=dict(ge=1),
                                           doc="EPOCHS at which lr *= lr_gamma (TrainSpec's are fractions)")
    lr_gamma: float = param(0.1, gt=0.0, le=1.0, doc="learning-rate factor at each milestone")

    def lr_at(self, epoch: int) -> float:
        """Learning rate of a (0-based) epoch: step decay, as the original's 'jump' schedule."""
        return self.lr * self.lr_gamma ** sum(epoch >= m for m in self.lr_milestones)


def train_curve(curve: BezierCurve, x: Tensor, y: Tensor, spec: CurveTrainSpec,
                attack: AttackLike | None = None, *, generator: torch.Generator | None = None,
                checkpoint_path: str | Path | None = None, progress: bool = False) -> dict[str, list]:
    """Train the control points of ``curve`` on (x, y); return the per-epoch history.

    Per mini-batch: t ~ U(0,1) from ``generator``; with an attack, ``x_adv = attack(curve.at(t), xb, yb,
    generator)`` (the point model is detached from the control points); loss = CE(curve(x_b, t), y_b)
    + weight_decay/2 ||phi(t)||^2.  The curve runs in train mode (BatchNorm on batch statistics, its
    running statistics in ``curve.bn_state``).  With ``checkpoint_path``, a checkpoint is written
    atomically after every epoch and an existing one is resumed from (same result as an uninterrupted
    run, bitwise on CPU; :func:`~landscape_core.training.run_epochs`); a checkpoint of another spec
    (other than ``epochs``) or other end points is an error.  History: ``epoch``, ``lr``, ``loss``
    (mean CE without the decay term), ``err``.
    """
    if not isinstance(spec, CurveTrainSpec):
        raise TypeError("spec must be a CurveTrainSpec")
    if spec.n_bends != curve.n_bends:
        raise ParameterError("n_bends", spec.n_bends, f"must match the curve's n_bends = {curve.n_bends}")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must be non-empty and of one length, got {len(x)} and {len(y)}")
    if generator is None:
        generator = torch.Generator().manual_seed(spec.seed)
    trainer = _CurveTrainer(curve, x, y, spec, attack, generator, checkpoint_path, progress)
    run_epochs(trainer, spec.epochs, checkpoint_path, what="curve", map_location=curve.controls.device)
    return trainer.history


class _CurveTrainer(EpochTrainer):
    """The state of one :func:`train_curve` call: the curve, its optimiser, the generator, the history."""

    def __init__(self, curve: BezierCurve, x: Tensor, y: Tensor, spec: CurveTrainSpec, attack: AttackLike | None,
                 generator: torch.Generator, path: str | Path | None, progress: bool):
        self.curve, self.x, self.y, self.spec, self.attack, self.generator = curve, x, y, spec, attack, generator
        self.path, self.progress, self.bar = path, progress, None
        self.optimizer = make_optimizer(spec.optimizer, [curve.controls], spec.lr, spec.momentum, 0.0)
        self.history: dict[str, list] = {"epoch": [], "lr": [], "loss": [], "err": []}

    def state(self) -> dict:
        return {"curve": self.curve.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "history": self.history, "spec": self.spec.to_dict()}

    def load(self, state: dict) -> None:
        saved = {k: v for k, v in state["spec"].items() if k != "epochs"}
        wanted = {k: v for k, v in self.spec.to_dict().items() if k != "epochs"}
        if saved != wanted:
            raise ValueError(f"checkpoint {self.path} was written for another spec: {saved} != {wanted}")
        curve = state["curve"]
        if not (torch.equal(curve["start"], self.curve.start) and torch.equal(curve["end"], self.curve.end)):
            raise ValueError(f"checkpoint {self.path} belongs to a curve between other end points")
        self.curve.load_state_dict(curve)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].to("cpu"))
        self.history = {k: list(v) for k, v in state["history"].items()}

    def begin(self, start: int, end: int) -> None:
        self.curve.train()
        self.bar = tqdm(total=end - start, desc="curve", disable=not self.progress)

    def epoch(self, epoch: int) -> bool:
        lr = self.spec.lr_at(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss_sum, wrong = 0.0, 0
        device = self.curve.controls.device
        for xb, yb in batches(self.x, self.y, self.spec.batch_size, generator=self.generator):
            xb, yb = xb.to(device), yb.to(device)
            ce, logits = self.step(xb, yb)
            loss_sum += ce.item() * len(yb)
            wrong += (logits.argmax(1) != yb).sum().item()
        n = len(self.x)
        for key, value in (("epoch", epoch + 1), ("lr", lr), ("loss", loss_sum / n), ("err", wrong / n)):
            self.history[key].append(value)
        self.bar.update(1)
        return True

    def step(self, xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor]:
        """One step at a t ~ U(0, 1): the cross-entropy (without the decay) and the logits."""
        curve, generator = self.curve, self.generator
        t = torch.rand((), generator=generator, device=generator.device).item()
        if self.attack is not None:
            xb = self.attack(curve.at(t), xb, yb, generator).detach()
        flat = curve.point_flat(t)
        logits = curve.forward_flat(xb, flat)  # train mode, whatever mode the attack left the base in
        ce = F.cross_entropy(logits, yb)
        loss = (ce + 0.5 * self.spec.weight_decay * flat.pow(2).sum()) if self.spec.weight_decay else ce
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return ce, logits

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --- curve runs in the run store -----------------------------------------------------------------
@dataclass(frozen=True)
class CurveRunSpec(Spec):
    """A curve between two stored runs (by run key), trained clean or under ``attack``, in the run store."""

    start: str = param(doc="run-store key of the start model")
    end: str = param(doc="run-store key of the end model")
    training: CurveTrainSpec = param(CurveTrainSpec(), doc="curve training")
    attack: AttackSpec = param(AttackSpec(name="none", eps=0.0), doc="attack at phi(t) (none: clean training)")
    seed: int = param(0, ge=0, doc="seed of t, the data order and the attack's random starts")


@dataclass
class CurveRun:
    """A trained curve with its per-epoch history, and the run-store folder it lives in."""

    curve: BezierCurve
    history: dict[str, list]
    path: Path
    trained: bool


def get_or_train_curve(spec: CurveRunSpec, store: Path, start_model: nn.Module, end_model: nn.Module,
                       x: Tensor, y: Tensor, *, progress: bool = False) -> CurveRun:
    """The curve of ``spec`` from the run store, trained first (resuming from its ``last.pt``) when absent.

    ``start_model`` / ``end_model`` must be the runs named by ``spec.start`` / ``spec.end``."""
    curve = BezierCurve(start_model, start_model.state_dict(), end_model.state_dict(), n_bends=spec.training.n_bends)
    attack = None if spec.attack.name == "none" else make_attack(spec.attack)

    def work(folder: Path) -> None:
        history = train_curve(curve, x, y, spec.training, attack, generator=torch.Generator().manual_seed(spec.seed),
                              checkpoint_path=folder / "last.pt", progress=progress)
        save_checkpoint(folder / "final.pt", {"curve": curve.state_dict()})
        save_json(folder / "result.json", {"spec": spec.to_dict(), "digest": spec.digest(), "history": history,
                                            "numerics": numerics(curve.controls.device)})

    folder, trained = get_or_run(spec, store, work)
    try:
        if not trained:
            curve.load_state_dict(load_checkpoint(folder / "final.pt", map_location=curve.controls.device)["curve"])
        history = load_json(folder / "result.json")["history"]
    except DamagedFile as err:      # the curve's folder is to be deleted, and the curve trained again
        raise damaged(folder, err) from None
    return CurveRun(curve, history, folder, trained)


