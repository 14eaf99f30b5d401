"""The PGD step and its pieces, shared by the eager loop (:mod:`.pgd`) and the CUDA graphs
(:mod:`.cuda_graphs`): per-example budgets, projection onto the ε-ball, random starts."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..core.spec import ParameterError

NORMS = ("linf", "l2")
RANDOM_STARTS = ("ball", "step", "none")


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
    return v.flatten(1).norm(p=2, dim=1)


def project(delta: torch.Tensor, eps: torch.Tensor | float, norm: str = "linf") -> torch.Tensor:
    """Euclidean projection of perturbations ``delta`` ([B, ...]) onto the eps-ball (eps float or [B])."""
    return _project(delta, per_sample(eps, delta, "eps"), norm)


def _project(delta: torch.Tensor, eps_v: torch.Tensor, norm: str) -> torch.Tensor:
    """:func:`project` with ``eps_v`` already a checked ``[B]`` tensor (no validation, no sync)."""
    eps_b = bcast(eps_v, delta)
    if norm == "linf":
        return torch.maximum(torch.minimum(delta, eps_b), -eps_b)
    if norm == "l2":
        n = bcast(flat_norm(delta), delta)
        return delta * torch.clamp(eps_b / n.clamp_min(1e-12), max=1.0)
    raise ParameterError("norm", norm, f"must be one of {list(NORMS)}")


def _rand(shape, generator: torch.Generator, like: torch.Tensor, normal: bool = False) -> torch.Tensor:
    """Uniform [0, 1) (or standard normal) draws from ``generator`` on its own device, moved to like's."""
    fn = torch.randn if normal else torch.rand
    return fn(shape, generator=generator, device=generator.device, dtype=like.dtype).to(like.device)


def start_point(x, eps, step, norm, kind, generator) -> torch.Tensor:
    if kind == "none":
        return torch.zeros_like(x)
    if kind == "step":  # the original code: uniform in +-step per coordinate, then projected
        return _project((2 * _rand(x.shape, generator, x) - 1) * bcast(step, x), eps, norm)
    if norm == "linf":  # uniform in the eps-cube
        return (2 * _rand(x.shape, generator, x) - 1) * bcast(eps, x)
    # uniform in the L2 ball: uniform direction, radius eps * U^(1/d)
    d = x[0].numel()
    direction = _rand(x.shape, generator, x, normal=True)
    direction = direction / bcast(flat_norm(direction).clamp_min(1e-12), x)
    radius = eps * _rand((x.shape[0],), generator, x) ** (1.0 / d)
    return direction * bcast(radius, x)


def pgd_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor, step_b: torch.Tensor,
              eps_v: torch.Tensor, norm: str, clamp) -> torch.Tensor:
    """One PGD step from ``x_adv``: input gradient of the summed CE, ascent along sign(grad) (L-inf) or
    grad/||grad|| (L2) scaled by ``step_b``, projection onto the eps-ball around ``x``, then the box."""
    x_in = x_adv.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x_in), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x_in)
    with torch.no_grad():
        if norm == "linf":
            direction = grad.sign()
        else:
            direction = grad / bcast(flat_norm(grad).clamp_min(1e-12), grad)
        new = x + _project(x_in.detach() + step_b * direction - x, eps_v, norm)
        return new if clamp is None else new.clamp(*clamp)
