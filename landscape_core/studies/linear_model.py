"""01_linear_theory: Sec 3.1-3.2, Fig 1, Prop 1, Thm 1-2 (the algorithms are in
:mod:`landscape_core.analysis.linear_theory`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..analysis import linear_theory as lt
from ..core.spec import param
from .base import NotebookParams, increasing

__all__ = ["LinearTheoryParams", "Fig1Check", "fig1_checks", "BruteForce", "brute_force_checks", "sgd_tails"]


@dataclass(frozen=True)
class LinearTheoryParams(NotebookParams):
    """01_linear_theory: Sec 3.1-3.2, Fig 1, Prop 1, Thm 1-2."""

    eps: float = param(0.3, ge=0.0, doc="the budget marked in the set figures (and the sliders' start)")
    x: float = param(1.0, doc="clean input of Fig 1")
    fig1_eps: tuple[float, ...] = param((0.6, 1.2), each=dict(ge=0.0), min_len=1, doc="budgets of the Fig 1 panels")
    fig1_grid: int = param(401, ge=11, doc="θ grid points on [-2, 2]")
    num_classes: int = param(3, ge=3, doc="K (Thm 1 is for K >= 3)")
    dim: int = param(2, ge=1, le=12, doc="input dimension m of the synthetic data")
    n_per_class: int = param(40, ge=2)
    spread: float = param(0.08, gt=0.0, doc="std of each synthetic class")
    eps_grid: tuple[float, ...] = param((0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1),
                                        each=dict(ge=0.0), min_len=3, doc="budgets for the V_eps / T_eps fractions")
    n_directions: int = param(1000, ge=10, doc="sampled W per set fraction")
    n_checks: int = param(4, ge=0, doc="directions checked by brute-force line search / box vertices")
    train_steps: int = param(100, ge=1, doc="full-batch steps of linear adversarial training")
    train_lr: float = param(0.5, gt=0.0)
    collapse_eps: tuple[float, ...] = param((0.0, 0.4, 0.8, 1.0), each=dict(ge=0.0), min_len=2,
                                            doc="budgets of the linear adversarial training scan")
    sgd_eps: tuple[float, ...] = param((0.0, 0.2, 0.4), each=dict(ge=0.0), min_len=2, doc="Thm 2 budgets")
    sgd_iterations: int = param(150, ge=10)
    sgd_lr: float = param(0.1, gt=0.0)
    sgd_batch_size: int = param(16, ge=1)
    sgd_hidden: int = param(16, ge=1)
    sgd_seeds: int = param(1, ge=1, doc="independent SGD runs per budget")

    def validate(self):
        for name in ("eps_grid", "collapse_eps", "sgd_eps"):
            increasing(name, getattr(self, name), "01_linear_theory")


@dataclass(frozen=True)
class Fig1Check:
    """The closed form of g_eps against an exhaustive inner maximisation, and the kink's one-sided slopes."""

    eps: float
    deviation: float      # max |closed form - brute force| over the theta grid
    left: float
    right: float

    @property
    def jump(self) -> float:
        return self.right - self.left


def fig1_checks(P: LinearTheoryParams) -> list[Fig1Check]:
    theta = np.linspace(-2, 2, P.fig1_grid)
    out = []
    for eps in P.fig1_eps:
        dev = np.abs(lt.adversarial_logistic_loss(theta, P.x, eps)
                     - lt.brute_force_adversarial_logistic_loss(theta, P.x, eps)).max()
        out.append(Fig1Check(eps, float(dev), *lt.kink_slopes(P.x, eps)))
    return out


@dataclass(frozen=True)
class BruteForce:
    """The exact V_eps / T_eps tests confirmed by brute force on ``n`` directions each (Prop 1, Thm 1)."""

    n: int
    agree_v: int          # directions whose V_eps membership (box vertices) equals the closed form at every eps
    nested: bool          # V_eps membership never returns once lost as eps grows
    agree_t: int          # directions whose line search puts argmin != 0 at tau/2 and = 0 at 2 tau
    witness_tau: float    # tau of the direction built to reach eps_bar
    witness_below: float  # its best scaling at 0.9 eps_bar (non-zero: it is not yet in T_eps)


def brute_force_checks(data: "lt.Blobs", fractions: dict, eps_bar: float, P: LinearTheoryParams,
                       generator: torch.Generator) -> BruteForce:
    """V_eps membership from the box vertices of every point, and T_eps membership from a line search of
    L_eps(gamma W) over a logarithmic gamma grid down to 1e-6 (for a small tau the best non-zero scaling
    at tau/2 is itself tiny), with the inner maximum found by PGD."""
    eps_grid = np.asarray(P.eps_grid)
    agree_v, nested = 0, True
    for W in fractions["W_near"][: P.n_checks]:
        member = [lt.in_version_space_brute_force(W, data.x, data.y, e) for e in eps_grid]
        closed = [bool(lt.version_space_radius(W[None], data.x, data.y)[0] >= e) for e in eps_grid]
        agree_v += member == closed
        nested &= all(a >= b for a, b in zip(member, member[1:]))
    gammas = np.concatenate([-np.logspace(-6, 1, 36)[::-1], [0.0], np.logspace(-6, 1, 36)])
    W_iso = torch.randn(P.n_checks, P.num_classes, P.dim, generator=generator, dtype=torch.float64)
    agree_t = 0
    for W in W_iso:
        t = float(lt.tau(W[None], data.x, data.y)[0])
        agree_t += (lt.scaled_loss_argmin(W, data.x, data.y, 0.5 * t, gammas) != 0.0
                    and lt.scaled_loss_argmin(W, data.x, data.y, 2.0 * t, gammas) == 0.0)
    witness = lt.direction_witness(data.x, data.y, P.num_classes)
    w_tau = float(lt.tau(witness[None], data.x, data.y)[0])
    w_below = lt.scaled_loss_argmin(witness, data.x, data.y, 0.9 * eps_bar, gammas)
    return BruteForce(P.n_checks, int(agree_v), bool(nested), int(agree_t), w_tau, float(w_below))


def sgd_tails(data: "lt.Blobs", P: LinearTheoryParams) -> list[dict]:
    """Thm 2: full-batch gradient norms at the last iterates of constant-step SGD, per budget (all seeds)."""
    tails = []
    for e in P.sgd_eps:
        runs = [lt.sgd_gradient_tail(data, e, iterations=P.sgd_iterations, lr=P.sgd_lr, batch_size=P.sgd_batch_size,
                                     hidden=P.sgd_hidden, seed=P.seed + s) for s in range(P.sgd_seeds)]
        tails.append({"eps": e, "norms": np.concatenate([r["norms"] for r in runs])})
    return tails
