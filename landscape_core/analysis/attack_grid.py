"""The evaluation options the NeurIPS reviewers asked for: restarts, a step-size grid, L2, transfer.

Reviewer 1 worried that the attack's step size and restarts were chosen for the constant scheduler
only, so a scheduler could "win" by meeting a weak attack.  :class:`AttackGridSpec` describes, at one
budget, the attacks that answer it, each an ordinary :data:`~.robustness.EvalSuite` column so that
:func:`~.robustness.evaluate` runs them with per-example masks and the per-example worst:

* a step-size grid at a fixed iteration count: ``PGD{steps} step {r}eps`` for every ratio ``r``;
* PGD with ``restarts`` random restarts keeping, per example, the restart of highest loss
  (``PGD{steps} x{R}``; restarts never lower the error of their first run: same first start);
* the L2 threat model at the budgets ``l2_eps``: our PGD with the L2 step ``2.5 eps / steps`` and
  APGD-CE with ``norm="L2"`` from ``pyautoattack`` (``PGD-L2 {eps}``, ``APGD-L2 {eps}``);
* a transfer attack, :class:`Transfer`: PGD computed on an independently trained surrogate model and
  applied to the evaluated one (a black-box check that needs no query of the target's gradient).

The grid's "worst" is the per-example worst over its L-inf columns (an example counts as broken when
any of them breaks it, or it is misclassified clean): :func:`grid_worst`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..attacks import AttackSpec, make_attack
from ..core.spec import ParameterError, Spec, param
from .robustness import EvalResult, EvalSuite, check_budget

__all__ = ["AttackGridSpec", "grid_suite", "l2_suite", "Transfer", "grid_worst"]


@dataclass(frozen=True)
class AttackGridSpec(Spec):
    """The attack grid of one evaluation (the budget comes from the caller)."""

    steps: int = param(10, ge=1, doc="PGD iterations of every grid column")
    step_ratios: tuple[float, ...] = param((0.1, 0.25, 0.5), each=dict(gt=0.0, le=2.0), min_len=1,
                                           doc="PGD step sizes as fractions of eps")
    restarts: int = param(5, ge=2, doc="random restarts of the restart column (per-example worst)")
    restart_step_ratio: float = param(0.25, gt=0.0, le=2.0, doc="step / eps of the restart column")
    l2_eps: tuple[float, ...] = param((), each=dict(gt=0.0), doc="L2 budgets (empty: no L2 columns)")
    l2_steps: int = param(20, ge=1, doc="iterations of the L2 PGD and APGD columns")

    def validate(self) -> None:
        if len(set(self.step_ratios)) != len(self.step_ratios):
            raise ParameterError("step_ratios", self.step_ratios, "must not repeat a ratio")


def grid_suite(eps: float, grid: AttackGridSpec, random_start: str = "ball") -> EvalSuite:
    """The L-inf columns at ``eps``: one PGD per step ratio, then PGD with restarts."""
    eps = check_budget(eps)
    suite = {f"PGD{grid.steps} step {r:g}eps": AttackSpec(name="pgd", eps=eps, steps=grid.steps, step_size=r * eps,
                                                           random_start=random_start)
             for r in grid.step_ratios}
    suite[f"PGD{grid.steps} x{grid.restarts}"] = AttackSpec(
        name="pgd", eps=eps, steps=grid.steps, step_size=grid.restart_step_ratio * eps, restarts=grid.restarts,
        random_start=random_start)
    return suite


def l2_suite(grid: AttackGridSpec) -> EvalSuite:
    """The L2 columns: our PGD-L2 (step 2.5 eps / steps) and ``pyautoattack``'s APGD-CE in L2, per budget."""
    suite: EvalSuite = {}
    for e in grid.l2_eps:
        suite[f"PGD-L2 {e:g}"] = AttackSpec(name="pgd", norm="l2", eps=e, steps=grid.l2_steps,
                                            step_size=2.5 * e / grid.l2_steps)
        suite[f"APGD-L2 {e:g}"] = AttackSpec(name="apgd-ce", norm="l2", eps=e, steps=grid.l2_steps)
    return suite


class Transfer:
    """``attack(model, x, y, generator=None, eps=None)``: ``spec``'s attack computed on ``surrogate``
    (eval mode), whatever ``model`` is; the evaluated model is only queried for its predictions."""

    def __init__(self, surrogate: nn.Module, spec: AttackSpec):
        if not isinstance(surrogate, nn.Module):
            raise ParameterError("surrogate", type(surrogate).__name__, "must be a torch.nn.Module")
        self.surrogate = surrogate
        self.attack = make_attack(spec)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None, eps=None) -> torch.Tensor:
        return self.attack(self.surrogate, x, y, generator=generator, eps=eps)

    def __repr__(self) -> str:
        return f"Transfer({self.attack.spec!r})"


def grid_worst(result: EvalResult, columns) -> float:
    """Error (%) under the per-example worst of ``columns`` (clean mistakes count as broken)."""
    wrong = result.clean_wrong.clone()
    for c in columns:
        wrong |= result.wrong[c]
    return 100.0 * float(wrong.float().mean()) if wrong.numel() else float("nan")
