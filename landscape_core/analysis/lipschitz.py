"""The second source's measurements (Yang et al. 2020, "Adversarial Robustness Through Local
Lipschitzness"): how far apart the classes of a data set are, and how smooth a classifier is locally.

* :func:`separation` - for every query point the L∞ distance to the nearest reference point of
  ANOTHER class, exact (no approximate neighbours), in chunks so that full MNIST / CIFAR10 fit in
  memory.  Train-train (a point never meets itself: it has its own class) and test-train.  The source
  calls the smallest such distance between classes 2r and argues that budgets ε < r admit a classifier
  both accurate and robust (:func:`separation_summary`).
* :func:`local_lipschitz` - the empirical local Lipschitz constant of the logits, the mean over x of
  ``max_{x' in B∞(x, ε)} ‖f(x) − f(x')‖₁ / ‖x − x'‖∞``, the max approximated by signed-gradient ASCENT
  from ``x + 0.001·N(0, I)`` (model in eval mode, iterates projected onto the ball and [0, 1]).
  ``variant="released"`` reproduces the source's released code, whose step follows the sign of the
  gradient of the NEGATED ratio and so descends it; its defaults are 10 steps of 0.003.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..attacks import LinfStep, ascend, draw
from ..core.batching import batch_slices
from ..core.modes import frozen, model_mode
from ..core.spec import ParameterError

__all__ = ["separation", "SeparationSummary", "separation_summary", "LIPSCHITZ_VARIANTS", "local_lipschitz"]

LIPSCHITZ_VARIANTS = ("ascent", "released")


def separation(x_query: torch.Tensor, y_query: torch.Tensor, x_ref: torch.Tensor, y_ref: torch.Tensor,
               chunk: int = 256) -> torch.Tensor:
    """``[n_query]``: the L∞ distance from each query point to the nearest reference point of another
    class (exact; ``chunk`` query rows at a time against the whole reference set)."""
    if chunk < 1:
        raise ParameterError("chunk", chunk, "must be >= 1")
    q, r = x_query.flatten(1).float(), x_ref.flatten(1).float()
    out = torch.empty(len(q))
    for s in batch_slices(len(q), chunk):
        d = torch.cdist(q[s], r, p=math.inf)
        d[y_query[s, None] == y_ref[None, :]] = math.inf
        out[s] = d.min(1).values.cpu()
    return out


@dataclass(frozen=True)
class SeparationSummary:
    """The distances of :func:`separation`, summarised as the source reports them."""

    name: str
    distances: np.ndarray

    @property
    def min(self) -> float:
        return float(self.distances.min())

    @property
    def mean(self) -> float:
        return float(self.distances.mean())

    @property
    def r(self) -> float:
        """Half the smallest distance between classes: budgets below r leave room for robustness."""
        return self.min / 2

    def row(self, budgets) -> dict:
        return {"pairs": self.name, "points": len(self.distances), "min (2r)": self.min, "r": self.r,
                "mean": self.mean, **{f"2eps={2 * e:g} <= min": 2 * e <= self.min for e in budgets}}


def separation_summary(name: str, distances: torch.Tensor) -> SeparationSummary:
    return SeparationSummary(name, distances.numpy())


def _ratio(model, x, fx, x_adv) -> torch.Tensor:
    """‖f(x) − f(x')‖₁ / ‖x − x'‖∞ per example (1e-6 inside the norm, as the source)."""
    num = (model(x_adv) - fx).abs().flatten(1).sum(1)
    den = (x - x_adv + 1e-6).abs().flatten(1).amax(1)
    return num / den


def _lipschitz_batch(model: nn.Module, xb: torch.Tensor, eps: float, steps: int, step_size: float, variant: str,
                     generator: torch.Generator) -> torch.Tensor:
    """The estimate of :func:`local_lipschitz` for one batch, on the model's device."""
    with torch.no_grad():
        fx = model(xb)
    met = []            # the ascent keeps the largest ratio met at any step: each is a lower bound

    def objective(z):
        ratio = _ratio(model, xb, fx, z)
        met.append(ratio.detach())
        return ratio if variant == "ascent" else -ratio         # the released code descends the ratio

    step = LinfStep(xb, torch.full((len(xb),), float(eps), device=xb.device), step_size)
    start = step.clamp(xb + step.project(0.001 * draw(xb.shape, generator, xb, normal=True)))
    x_adv = ascend(objective, start, step, steps)
    with torch.no_grad():
        last = _ratio(model, xb, fx, x_adv)
    return last if variant == "released" else torch.stack([*met, last]).amax(0)


def local_lipschitz(model: nn.Module, x: torch.Tensor, eps: float, *, steps: int = 10, step_size: float = 0.003,
                    variant: str = "ascent", batch_size: int = 100,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """``[n]``: the local Lipschitz ratio of ``model``'s logits at each x, maximised over the ε-ball
    (``variant="ascent"``: the largest ratio met at the start or after any step, a lower bound of the
    maximum) or as the released code steps (``"released"``, which descends it and reports its last step)."""
    if variant not in LIPSCHITZ_VARIANTS:
        raise ParameterError("variant", variant, f"must be one of {list(LIPSCHITZ_VARIANTS)}")
    if not (isinstance(eps, (int, float)) and eps > 0):
        raise ParameterError("eps", eps, "must be a number > 0")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ParameterError("steps", steps, "must be an integer >= 0")
    device = next(model.parameters()).device
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    with model_mode(model, "eval"), frozen(model):
        out = [_lipschitz_batch(model, x[s].to(device), eps, steps, step_size, variant, generator).cpu()
               for s in batch_slices(len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0)
