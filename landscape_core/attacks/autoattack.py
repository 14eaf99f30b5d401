"""APGD-CE, APGD-DLR and Square: the AutoAttack authors' code (``pyautoattack``) behind :class:`Attack`.

Liu's settings are the spec defaults (APGD 100 iterations, rho 0.75; Square p_init 0.8, 5000 queries,
no rescaled schedule).  The package's ``perturb()`` reseeds the global torch RNG: the caller's CPU and
CUDA RNG states are saved and restored around it.  Its warning about zero-gradient points (e.g. a
constant classifier) carries machine paths and would make notebook outputs unstable, so it is
silenced; gradient masking is tested explicitly by comparing Square with the white-box attacks.
These attacks take one budget (a number), and are for evaluation only.
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from ..core.modes import model_mode
from ..core.rng import preserve_rng
from ..core.spec import ParameterError
from .base import Attack, register

__all__ = ["APGDCE", "APGDDLR", "Square"]

_PACKAGE_NORM = {"linf": "Linf", "l2": "L2"}


def _derive_seed(seed: int, generator: torch.Generator | None) -> int:
    if generator is None:
        return seed
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device).item())


def _num_classes(model: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad():
        return int(model(x[:1]).shape[1])


class _PackageAttack(Attack):
    """Shared handling of a ``pyautoattack`` attack: one budget, RNG, mode, device, warnings."""

    def perturb(self, model, x, y, generator, eps):
        eps = self.spec.eps if eps is None else eps
        if isinstance(eps, torch.Tensor):
            if eps.numel() != 1:
                raise ParameterError("eps", tuple(eps.shape), f"{self.name} takes a single number")
            eps = float(eps)
        eps = float(eps)
        if not math.isfinite(eps) or eps < 0:
            raise ParameterError("eps", eps, "must be finite and >= 0")
        if eps == 0 or x.shape[0] == 0:
            return x.clone()
        seed = _derive_seed(self.spec.seed, generator)
        with model_mode(model, "eval"), preserve_rng(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*points with zero gradient.*")
            x_adv = self.run(model, x, y, eps, seed)
        return x_adv.detach().to(dtype=x.dtype)

    def run(self, model, x, y, eps: float, seed: int) -> torch.Tensor:
        raise NotImplementedError


class _APGD(_PackageAttack):
    loss: str

    def run(self, model, x, y, eps, seed):
        from pyautoattack.autopgd_base import APGDAttack
        s = self.spec
        if self.loss == "dlr" and (k := _num_classes(model, x)) < 3:
            raise ParameterError("name", s.name, f"DLR needs at least 3 classes; the model has {k}")
        attacker = APGDAttack(model, n_iter=s.steps, norm=_PACKAGE_NORM[s.norm], n_restarts=s.restarts, eps=eps,
                              seed=seed, loss=self.loss, eot_iter=1, rho=s.rho, verbose=False, device=x.device)
        return attacker.perturb(x, y)


@register
class APGDCE(_APGD):
    """AutoPGD on the cross-entropy (Croce & Hein 2020)."""
    name, loss = "apgd-ce", "ce"


@register
class APGDDLR(_APGD):
    """AutoPGD on the difference-of-logits ratio (needs at least 3 classes)."""
    name, loss = "apgd-dlr", "dlr"


@register
class Square(_PackageAttack):
    """The black-box Square attack (Andriushchenko et al. 2020), margin loss, no rescaled schedule."""

    name = "square"

    def run(self, model, x, y, eps, seed):
        from pyautoattack.square import SquareAttack
        s = self.spec
        if x.ndim != 4:
            raise ParameterError("name", s.name, f"needs image batches [B, C, H, W], got {tuple(x.shape)}")
        attacker = SquareAttack(model, norm=_PACKAGE_NORM[s.norm], n_queries=s.n_queries, eps=eps, p_init=s.p_init,
                                n_restarts=s.restarts, seed=seed, verbose=False, targeted=False, loss="margin",
                                resc_schedule=False, device=x.device)
        with torch.no_grad():
            return attacker.perturb(x, y)
