"""The attack interface: a validated :class:`AttackSpec`, an :class:`Attack` base class and a registry.

Every attack of the study is a subclass of :class:`Attack` registered under its spec name with
:func:`register`; :func:`make_attack` builds the registered class for a spec, so no code branches on
attack names.  An attack is called as ``attack(model, x, y, generator=None, eps=None) -> x_adv``:

* ``generator`` draws its randomness (None: a generator seeded with ``spec.seed``, deterministic);
* ``eps`` overrides ``spec.eps`` (a scheduled budget during training).

A new attack is a class with ``name``, optionally ``for_training``, and ``perturb``; importing its
module registers it (``landscape_core.attacks`` imports every attack module).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..core.spec import ParameterError, Spec, param
from .steps import NORMS, RANDOM_STARTS

__all__ = ["ATTACKS", "Attack", "AttackSpec", "make_attack", "register"]

ATTACKS: dict[str, type["Attack"]] = {}
"""Registered attack classes by spec name, in registration order."""


def register(cls: type["Attack"]) -> type["Attack"]:
    """Class decorator: make ``cls`` the attack of ``AttackSpec(name=cls.name)``."""
    if cls.name in ATTACKS:
        raise ValueError(f"an attack named '{cls.name}' is registered already ({ATTACKS[cls.name].__name__})")
    ATTACKS[cls.name] = cls
    return cls


@dataclass(frozen=True)
class AttackSpec(Spec):
    """An attack as used in training or in the robust evaluation of Table 1."""

    name: str = param("pgd", doc="a registered attack: none, fgsm, pgd, apgd-ce, apgd-dlr, square, trades-kl, multi-targeted")
    eps: float = param(0.3, ge=0.0, doc="adversarial budget (inputs in [0, 1])")
    norm: str = param("linf", choices=NORMS, doc="threat model")
    steps: int = param(10, ge=1, doc="PGD steps; APGD iterations (n_iter)")
    step_size: float | None = param(None, gt=0.0, doc="PGD step size (required for pgd)")
    restarts: int = param(1, ge=1, doc="random restarts (PGD: highest loss kept; APGD/Square: n_restarts)")
    random_start: str = param("ball", choices=RANDOM_STARTS, doc="PGD start: eps-ball, +-step (original), none")
    rho: float = param(0.75, gt=0.0, lt=1.0, doc="APGD step-size decrease threshold")
    n_queries: int = param(5000, ge=1, doc="Square queries")
    p_init: float = param(0.8, gt=0.0, le=1.0, doc="Square initial fraction of pixels changed")
    seed: int = param(0, ge=0, doc="seed when no generator is given")

    def validate(self) -> None:
        if self.name not in ATTACKS:
            close = difflib.get_close_matches(self.name, list(ATTACKS), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ParameterError("name", self.name, f"{hint}must be one of {list(ATTACKS)}")
        ATTACKS[self.name].check(self)

    @property
    def for_training(self) -> bool:
        """Whether a training loop may use this attack (the package attacks are evaluation only)."""
        return ATTACKS[self.name].for_training


class Attack:
    """``attack(model, x, y, generator=None, eps=None) -> x_adv`` for one :class:`AttackSpec`."""

    name: ClassVar[str]
    for_training: ClassVar[bool] = False

    def __init__(self, spec: AttackSpec):
        if not isinstance(spec, AttackSpec):
            raise ParameterError("spec", spec, "must be an AttackSpec")
        self.spec = spec

    @classmethod
    def check(cls, spec: AttackSpec) -> None:
        """Cross-field checks of a spec naming this attack (raise :class:`ParameterError`)."""

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None, eps=None) -> torch.Tensor:
        return self.perturb(model, x.detach(), y.detach(), generator, eps)

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None,
                eps) -> torch.Tensor:
        """The adversarial inputs; ``eps`` is None (use ``spec.eps``) or a scheduled budget."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


def make_attack(spec: AttackSpec) -> Attack:
    """The registered attack for ``spec`` (same interface for every attack)."""
    if not isinstance(spec, AttackSpec):
        raise ParameterError("spec", spec, "must be an AttackSpec")
    return ATTACKS[spec.name](spec)
