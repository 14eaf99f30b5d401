"""The ascent step of every attack of the study, and the one ascent loop.

A :class:`Step` is the geometry of one threat model, bound to one attack call (in the manner of
MadryLab/robustness's attack steps): the steepest-ascent direction of a gradient, the projection onto
the ε-ball around the clean inputs, the random starts.  :func:`ascent_step` is one step of projected
steepest ascent on any objective; :func:`ascend` is the loop.  PGD (:mod:`.pgd`, and the CUDA graphs of
:mod:`.cuda_graphs`, which capture :func:`ascent_step`), TRADES' KL attack and the multi-targeted attack
(:mod:`.smoothness`) and the local Lipschitz estimate (:mod:`landscape_core.analysis.lipschitz`) differ
only in the objective, the start and the step.
"""
from __future__ import annotations

import math
from typing import Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..core.spec import ParameterError

__all__ = ["NORMS", "RANDOM_STARTS", "Step", "LinfStep", "L2Step", "STEPS", "step_for", "ascent_step", "ascend",
           "cross_entropy", "project", "per_sample", "bcast", "flat_norm", "draw"]

RANDOM_STARTS = ("ball", "step", "none")

Objective = Callable[[torch.Tensor], torch.Tensor]
"""``objective(x) -> [B]``: the quantity each example's ascent maximises (examples are independent)."""


def per_sample(value, x: torch.Tensor, name: str) -> torch.Tensor:
    """A float or tensor as a ``[B]`` tensor on x's device/dtype, checked >= 0.

    A Python number is checked on the host (no device synchronisation); a tensor is checked on its
    device, which on a GPU waits for the queued work: validate once per attack, not per step."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise ParameterError(name, value, "must be finite and >= 0")
        return torch.full((x.shape[0],), float(value), dtype=x.dtype, device=x.device)
    t = torch.as_tensor(value, dtype=x.dtype, device=x.device).detach()
    if t.ndim == 0:
        t = t.expand(x.shape[0])
    if t.shape != (x.shape[0],):
        raise ParameterError(name, tuple(t.shape), f"must be a number or a tensor of shape [{x.shape[0]}]")
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ParameterError(name, value, "must be finite and >= 0")
    return t


def bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``[B]`` -> ``[B, 1, 1, ...]`` broadcastable against x."""
    return v.view(-1, *([1] * (x.ndim - 1)))


def flat_norm(v: torch.Tensor) -> torch.Tensor:
    """The L2 norm of each example of ``v`` ([B, ...] -> [B])."""
    return v.flatten(1).norm(p=2, dim=1)


def draw(shape, generator: torch.Generator, like: torch.Tensor, normal: bool = False) -> torch.Tensor:
    """Uniform [0, 1) (or standard normal) draws from ``generator`` on its own device, moved to like's."""
    fn = torch.randn if normal else torch.rand
    return fn(shape, generator=generator, device=generator.device, dtype=like.dtype).to(like.device)


class Step:
    """Projected steepest ascent in one threat model, around the clean inputs ``origin`` ([B, ...]).

    ``eps``: the per-example budgets (a checked ``[B]`` tensor, see :func:`per_sample`); ``size``: the
    step, a ``[B]`` tensor or a number; ``box``: the (lo, hi) range of valid inputs, or None.  The
    tensors are held, not copied: a CUDA graph binds a step to its static buffers once."""

    norm: ClassVar[str]

    def __init__(self, origin: torch.Tensor, eps: torch.Tensor, size=0.0, box: tuple[float, float] | None = (0.0, 1.0)):
        self.origin, self.eps, self.box = origin, eps, box
        self.size = bcast(size, origin) if torch.is_tensor(size) else size

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        """The steepest-ascent direction of unit norm (in this threat model) for gradient ``grad``."""
        raise NotImplementedError

    def project(self, delta: torch.Tensor) -> torch.Tensor:
        """The Euclidean projection of perturbations ``delta`` onto the ε-ball."""
        raise NotImplementedError

    def ball(self, generator: torch.Generator) -> torch.Tensor:
        """A perturbation drawn uniformly from the ε-ball."""
        raise NotImplementedError

    def start(self, kind: str, generator: torch.Generator) -> torch.Tensor:
        """A random start (a perturbation): ``"ball"`` uniform in the ε-ball (Madry et al.), ``"step"``
        uniform in ±size per coordinate, then projected (the original code), ``"none"`` zero."""
        if kind == "none":
            return torch.zeros_like(self.origin)
        if kind == "step":
            return self.project((2 * draw(self.origin.shape, generator, self.origin) - 1) * self.size)
        if kind == "ball":
            return self.ball(generator)
        raise ParameterError("random_start", kind, f"must be one of {list(RANDOM_STARTS)}")

    def clamp(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` clamped into the box."""
        return x if self.box is None else x.clamp(*self.box)

    def clip(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` back into the ε-ball around the origin, then into the box."""
        return self.clamp(self.origin + self.project(x - self.origin))


class LinfStep(Step):
    """L∞: steps along sign(grad); the ball is the cube ``|δ_i| <= ε``."""

    norm = "linf"

    def direction(self, grad):
        return grad.sign()

    def project(self, delta):
        eps_b = bcast(self.eps, delta)
        return torch.maximum(torch.minimum(delta, eps_b), -eps_b)

    def ball(self, generator):
        x = self.origin
        return (2 * draw(x.shape, generator, x) - 1) * bcast(self.eps, x)


class L2Step(Step):
    """L2: steps along grad / ||grad||; the ball is ``||δ||_2 <= ε``."""

    norm = "l2"

    def direction(self, grad):
        return grad / bcast(flat_norm(grad).clamp_min(1e-12), grad)

    def project(self, delta):
        n = bcast(flat_norm(delta), delta)
        return delta * torch.clamp(bcast(self.eps, delta) / n.clamp_min(1e-12), max=1.0)

    def ball(self, generator):
        """Uniform in the ball: a uniform direction, radius ε·U^(1/d)."""
        x = self.origin
        direction = draw(x.shape, generator, x, normal=True)
        direction = direction / bcast(flat_norm(direction).clamp_min(1e-12), x)
        radius = self.eps * draw((x.shape[0],), generator, x) ** (1.0 / x[0].numel())
        return direction * bcast(radius, x)


STEPS: dict[str, type[Step]] = {cls.norm: cls for cls in (LinfStep, L2Step)}
"""The step of each threat model, by its ``AttackSpec.norm`` name."""
NORMS = tuple(STEPS)


def step_for(norm: str) -> type[Step]:
    """The :class:`Step` class of threat model ``norm``."""
    if norm not in STEPS:
        raise ParameterError("norm", norm, f"must be one of {list(NORMS)}")
    return STEPS[norm]


def project(delta: torch.Tensor, eps: torch.Tensor | float, norm: str = "linf") -> torch.Tensor:
    """Euclidean projection of perturbations ``delta`` ([B, ...]) onto the eps-ball (eps float or [B])."""
    return step_for(norm)(delta, per_sample(eps, delta, "eps")).project(delta)


def cross_entropy(model: nn.Module, y: torch.Tensor) -> Objective:
    """PGD's objective: the cross-entropy of ``model`` at each input against its label."""
    return lambda x: F.cross_entropy(model(x), y, reduction="none")


def ascent_step(objective: Objective, x: torch.Tensor, step: Step) -> torch.Tensor:
    """One step from ``x``: the input gradient of the summed objective, ``step.size`` along its
    steepest-ascent direction, back into the ε-ball and the box."""
    x_in = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(objective(x_in).sum(), x_in)
    with torch.no_grad():
        return step.clip(x_in.detach() + step.size * step.direction(grad))


def ascend(objective: Objective, x: torch.Tensor, step: Step, steps: int) -> torch.Tensor:
    """``steps`` ascent steps on ``objective`` from ``x`` (a start of the caller's choosing); detached."""
    for _ in range(steps):
        x = ascent_step(objective, x, step)
    return x.detach()
