"""PGD and FGSM (own code), registered as the attacks "pgd", "fgsm" and "none".

The paper trains with PGD (Madry et al., paper ref. [33]; MNIST 50 steps of 0.01 at ε 0.4, CIFAR10 10
steps of 2/255 at ε 8/255).  Differences from the original code (``util/attack.py``), all deliberate:

- gradients are taken w.r.t. the input only (``torch.autograd.grad``, parameters frozen): no weight
  gradients are computed or accumulated, the parameters' ``.grad`` is never touched;
- ``random_start="ball"`` (default) starts uniformly in the ε-ball, as Madry et al.; the original
  starts uniformly in ±step size (``random_start="step"`` reproduces that);
- ``eps`` and the step may differ per example (a ``[B]`` tensor); ``step_ratio`` keeps step/ε
  constant when ε is scheduled, which is what the original's ``adjust_threshold`` does;
- ``restarts`` keeps, per example, the restart whose final iterate has the highest loss;
- the model runs in eval mode during the attack by default and its modes are always restored;
- on CUDA a step is replayed from a captured CUDA graph (:mod:`.cuda_graphs`); validation happens
  once per call, never per step, so no step waits for the GPU.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.modes import frozen, model_mode
from ..core.spec import ParameterError
from .base import Attack, AttackSpec, register
from .cuda_graphs import graphed_step
from .steps import NORMS, RANDOM_STARTS, ascend, bcast, cross_entropy, per_sample, step_for

__all__ = ["pgd", "best_of", "fgsm", "NoAttack", "FGSM", "PGD"]


def _check(norm: str, random_start: str, steps, restarts, step_size, step_ratio) -> None:
    if norm not in NORMS:
        raise ParameterError("norm", norm, f"must be one of {list(NORMS)}")
    if random_start not in RANDOM_STARTS:
        raise ParameterError("random_start", random_start, f"must be one of {list(RANDOM_STARTS)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ParameterError("steps", steps, "must be an integer >= 0")
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise ParameterError("restarts", restarts, "must be an integer >= 1")
    if (step_size is None) == (step_ratio is None):
        raise ParameterError("step_size", step_size, "give exactly one of step_size and step_ratio")


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps, *, steps: int, step_size=None,
        step_ratio: float | None = None, norm: str = "linf", restarts: int = 1, random_start: str = "ball",
        generator: torch.Generator | None = None, mode: str | None = "eval",
        clamp: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """Projected gradient ascent on ``sum_i CE(model(x_i + delta_i), y_i)`` within the eps-ball.

    eps, step_size, step_ratio: float or ``[B]`` tensor.  Give exactly one of ``step_size`` and ``step_ratio``
    (step = step_ratio * eps, per example).  L-inf steps along ``sign(grad)``, L2 steps along
    ``grad / ||grad||``; each iterate is projected onto the eps-ball, then clamped into ``clamp``
    (None: no box).  ``generator`` draws the random starts (None: a generator seeded with 0 on x's
    device, so the call is deterministic).  ``mode``: the model's mode during the attack ("eval",
    "train" or None = unchanged); the modes are restored afterwards.  With ``restarts > 1`` each
    example keeps the restart whose final iterate has the highest loss.  Returns detached x_adv;
    examples with eps = 0 come back equal to x.
    """
    _check(norm, random_start, steps, restarts, step_size, step_ratio)
    x = x.detach()
    y = y.detach()
    eps_v = per_sample(eps, x, "eps")
    step_v = per_sample(step_size, x, "step_size") if step_size is not None else \
        per_sample(step_ratio, x, "step_ratio") * eps_v
    if generator is None:
        generator = torch.Generator(device=x.device).manual_seed(0)
    step = step_for(norm)(x, eps_v, step_v, clamp)

    def one_run() -> torch.Tensor:
        x_adv = step.clamp(x + step.start(random_start, generator))
        graphed = graphed_step(model, x, y, norm, clamp, steps)
        if graphed is not None:
            return graphed.run(x, y, x_adv, eps_v, step_v, steps)
        return ascend(cross_entropy(model, y), x_adv, step, steps)

    with model_mode(model, mode), frozen(model):
        best = best_of(one_run, model, y, restarts)
    return torch.where(bcast(eps_v == 0, x), x, best).detach()


def best_of(run, model: nn.Module, y: torch.Tensor, restarts: int) -> torch.Tensor:
    """PGD's restarts: ``run()`` ``restarts`` times; per example the final iterate of highest cross-entropy
    (the first of equals)."""
    best = run()
    if restarts > 1:
        with torch.no_grad():
            best_loss = F.cross_entropy(model(best), y, reduction="none")
        for _ in range(restarts - 1):
            cand = run()
            with torch.no_grad():
                cand_loss = F.cross_entropy(model(cand), y, reduction="none")
            better = cand_loss > best_loss
            best = torch.where(bcast(better, best), cand, best)
            best_loss = torch.where(better, cand_loss, best_loss)
    return best


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps, **kw) -> torch.Tensor:
    """FGSM: ``x + eps * sign(grad)`` (L2: along the normalised gradient), clamped; PGD with one step."""
    for key in ("steps", "step_size", "step_ratio", "random_start"):
        if key in kw:
            raise ParameterError(key, kw[key], "is fixed for FGSM (one step of size eps, no random start)")
    return pgd(model, x, y, eps, steps=1, step_ratio=1.0, random_start="none", **kw)


@register
class NoAttack(Attack):
    """The clean inputs (standard training; the ε = 0 model of a zoo)."""

    name = "none"
    for_training = True

    def perturb(self, model, x, y, generator, eps):
        return x.clone()


@register
class FGSM(Attack):
    """:func:`fgsm` at ``spec.eps`` (or the scheduled budget)."""

    name = "fgsm"
    for_training = True

    @classmethod
    def check(cls, spec: AttackSpec) -> None:
        if spec.step_size is not None:
            raise ParameterError("step_size", spec.step_size, "must be null for fgsm (its step is eps)")

    def perturb(self, model, x, y, generator, eps):
        return fgsm(model, x, y, self.spec.eps if eps is None else eps, norm=self.spec.norm)


@register
class PGD(Attack):
    """:func:`pgd` with the spec's steps, step size, restarts and random start.

    With a scheduled ``eps`` the step follows it with the spec's step/ε ratio (the original's
    ``adjust_threshold``); a ``[B]`` tensor of budgets is allowed."""

    name = "pgd"
    for_training = True

    @classmethod
    def check(cls, spec: AttackSpec) -> None:
        if spec.step_size is None:
            raise ParameterError("step_size", None, "is required for pgd (a positive number)")

    def perturb(self, model, x, y, generator, eps):
        s = self.spec
        if generator is None:
            generator = torch.Generator(device=x.device).manual_seed(s.seed)
        if eps is not None and s.eps > 0:   # keep the spec's step/eps ratio (the original's adjust_threshold)
            steps = dict(step_ratio=s.step_size / s.eps)
        else:
            steps = dict(step_size=s.step_size)
        return pgd(model, x, y, s.eps if eps is None else eps, steps=s.steps, norm=s.norm, restarts=s.restarts,
                   random_start=s.random_start, generator=generator, **steps)
