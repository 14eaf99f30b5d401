"""A model's parameters as one flat vector: the one place that defines the order and the shapes.

Every flat vector of the study (a Hessian eigenvector, a random or filter-normalised direction, a
Bezier control point, the distance from the initial point) follows the order of
``model.parameters()`` restricted to ``requires_grad``.  :func:`perturbed` moves a model to
``theta + delta`` for the duration of a block and restores it bitwise.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn

__all__ = ["trainable_parameters", "num_parameters", "get_flat_params", "set_flat_params", "flat_to_tensors",
           "as_flat", "perturbed", "param_layout", "flatten_named"]


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters with ``requires_grad``, in ``model.parameters()`` order (flat-vector order)."""
    return [p for p in model.parameters() if p.requires_grad]


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in trainable_parameters(model))


def get_flat_params(model: nn.Module) -> torch.Tensor:
    """A detached copy of the trainable parameters as one flat vector."""
    return torch.cat([p.detach().reshape(-1) for p in trainable_parameters(model)]).clone()


def flat_to_tensors(flat: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Split a flat vector into views shaped like ``like`` (on ``flat``'s device and dtype)."""
    total = sum(t.numel() for t in like)
    if flat.numel() != total:
        raise ValueError(f"flat vector has {flat.numel()} entries, the parameters {total}")
    out, start = [], 0
    for t in like:
        out.append(flat[start:start + t.numel()].view_as(t))
        start += t.numel()
    return out


def set_flat_params(model: nn.Module, flat: torch.Tensor) -> None:
    """Copy a flat vector into the trainable parameters (in place)."""
    params = trainable_parameters(model)
    with torch.no_grad():
        for p, value in zip(params, flat_to_tensors(torch.as_tensor(flat), params)):
            p.copy_(value)


def as_flat(direction, model: nn.Module) -> torch.Tensor:
    """``direction`` (any array-like) as a flat vector on the model's device and dtype, size-checked."""
    params = trainable_parameters(model)
    d = torch.as_tensor(direction).reshape(-1).to(device=params[0].device, dtype=params[0].dtype)
    if d.numel() != sum(p.numel() for p in params):
        raise ValueError(f"direction has {d.numel()} entries, the model {num_parameters(model)} "
                         "trainable parameters")
    return d


@contextmanager
def perturbed(model: nn.Module, delta) -> Iterator[nn.Module]:
    """Temporarily set the trainable parameters to ``theta + delta``; restore them bitwise.

    ``delta`` is a flat vector (``a * v`` or ``a * d1 + b * d2``).  The original values are copied
    before and written back after, so ``theta`` is restored exactly (not ``theta + delta - delta``).
    Buffers (BatchNorm running statistics) are not touched.
    """
    params = trainable_parameters(model)
    saved = [p.detach().clone() for p in params]
    d = as_flat(delta, model)
    try:
        with torch.no_grad():
            for p, step in zip(params, flat_to_tensors(d, params)):
                p.add_(step)
        yield model
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)


def param_layout(base: nn.Module) -> tuple[list[str], list[torch.Size]]:
    named = list(base.named_parameters())
    if not named:
        raise ValueError("the base model has no parameters")
    dtypes = {p.dtype for _, p in named}
    if len(dtypes) != 1:
        raise ValueError(f"all parameters of the base model must share one dtype, found {dtypes}")
    return [n for n, _ in named], [p.shape for _, p in named]


def flatten_named(value, names: list[str], shapes: list[torch.Size], what: str) -> Tensor:
    """A state dict, parameter dict, model or flat vector as a detached flat vector in the order of
    ``names`` (with ``shapes``, from :func:`param_layout`); ``what`` names it in errors."""
    if isinstance(value, nn.Module):
        value = value.state_dict()
    total = sum(math.prod(s) for s in shapes)
    if isinstance(value, Tensor):
        if value.dim() != 1 or value.numel() != total:
            raise ValueError(f"{what}: a flat vector must have shape ({total},), got {tuple(value.shape)}")
        return value.detach().clone()
    parts = []
    for name, shape in zip(names, shapes):
        if name not in value:
            raise KeyError(f"{what}: parameter '{name}' of the base model is missing")
        if value[name].shape != shape:
            raise ValueError(f"{what}: '{name}' has shape {tuple(value[name].shape)}, expected {tuple(shape)}")
        parts.append(value[name].detach().reshape(-1))
    return torch.cat(parts).clone()
