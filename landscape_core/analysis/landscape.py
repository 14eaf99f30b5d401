"""Directions in parameter space and loss-landscape scans.

Everything here works on *flat* vectors over the model's trainable parameters
(:mod:`landscape_core.core.params`), so a Hessian eigenvector, a random direction and a
filter-normalised direction are interchangeable.

* Directions: :func:`random_direction` (unit norm) and :func:`filter_normalized_direction` (Li et
  al. 2018, "Visualizing the loss landscape of neural nets": every filter rescaled to the norm of the
  matching filter of the weights; biases and normalisation-layer parameters zeroed).
* :func:`scan_1d` / :func:`scan_2d`: adversarial loss and robust error (plus clean loss / error) at
  every grid point, with the attack REGENERATED at every grid point (Liu et al. 2020, Fig 12 and the
  original ``param_scan_*`` with ``adv_calc_freq = 1``).

Randomness (common random numbers): a scan draws ONE attack seed from ``generator`` and every grid
point runs its attack with a fresh generator seeded with it, so a point's value does not depend on
which other points are in the grid, and the noise from PGD's random start is shared across the grid
(smoother surfaces).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from ..attacks import sweep
from ..attacks.evaluation import AttackLike
from ..core.params import as_flat, perturbed, trainable_parameters
from ..core.rng import draw_seed, seeded_generator

__all__ = ["random_direction", "filter_normalized_direction", "Scan1DResult", "Scan2DResult", "scan_1d", "scan_2d"]


def random_direction(model: nn.Module, generator: torch.Generator) -> torch.Tensor:
    """A Gaussian direction over the trainable parameters, scaled to unit Euclidean norm.

    ``generator`` is required: two directions drawn from one generator differ, and the same seed
    gives the same direction on any run.
    """
    params = trainable_parameters(model)
    d = torch.randn(sum(p.numel() for p in params), generator=generator, device=generator.device,
                    dtype=torch.float64)
    d = d / d.norm()
    return d.to(device=params[0].device, dtype=params[0].dtype)


_NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def filter_normalized_direction(model: nn.Module, generator: torch.Generator) -> torch.Tensor:
    """Li et al. (2018) filter-normalised Gaussian direction (flat vector, NOT unit norm).

    For every weight with two or more dimensions, each filter (row along the output dimension:
    a conv output channel, a linear output neuron) is rescaled so that its norm equals the norm of
    the same filter of the weights.  Biases (one-dimensional parameters) and all parameters of
    normalisation layers (BatchNorm, GroupNorm, LayerNorm) are set to zero ("ignore biasbn").  The
    draw follows the flat-vector order, one ``randn`` per non-zeroed parameter.
    """
    norm_params = {id(p) for m in model.modules() if isinstance(m, _NORM_LAYERS)
                   for p in m.parameters(recurse=False)}
    pieces = []
    for p in trainable_parameters(model):
        if p.dim() <= 1 or id(p) in norm_params:
            pieces.append(torch.zeros(p.numel(), dtype=torch.float64))
            continue
        d = torch.randn(p.shape, generator=generator, device=generator.device,
                        dtype=torch.float64).cpu()
        rows = d.reshape(p.shape[0], -1)
        w_norm = p.detach().reshape(p.shape[0], -1).double().cpu().norm(dim=1, keepdim=True)
        d_norm = rows.norm(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
        pieces.append((rows * (w_norm / d_norm)).reshape(-1))
    p0 = trainable_parameters(model)[0]
    return torch.cat(pieces).to(device=p0.device, dtype=p0.dtype)


@dataclass(frozen=True)
class Scan1DResult:
    """Values along ``theta + alpha * d``; every array has the shape of ``alphas``."""
    alphas: np.ndarray
    adv_loss: np.ndarray
    adv_error: np.ndarray
    clean_loss: np.ndarray
    clean_error: np.ndarray
    attack_seed: int


@dataclass(frozen=True)
class Scan2DResult:
    """Values on the grid ``theta + alpha * d1 + beta * d2``; arrays of shape (len(alphas), len(betas))."""
    alphas: np.ndarray
    betas: np.ndarray
    adv_loss: np.ndarray
    adv_error: np.ndarray
    clean_loss: np.ndarray
    clean_error: np.ndarray
    attack_seed: int


def _scan(model, deltas, shape, x, y, attack, batch_size, generator, progress, desc):
    seed = draw_seed(generator)
    out = np.zeros((4, len(deltas)))
    for i, delta in enumerate(tqdm(deltas, desc=desc, disable=not progress)):
        with perturbed(model, delta):
            r = sweep(model, x, y, attack, batch_size=batch_size, generator=seeded_generator(seed, x.device))
        out[:, i] = (r.adv_loss, r.adv_error, r.clean_loss, r.clean_error)
    return [a.reshape(shape) for a in out], seed


def scan_1d(model: nn.Module, direction, alphas: Sequence[float], x: torch.Tensor, y: torch.Tensor,
            attack: AttackLike | None, batch_size: int = 500, generator: torch.Generator | None = None,
            progress: bool = False) -> Scan1DResult:
    """Adversarial/clean loss and error at ``theta + alpha * direction`` for every alpha.

    The attack is regenerated at every point (with the scan's common attack seed, see the module
    docstring); the model's parameters are restored bitwise afterwards.
    """
    d = as_flat(direction, model)
    alphas = np.asarray(alphas, dtype=float).reshape(-1)
    arrays, seed = _scan(model, [float(a) * d for a in alphas], alphas.shape, x, y, attack,
                         batch_size, generator, progress, "scan 1d")
    return Scan1DResult(alphas, *arrays, attack_seed=seed)


def scan_2d(model: nn.Module, d1, d2, alphas: Sequence[float], betas: Sequence[float],
            x: torch.Tensor, y: torch.Tensor, attack: AttackLike | None, batch_size: int = 500,
            generator: torch.Generator | None = None, progress: bool = False) -> Scan2DResult:
    """As :func:`scan_1d` on the grid ``theta + alpha * d1 + beta * d2`` (alpha-major order)."""
    u, v = as_flat(d1, model), as_flat(d2, model)
    alphas = np.asarray(alphas, dtype=float).reshape(-1)
    betas = np.asarray(betas, dtype=float).reshape(-1)
    deltas = [float(a) * u + float(b) * v for a in alphas for b in betas]
    arrays, seed = _scan(model, deltas, (len(alphas), len(betas)), x, y, attack, batch_size,
                         generator, progress, "scan 2d")
    return Scan2DResult(alphas, betas, *arrays, attack_seed=seed)
