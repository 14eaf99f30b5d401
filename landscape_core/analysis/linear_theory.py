"""Sec 3 of Liu et al. (2020): the adversarial loss of linear models, and SGD on a smooth model.

Three pieces, each checked numerically in ``notebooks/01_linear_theory``:

1. **Fig 1 / App A.1 (K = 2).**  For ``g(x, θ) = log(1 + exp(θx))`` and the L∞ ball of radius ε the
   inner maximum has the closed form ``g_ε(x, θ) = log(1 + exp(θx + ε|θ|))`` (the logit ``θx'`` is
   maximised at ``x' = x + ε sign(θ)``).  It is convex but has a kink at θ = 0 whose one-sided slopes
   are ``(x - ε)/2`` and ``(x + ε)/2``: the gradient jumps by ε, so a larger budget gives a sharper kink.

2. **Prop 1 / Thm 1 (K ≥ 3, ``f(x) = Wx``, no bias).**  For the dataset loss ``L_ε(W)`` (mean of
   ``g_ε``) both sets have exact finite-dimensional descriptions, derived here from the definitions:

   * version space ``V_ε``: ``(w_j - w_y)ᵀx' ≤ 0`` for all ``x' ∈ S_ε(x)`` iff
     ``(w_j - w_y)ᵀx + ε‖w_j - w_y‖₁ ≤ 0``; so ``W ∈ V_ε`` iff ``ε ≤ r(W)`` with
     ``r(W) = min_{i, j≠y_i} -(w_j - w_{y_i})ᵀx_i / ‖w_j - w_{y_i}‖₁`` (−∞ if W misclassifies a point).
     Hence ``V_ε2 ⊆ V_ε1`` for ``ε1 ≤ ε2`` (Prop 1).
   * ``T_ε = {W : 0 ∈ argmin_γ L_ε(γW)}``.  ``γ ↦ L_ε(γW)`` is convex, so 0 is a minimiser iff both
     one-sided derivatives at 0 are ≥ 0.  At W = 0 every ``x'`` in the ball is a maximiser (the loss is
     log K for all of them), so by Danskin's theorem the right derivative is
     ``(1/NK) Σ_i (u_iᵀx_i + ε‖u_i‖₁)`` with ``u_i = Σ_j w_j - K w_{y_i}``, and the left one the same
     with ``-u_iᵀx_i``.  So ``W ∈ T_ε`` iff ``ε ≥ τ(W) = |Σ_i u_iᵀx_i| / Σ_i ‖u_i‖₁`` — the sets grow
     with ε (Thm 1).
   * the threshold ``ε̄ = sup_W τ(W)`` above which ``T_ε`` is everything and W = 0 minimises L_ε.
     Writing ``U_k = Σ_j w_j - K w_k`` (any U with ``Σ_k U_k = 0`` is reachable) the supremum is a
     linear-fractional programme that separates over input coordinates d; its vertices pair two
     classes a, b, which gives the closed form
     ``ε̄ = max_{d, a≠b} (S_{a,d} - S_{b,d}) / (n_a + n_b)``, ``S_k = Σ_{i: y_i = k} x_i``
     (half the largest per-coordinate gap between class means when classes are balanced).
     The paper states that App B.2 gives a lower bound for ε̄; that appendix is not part of the
     reference text we have, so we report the exact value beside two bounds that follow from the same
     argument: the lower bound from a single coordinate and class pair (it is the maximum itself) and
     the per-example sufficient condition ``ε ≥ max_i ‖x_i‖∞`` (the adversary can then erase every
     input, ``x' = 0``, so no W beats the constant classifier).

   Adversarial training of the linear model (full-batch subgradient descent, inner maximisation by
   PGD) then ends at ``W ≈ 0`` exactly when ε ≥ ε̄.

3. **Thm 2 flavour.**  SGD with a constant step on the adversarial loss of a *smooth* model
   (softplus MLP, Assumption 1 holds) keeps a non-vanishing full-batch gradient at the end of training
   whose size grows with ε (``‖∇L_ε‖`` bounded in probability by multiples of ``ε L_θx``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..attacks import pgd

# --------------------------------------------------------------------------------------------------
# 1. Logistic regression, K = 2 (Fig 1)
# --------------------------------------------------------------------------------------------------


def logistic_loss(theta, x: float) -> np.ndarray:
    """``g(x, θ) = log(1 + exp(θx))`` (the paper's Fig 1 loss), vectorised over θ."""
    return np.logaddexp(0.0, np.asarray(theta, dtype=float) * x)


def adversarial_logistic_loss(theta, x: float, eps: float) -> np.ndarray:
    """Closed form of ``max_{|x'-x| ≤ ε} log(1 + exp(θx'))`` = ``log(1 + exp(θx + ε|θ|))``."""
    theta = np.asarray(theta, dtype=float)
    return np.logaddexp(0.0, theta * x + eps * np.abs(theta))


def best_case_logistic_loss(theta, x: float, eps: float) -> np.ndarray:
    """Lower edge of the band of Fig 1: ``min_{|x'-x| ≤ ε} g(x', θ)``."""
    theta = np.asarray(theta, dtype=float)
    return np.logaddexp(0.0, theta * x - eps * np.abs(theta))


def brute_force_adversarial_logistic_loss(theta, x: float, eps: float, n_grid: int = 2001) -> np.ndarray:
    """The inner maximisation done by exhaustive search over ``n_grid`` points of ``[x-ε, x+ε]``."""
    theta = np.asarray(theta, dtype=float)
    xs = np.linspace(x - eps, x + eps, n_grid)
    return np.logaddexp(0.0, theta[..., None] * xs).max(axis=-1)


def kink_slopes(x: float, eps: float, h: float = 1e-6) -> tuple[float, float]:
    """One-sided derivatives of ``g_ε(x, ·)`` at θ = 0 by finite differences: ``((x-ε)/2, (x+ε)/2)``."""
    g0 = adversarial_logistic_loss(0.0, x, eps)
    left = (g0 - adversarial_logistic_loss(-h, x, eps)) / h
    right = (adversarial_logistic_loss(h, x, eps) - g0) / h
    return float(left), float(right)


# --------------------------------------------------------------------------------------------------
# 2. Linear multiclass, K ≥ 3 (Prop 1, Thm 1)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blobs:
    """A synthetic K-class data set: points ``x`` [N, m] (float64), labels ``y`` [N], class centres."""

    x: torch.Tensor
    y: torch.Tensor
    centres: torch.Tensor

    @property
    def num_classes(self) -> int:
        return int(self.centres.shape[0])


def make_blobs(n_per_class: int, num_classes: int, dim: int, spread: float, radius: float,
               generator: torch.Generator) -> Blobs:
    """K Gaussian classes whose centres sit evenly on a circle of ``radius`` in the first two input
    coordinates (the other coordinates are pure noise), so a bias-free linear classifier separates
    them when ``spread`` is small; isotropic noise of std ``spread``."""
    if dim < 2:
        raise ValueError("dim must be >= 2")
    angles = 2 * np.pi * np.arange(num_classes) / num_classes
    centres = torch.zeros(num_classes, dim, dtype=torch.float64)
    centres[:, 0] = torch.from_numpy(radius * np.cos(angles))
    centres[:, 1] = torch.from_numpy(radius * np.sin(angles))
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    x = centres[y] + spread * torch.randn(len(y), dim, generator=generator, dtype=torch.float64)
    return Blobs(x=x, y=y, centres=centres)


def _u_vectors(W: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``u_i = Σ_j w_j - K w_{y_i}`` for a batch of models ``W`` [S, K, m] → [S, N, m]."""
    K = W.shape[1]
    return W.sum(dim=1, keepdim=True) - K * W[:, y, :]


def tau(W: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The smallest ε with ``W ∈ T_ε`` for the dataset loss (see module docstring), for W [S, K, m].

    Directions with all ``w_k`` equal give a constant classifier at every scale: τ = 0.
    """
    u = _u_vectors(W, y)
    num = (u * x[None]).sum(dim=(1, 2)).abs()
    den = u.abs().sum(dim=(1, 2))
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.zeros_like(den))


def version_space_radius(W: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``r(W)``: the largest ε with ``W ∈ V_ε`` (−inf if W misclassifies a point), for W [S, K, m]."""
    diff = W[:, None, :, :] - W[:, y, None, :]          # [S, N, K, m]: w_j - w_{y_i}
    margin = -(diff * x[None, :, None, :]).sum(-1)       # -(w_j - w_y)ᵀ x_i
    l1 = diff.abs().sum(-1)
    ratio = torch.where(l1 > 0, margin / l1.clamp_min(1e-300), torch.full_like(l1, float("inf")))
    ratio = torch.where((l1 > 0) & (margin < 0), torch.full_like(l1, -float("inf")), ratio)
    return ratio.flatten(1).min(dim=1).values


def in_version_space_brute_force(W: torch.Tensor, x: torch.Tensor, y: torch.Tensor, eps: float) -> bool:
    """Check the definition of ``V_ε`` for one W [K, m] on every vertex of every L∞ box (small m only)."""
    m = x.shape[1]
    corners = torch.cartesian_prod(*[torch.tensor([-1.0, 1.0], dtype=x.dtype)] * m).reshape(-1, m)
    xs = x[:, None, :] + eps * corners[None]             # [N, 2^m, m]
    logits = xs @ W.T                                    # [N, 2^m, K]
    own = logits.gather(-1, y[:, None, None].expand(-1, xs.shape[1], 1))
    return bool((logits - own <= 1e-12).all())


def critical_eps(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> dict:
    """Exact ε̄ = sup_W τ(W) and the coordinate/class pair attaining it, plus two bounds."""
    n = torch.bincount(y, minlength=num_classes).to(x.dtype)
    sums = torch.zeros(num_classes, x.shape[1], dtype=x.dtype).index_add_(0, y, x)
    gap = (sums[:, None, :] - sums[None, :, :]) / (n[:, None, None] + n[None, :, None])
    value, flat = gap.flatten().max(dim=0)
    a, b, d = np.unravel_index(int(flat), tuple(gap.shape))
    return {"eps_bar": float(value), "coordinate": int(d), "classes": (int(a), int(b)),
            "erase_bound": float(x.abs().max())}


def direction_witness(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """A direction W [K, m] with τ(W) = ε̄ (from the vertex of the linear-fractional programme)."""
    info = critical_eps(x, y, num_classes)
    a, b = info["classes"]
    U = torch.zeros(num_classes, x.shape[1], dtype=x.dtype)
    U[a, info["coordinate"]], U[b, info["coordinate"]] = 1.0, -1.0
    return -U / num_classes                               # w_k = -U_k / K gives Σ_j w_j - K w_k = U_k


def linear_model(W: torch.Tensor) -> nn.Module:
    """``f(x) = Wx`` as a bias-free ``nn.Linear`` holding W [K, m]."""
    model = nn.Linear(W.shape[1], W.shape[0], bias=False).to(W.dtype)
    with torch.no_grad():
        model.weight.copy_(W)
    return model


def adversarial_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                     steps: int = 20, generator: torch.Generator | None = None) -> float:
    """Mean cross-entropy at PGD adversarial examples (L∞, unbounded input space)."""
    x_adv = x if eps == 0 else pgd(model, x, y, eps, steps=steps, step_ratio=2.5 / steps,
                                   random_start="none", generator=generator, clamp=None)
    with torch.no_grad():
        return float(F.cross_entropy(model(x_adv), y))


def scaled_loss_argmin(W: torch.Tensor, x: torch.Tensor, y: torch.Tensor, eps: float,
                       gammas: np.ndarray, steps: int = 20) -> float:
    """Brute-force ``argmin_γ L_ε(γW)`` over a grid (inner maximum by PGD): checks the τ criterion."""
    losses = [adversarial_loss(linear_model(g * W), x, y, eps, steps=steps) for g in gammas]
    return float(gammas[int(np.argmin(losses))])


def set_fractions(data: Blobs, eps_grid, n_directions: int, generator: torch.Generator,
                  noise: float = 1.0) -> dict:
    """Fractions of sampled W in ``T_ε`` (isotropic Gaussian directions) and in ``V_ε``.

    ``V_ε`` is tiny for isotropic directions, so its directions are sampled around the class-mean
    classifier ``w_k = c_k - mean(c)`` with Gaussian noise of relative size ``noise``.
    """
    K, m = data.num_classes, data.x.shape[1]
    W_iso = torch.randn(n_directions, K, m, generator=generator, dtype=torch.float64)
    W0 = data.centres - data.centres.mean(0)
    W_near = W0 + noise * W0.norm() / np.sqrt(K * m) * torch.randn(
        n_directions, K, m, generator=generator, dtype=torch.float64)
    t, r = tau(W_iso, data.x, data.y), version_space_radius(W_near, data.x, data.y)
    eps = np.asarray(eps_grid, dtype=float)
    return {"eps": eps,
            "T": np.array([(t <= e).double().mean().item() for e in eps]),
            "V": np.array([(r >= e).double().mean().item() for e in eps]),
            "tau": t.numpy(), "radius": r.numpy(), "W_near": W_near}


def train_linear(data: Blobs, eps: float, *, steps: int, lr: float, generator: torch.Generator,
                 pgd_steps: int = 10) -> dict:
    """Adversarial training of ``f(x) = Wx``: full-batch subgradient descent, lr decayed linearly to 0.

    Returns the final W, its Frobenius norm, the adversarial loss compared with the constant
    classifier's ``log K``, and the accuracy on clean data.
    """
    K, m = data.num_classes, data.x.shape[1]
    W = 0.01 * torch.randn(K, m, generator=generator, dtype=torch.float64)
    model = linear_model(W)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 - t / steps)
    for _ in range(steps):
        x_adv = data.x if eps == 0 else pgd(model, data.x, data.y, eps, steps=pgd_steps,
                                            step_ratio=2.5 / pgd_steps, random_start="none", clamp=None)
        loss = F.cross_entropy(model(x_adv), data.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    W = model.weight.detach().clone()
    with torch.no_grad():
        acc = float((model(data.x).argmax(1) == data.y).double().mean())
    return {"eps": eps, "W": W, "norm": float(W.norm()),
            "adv_loss": adversarial_loss(model, data.x, data.y, eps, steps=50),
            "log_K": float(np.log(K)), "accuracy": acc}


def collapse_scan(data: Blobs, eps_grid, *, steps: int, lr: float, seed: int, rel_tol: float = 0.02) -> dict:
    """Train the linear model for each ε; the empirical ε̄ is the first ε whose final ‖W‖ falls below
    ``rel_tol`` times the largest final norm of the scan (training ends at the constant classifier)."""
    runs = [train_linear(data, float(e), steps=steps, lr=lr, generator=torch.Generator().manual_seed(seed))
            for e in eps_grid]
    norms = np.array([r["norm"] for r in runs])
    collapsed = norms < rel_tol * norms.max()
    first = int(np.argmax(collapsed)) if collapsed.any() else None
    return {"eps": np.asarray(eps_grid, float), "norm": norms, "collapsed": collapsed,
            "num_classes": data.num_classes,
            "adv_loss": np.array([r["adv_loss"] for r in runs]),
            "accuracy": np.array([r["accuracy"] for r in runs]),
            "empirical_eps_bar": None if first is None else float(eps_grid[first]),
            "last_not_collapsed": None if first is None or first == 0 else float(eps_grid[first - 1])}


# --------------------------------------------------------------------------------------------------
# 3. Theorem 2 flavour: SGD on a smooth model
# --------------------------------------------------------------------------------------------------


def smooth_mlp(dim: int, hidden: int, num_classes: int, seed: int) -> nn.Module:
    """A softplus MLP (C¹ with Lipschitz gradients: Assumption 1 holds), float64, seeded init."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(dim, hidden), nn.Softplus(), nn.Linear(hidden, hidden), nn.Softplus(),
                             nn.Linear(hidden, num_classes)).double()


def full_gradient_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, pgd_steps: int) -> float:
    """‖∇_θ L_ε(θ)‖ over the whole set (Danskin: gradient at the PGD maximiser)."""
    x_adv = x if eps == 0 else pgd(model, x, y, eps, steps=pgd_steps, step_ratio=2.5 / pgd_steps,
                                   random_start="none", clamp=None)
    grads = torch.autograd.grad(F.cross_entropy(model(x_adv), y), list(model.parameters()))
    return float(torch.sqrt(sum((g ** 2).sum() for g in grads)))


def sgd_gradient_tail(data: Blobs, eps: float, *, iterations: int, lr: float, batch_size: int,
                      hidden: int, seed: int, pgd_steps: int = 10, tail: float = 0.2,
                      n_probes: int = 20) -> dict:
    """Constant-step SGD on ``L_ε``; full-batch gradient norms at ``n_probes`` iterates of the last
    ``tail`` fraction of training (the ``{θ_t}`` of Thm 2)."""
    gen = torch.Generator().manual_seed(seed)
    model = smooth_mlp(data.x.shape[1], hidden, data.num_classes, seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    probe_at = set(np.linspace((1 - tail) * iterations, iterations - 1, n_probes).astype(int).tolist())
    norms = []
    n = len(data.y)
    for it in range(iterations):
        idx = torch.randint(0, n, (batch_size,), generator=gen)
        xb, yb = data.x[idx], data.y[idx]
        if eps > 0:
            xb = pgd(model, xb, yb, eps, steps=pgd_steps, step_ratio=2.5 / pgd_steps,
                     random_start="none", clamp=None)
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it in probe_at:
            norms.append(full_gradient_norm(model, data.x, data.y, eps, pgd_steps))
    norms = np.array(norms)
    return {"eps": eps, "norms": norms, "median": float(np.median(norms)), "mean": float(norms.mean())}
