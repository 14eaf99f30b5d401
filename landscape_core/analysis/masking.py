"""Gradient-masking flags for an evaluated model, after AutoAttack's own list of warning signs.

A robust error measured with gradient attacks means little if the gradients lie (Athalye et al. 2018;
Croce & Hein 2020 flag the same symptoms).  :func:`masking_check` runs, on the first ``n_examples``
test points, at the model's budget ``eps`` (L-inf, inputs in [0, 1]):

* PGD with ``iterations`` steps each (10, 100, 1000; step ``2.5 eps / steps``, Madry's rule, start in
  the ball): flag **iterations** when the last count still raises the error by more than
  ``tolerance`` points over the one before (the attack has not converged, the number is unreliable);
* Square (black box, ``square_queries``): flag **square** when it beats the best white-box PGD of the
  check by more than ``tolerance`` points (gradients hide adversarial examples a random search finds);
* PGD at ``eps_factors`` x eps and at ``box_eps`` (1.0 = the whole input box, where any image can be
  turned into any other): flag **bounded** when the error there stays below ``box_error_min`` percent
  (robust error must approach 100 % as the budget grows);
* the input gradient of the cross-entropy at the clean points: flag **zero_grad** when more than
  ``zero_grad_max`` percent of the examples have an exactly zero gradient.

A constant classifier raises flags by construction (its error cannot pass 1 - 1/classes, its
gradients vanish); callers judge flags on trained models only, as the claims do.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attacks import AttackSpec, model_device, sweep
from ..core.batching import batch_slices
from ..core.modes import model_mode
from ..core.rng import purpose_generator
from ..core.spec import ParameterError, Spec, param
from .dynamics import Health
from .robustness import check_budget

__all__ = ["MaskingSpec", "MaskingReport", "ModelFlags", "masking_check", "masking_checks",
           "zero_gradient_fraction"]

@dataclass(frozen=True)
class MaskingSpec(Spec):
    """Settings of the gradient-masking check (budget given by the caller)."""

    n_examples: int = param(100, ge=1, doc="first test examples checked")
    iterations: tuple[int, ...] = param((10, 100, 1000), each=dict(ge=1), min_len=2,
                                        doc="PGD step counts, increasing (last vs previous is the flag)")
    eps_factors: tuple[float, ...] = param((1.0, 2.0, 4.0), each=dict(gt=0.0), min_len=1,
                                           doc="multiples of eps of the budget sweep")
    box_eps: float = param(1.0, gt=0.0, doc="budget of the box check (1.0: the whole [0, 1] box)")
    sweep_steps: int = param(100, ge=1, doc="PGD steps of the budget sweep")
    square_queries: int = param(1000, ge=1, doc="queries of the Square check")
    tolerance: float = param(2.0, ge=0.0, doc="points an attack may add before a flag")
    box_error_min: float = param(95.0, ge=0.0, le=100.0, doc="robust error (%) required at box_eps")
    zero_grad_max: float = param(1.0, ge=0.0, le=100.0, doc="examples (%) allowed a zero input gradient")
    batch_size: int = param(100, ge=1)
    seed: int = param(0, ge=0)

    def validate(self) -> None:
        if list(self.iterations) != sorted(set(self.iterations)):
            raise ParameterError("iterations", self.iterations, "must be strictly increasing")


@dataclass(frozen=True)
class MaskingReport:
    """Errors (%) behind each flag, the flags and their reasons (empty when not raised)."""

    n: int
    iterations: dict[int, float]
    sweep: dict[float, float]               # budget -> PGD error (%), the box budget included
    square: float
    white_box: float
    zero_grad: float                        # % of examples with an exactly zero input gradient
    flags: dict[str, str] = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    def row(self) -> dict:
        box = max(self.sweep)
        return {**{f"PGD-{k}": v for k, v in self.iterations.items()}, "Square": self.square,
                f"PGD eps {box:g}": self.sweep[box], "zero grad": self.zero_grad,
                "flags": ", ".join(self.flags) or "none"}


def zero_gradient_fraction(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 100) -> float:
    """Fraction of examples whose cross-entropy input gradient is exactly zero (model in eval mode)."""
    device = model_device(model, x.device)
    zero = 0
    with model_mode(model, "eval"), torch.enable_grad():
        for s in batch_slices(len(x), batch_size):
            xb = x[s].to(device).detach().requires_grad_(True)
            loss = F.cross_entropy(model(xb), y[s].to(device), reduction="sum")
            (g,) = torch.autograd.grad(loss, xb)
            zero += int((g.flatten(1).abs().amax(1) == 0).sum())
    return zero / max(len(x), 1)


def _error(model, x, y, spec: AttackSpec | None, M: MaskingSpec, purpose: str) -> float:
    r = sweep(model, x, y, spec, batch_size=M.batch_size, generator=purpose_generator(M.seed, purpose))
    return 100.0 * r.adv_error


def masking_check(model: nn.Module, x: Tensor, y: Tensor, eps: float, spec: MaskingSpec | None = None
                  ) -> MaskingReport:
    """The four masking checks on the first ``spec.n_examples`` of ``(x, y)`` at L-inf budget ``eps``."""
    M = spec or MaskingSpec()
    eps = check_budget(eps)
    if M.n_examples > len(x):
        raise ParameterError("n_examples", M.n_examples, f"must be <= {len(x)}, the examples given")
    x, y = x[:M.n_examples], y[:M.n_examples]

    def pgd(budget: float, steps: int) -> AttackSpec:
        return AttackSpec(name="pgd", eps=budget, steps=steps, step_size=2.5 * budget / steps)

    its = {k: _error(model, x, y, pgd(eps, k), M, f"masking pgd {k}") for k in M.iterations}
    budgets = sorted({eps * f for f in M.eps_factors if eps * f < M.box_eps} | {M.box_eps})
    swept = {b: _error(model, x, y, pgd(b, M.sweep_steps), M, f"masking sweep {b:g}") for b in budgets}
    square = _error(model, x, y, AttackSpec(name="square", eps=eps, n_queries=M.square_queries, p_init=0.8), M,
                    "masking square")
    white = max([*its.values()] + [v for b, v in swept.items() if b == eps])
    zero = 100.0 * zero_gradient_fraction(model, x, y, M.batch_size)
    last, before = M.iterations[-1], M.iterations[-2]
    flags = {}
    if its[last] > its[before] + M.tolerance:
        flags["iterations"] = f"PGD-{last} {its[last]:.1f} > PGD-{before} {its[before]:.1f} + {M.tolerance:g}"
    if square > white + M.tolerance:
        flags["square"] = f"Square {square:.1f} > best white-box {white:.1f} + {M.tolerance:g}"
    if swept[M.box_eps] < M.box_error_min:
        flags["bounded"] = f"error at eps {M.box_eps:g} is {swept[M.box_eps]:.1f} < {M.box_error_min:g}"
    if zero > M.zero_grad_max:
        flags["zero_grad"] = f"{zero:.1f}% of examples have a zero input gradient (> {M.zero_grad_max:g})"
    return MaskingReport(len(x), its, swept, square, white, zero, flags)


@dataclass(frozen=True)
class ModelFlags:
    """One evaluated model's masking report, with how its training ended (flags count on trained models)."""

    label: str
    report: MaskingReport | None          # None: not checked, the model did not train
    health: Health | None                 # None: a model from outside the study (diagnose), checked

    def row(self) -> dict:
        checked = self.report.row() if self.report else {"flags": "not checked: did not train"}
        return {"model": self.label, **checked, "end of training": self.health.state() if self.health else "unknown"}


def masking_checks(models: dict[str, tuple[nn.Module, Health]], x: Tensor, y: Tensor, eps: float,
                   spec: MaskingSpec | None = None) -> list[ModelFlags]:
    """:func:`masking_check` for every ``label -> (model, health)`` that trained, in order (a model
    still on the initial plateau raises flags by construction and no claim reads them: not checked)."""
    return [ModelFlags(label, masking_check(m, x, y, eps, spec) if h.trained else None, h)
            for label, (m, h) in models.items()]
