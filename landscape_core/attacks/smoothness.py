"""Attacks of the second source (Yang et al. 2020, "Adversarial Robustness Through Local
Lipschitzness"), registered beside PGD:

* ``"trades-kl"`` - TRADES' inner maximisation (Zhang et al. 2019): ``argmax KL(p(x) || p(x'))`` over
  the L∞ ball by signed-gradient ascent from ``x + 0.001·N(0, I)``, the model in eval mode, each
  iterate projected onto the ball and clamped to [0, 1].  It needs no label, and it is the training
  attack of the ``trades`` objective (:mod:`landscape_core.training.loop`).  With a scheduled ε the
  step keeps the spec's step/ε ratio, as PGD's does, so PAS warm-ups work with TRADES unchanged.
* ``"multi-targeted"`` - targeted PGD towards every other class (the margin ``z_t − z_y`` ascended,
  random start in the ball), per example the target whose final iterate has the largest margin
  ``max_{j≠y} z_j − z_y`` is kept (the evaluation attack of the source's tables, 20 steps of ε/10).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.modes import frozen, model_mode
from ..core.spec import ParameterError
from .base import Attack, AttackSpec, register
from .steps import LinfStep, ascend, bcast, draw, per_sample

__all__ = ["kl_from", "trades_perturb", "multi_targeted", "TradesKL", "MultiTargeted"]


def kl_from(model: nn.Module, p_clean: torch.Tensor):
    """TRADES' objective: ``KL(p(x) || p(x'))`` per example, ``p(x)`` the clean prediction."""
    return lambda x: F.kl_div(F.log_softmax(model(x), dim=1), p_clean, reduction="none").sum(1)


def trades_perturb(model: nn.Module, x: torch.Tensor, eps, *, steps: int, step_size,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """TRADES' adversarial inputs: ``steps`` signed ascent steps on ``sum_i KL(p(x_i) || p(x'_i))``."""
    step = LinfStep(x, per_sample(eps, x, "eps"), per_sample(step_size, x, "step_size"))
    if generator is None:
        generator = torch.Generator(device=x.device).manual_seed(0)
    with model_mode(model, "eval"), frozen(model):
        with torch.no_grad():
            p_clean = F.softmax(model(x), dim=1)
        start = x + 0.001 * draw(x.shape, generator, x, normal=True)       # neither projected nor clamped
        x_adv = step.clip(ascend(kl_from(model, p_clean), start, step, steps))    # once more: 0 steps clip the start
    return torch.where(bcast(step.eps == 0, x), x, x_adv).detach()


def _margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``max_{j≠y} z_j − z_y`` per example (> 0: misclassified)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    return other - true


def _towards(model: nn.Module, y: torch.Tensor, t: int):
    """The multi-targeted objective: the margin ``z_t − z_y`` of target class t over the true class."""
    target = torch.full_like(y, t)

    def gain(x):
        z = model(x)
        return (z.gather(1, target[:, None]) - z.gather(1, y[:, None])).squeeze(1)
    return gain


def multi_targeted(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps, *, steps: int, step_size,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Targeted PGD towards each class t ≠ y (ascent on ``z_t − z_y``); the most adversarial target kept."""
    step = LinfStep(x, per_sample(eps, x, "eps"), per_sample(step_size, x, "step_size"))
    if generator is None:
        generator = torch.Generator(device=x.device).manual_seed(0)
    with model_mode(model, "eval"), frozen(model):
        with torch.no_grad():
            k = model(x[:1]).shape[1]
            best = x.clone()
            best_margin = _margin(model(x), y)
        for t in range(k):
            start = step.clip(x + step.start("ball", generator))
            x_adv = ascend(_towards(model, y, t), start, step, steps)
            with torch.no_grad():
                m = _margin(model(x_adv), y)
                better = (y != t) & (m > best_margin)
                best = torch.where(bcast(better, x), x_adv, best)
                best_margin = torch.where(better, m, best_margin)
    return torch.where(bcast(step.eps == 0, x), x, best).detach()


class _StepAttack(Attack):
    @classmethod
    def check(cls, spec: AttackSpec) -> None:
        if spec.step_size is None:
            raise ParameterError("step_size", None, f"is required for {cls.name} (a positive number)")
        if spec.norm != "linf":
            raise ParameterError("norm", spec.norm, f"{cls.name} is an L-inf attack")

    def _budget(self, x, eps):
        s = self.spec
        if eps is None:
            return s.eps, s.step_size
        ratio = s.step_size / s.eps if s.eps > 0 else None       # a scheduled eps keeps step/eps
        return eps, (per_sample(eps, x, "eps") * ratio if ratio is not None else s.step_size)


@register
class TradesKL(_StepAttack):
    """:func:`trades_perturb` with the spec's steps and step size (a training attack)."""

    name = "trades-kl"
    for_training = True

    def perturb(self, model, x, y, generator, eps):
        eps, step = self._budget(x, eps)
        return trades_perturb(model, x, eps, steps=self.spec.steps, step_size=step, generator=generator)


@register
class MultiTargeted(_StepAttack):
    """:func:`multi_targeted` with the spec's steps and step size (evaluation)."""

    name = "multi-targeted"

    def perturb(self, model, x, y, generator, eps):
        eps, step = self._budget(x, eps)
        return multi_targeted(model, x, y, eps, steps=self.spec.steps, step_size=step, generator=generator)
