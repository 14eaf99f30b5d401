"""The Hessian beyond its top eigenvalues: trace, spectral density and per-layer sharpness (PyHessian's set).

All three use only Hessian-vector products of a symmetric operator (:func:`~.hessian.hvp_matvec` on a
fixed set, as for the top eigenvalues of :mod:`.hessian`):

* :func:`hutchinson_trace` - Hutchinson's estimator ``tr(H) = E[v^T H v]`` over Rademacher vectors
  ``v`` (entries +-1), with its standard error;
* :func:`slq_density` - stochastic Lanczos quadrature (Ghorbani et al. 2019, as PyHessian): ``runs``
  Lanczos runs of ``steps`` steps with full reorthogonalisation, each from a normalised Rademacher
  vector; the Ritz values are the quadrature nodes and the squared first components of the Ritz
  vectors their weights (summing to one per run).  :meth:`SpectralDensity.density` smooths the nodes
  with a Gaussian of width ``sigma``: a probability density over eigenvalues (mass 1);
* :func:`layer_top_eigenvalues` - the largest eigenvalue of each layer's diagonal Hessian block (the
  product restricted to one module's parameters), the largest Ritz value of ``steps`` Lanczos steps.

:class:`HessianSpectrum` bundles them for one model and fixed set, like PyHessian's ``hessian`` class.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..core.params import trainable_parameters
from ..core.spec import ParameterError
from .hessian import hvp_matvec

__all__ = ["rademacher", "lanczos", "hutchinson_trace", "TraceEstimate", "SpectralDensity", "slq_density",
           "layer_blocks", "layer_top_eigenvalues", "HessianSpectrum"]

MatVec = Callable[[np.ndarray], np.ndarray]


def rademacher(n: int, generator: torch.Generator) -> np.ndarray:
    """A vector of n independent +-1 entries drawn from ``generator`` (float64)."""
    bits = torch.randint(0, 2, (n,), generator=generator, device=generator.device).cpu().numpy()
    return 2.0 * bits.astype(np.float64) - 1.0


def lanczos(matvec: MatVec, v0: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` Lanczos steps from ``v0`` with full reorthogonalisation: the tridiagonal matrix's
    diagonal ``alpha`` and off-diagonal ``beta`` (stops early, shorter, at an invariant subspace)."""
    if steps < 1:
        raise ParameterError("steps", steps, "must be >= 1")
    q = np.asarray(v0, dtype=np.float64) / np.linalg.norm(v0)
    basis, alpha, beta = [q], [], []
    for j in range(min(steps, len(q))):
        w = np.asarray(matvec(basis[j]), dtype=np.float64).reshape(-1)
        alpha.append(float(w @ basis[j]))
        Q = np.stack(basis)
        w = w - Q.T @ (Q @ w)          # full reorthogonalisation, twice for stability
        w = w - Q.T @ (Q @ w)
        b = float(np.linalg.norm(w))
        if j == steps - 1 or b < 1e-10 * max(1.0, abs(alpha[-1])):
            break
        beta.append(b)
        basis.append(w / b)
    return np.asarray(alpha), np.asarray(beta[: len(alpha) - 1])


def _ritz(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    T = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    return np.linalg.eigh(T)


@dataclass(frozen=True)
class TraceEstimate:
    """Hutchinson's trace estimate, its standard error and the products spent."""
    trace: float
    stderr: float
    samples: np.ndarray
    n_hvp: int


def hutchinson_trace(matvec: MatVec, n: int, samples: int, generator: torch.Generator) -> TraceEstimate:
    """``mean_v v^T H v`` over ``samples`` Rademacher vectors (unbiased; variance 2 sum_{i != j} H_ij^2)."""
    if samples < 1:
        raise ParameterError("samples", samples, "must be >= 1")
    vals = []
    for _ in range(samples):
        v = rademacher(n, generator)
        vals.append(float(v @ np.asarray(matvec(v), dtype=np.float64).reshape(-1)))
    vals_a = np.asarray(vals)
    se = float(vals_a.std(ddof=1) / np.sqrt(samples)) if samples > 1 else float("nan")
    return TraceEstimate(float(vals_a.mean()), se, vals_a, samples)


@dataclass(frozen=True)
class SpectralDensity:
    """Quadrature nodes and weights of SLQ, one row per run (weights sum to 1 per run)."""
    nodes: list[np.ndarray]
    weights: list[np.ndarray]
    n_hvp: int

    @property
    def support(self) -> tuple[float, float]:
        return float(min(n.min() for n in self.nodes)), float(max(n.max() for n in self.nodes))

    def density(self, grid: np.ndarray, sigma: float | None = None) -> np.ndarray:
        """The density on ``grid``: the runs' mean of sum_i w_i N(x; node_i, sigma^2).  ``sigma`` defaults
        to 1 % of the support's width (PyHessian uses 1e-5 of its normalised range, for a log plot)."""
        lo, hi = self.support
        s = sigma if sigma is not None else max(0.01 * (hi - lo), 1e-12)
        grid = np.asarray(grid, dtype=np.float64)
        out = np.zeros_like(grid)
        for nodes, w in zip(self.nodes, self.weights):
            out += (w[None, :] * np.exp(-0.5 * ((grid[:, None] - nodes[None, :]) / s) ** 2)).sum(1)
        return out / (len(self.nodes) * s * np.sqrt(2 * np.pi))

    def grid(self, points: int = 400, pad: float = 0.05) -> np.ndarray:
        lo, hi = self.support
        w = max(hi - lo, 1e-12)
        return np.linspace(lo - pad * w, hi + pad * w, points)


def slq_density(matvec: MatVec, n: int, steps: int, runs: int, generator: torch.Generator) -> SpectralDensity:
    """Stochastic Lanczos quadrature: ``runs`` x ``steps`` Lanczos steps from normalised Rademacher vectors."""
    if runs < 1:
        raise ParameterError("runs", runs, "must be >= 1")
    nodes, weights, n_mv = [], [], 0
    for _ in range(runs):
        alpha, beta = lanczos(matvec, rademacher(n, generator), steps)
        n_mv += len(alpha)
        theta, U = _ritz(alpha, beta)
        nodes.append(theta)
        weights.append(U[0] ** 2)
    return SpectralDensity(nodes, weights, n_mv)


def layer_blocks(model: nn.Module) -> dict[str, slice]:
    """Each module owning trainable parameters -> its slice of the flat parameter vector."""
    out: dict[str, slice] = {}
    start = 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        layer = name.rsplit(".", 1)[0] if "." in name else name
        s = out.get(layer)
        out[layer] = slice(start if s is None else s.start, start + p.numel())
        start += p.numel()
    return out


def layer_top_eigenvalues(matvec: MatVec, blocks: dict[str, slice], n: int, steps: int,
                          generator: torch.Generator) -> dict[str, float]:
    """Largest eigenvalue of each diagonal block ``H[b, b]``: largest Ritz value of ``steps`` Lanczos steps."""
    out = {}
    for name, b in blocks.items():
        size = b.stop - b.start

        def block(v, b=b):
            full = np.zeros(n)
            full[b] = v
            return np.asarray(matvec(full), dtype=np.float64).reshape(-1)[b]

        v0 = torch.randn(size, generator=generator, device=generator.device, dtype=torch.float64).cpu().numpy()
        alpha, beta = lanczos(block, v0, min(steps, size))
        out[name] = float(_ritz(alpha, beta)[0].max())
    return out


class HessianSpectrum:
    """The Hessian of the mean cross-entropy of ``model`` on a FIXED set ``(x, y)`` (eval mode), through
    exact HVPs, every one through :meth:`matvec`: :meth:`trace`, :meth:`density` and :meth:`layers`."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500, seed: int = 0):
        self.model = model
        self.n = sum(p.numel() for p in trainable_parameters(model))
        self.generator = torch.Generator().manual_seed(seed)
        self._hvp = hvp_matvec(model, x, y, batch_size)
        self.n_hvp = 0                       # products computed so far (each a pass over the set)

    def matvec(self, v: np.ndarray) -> np.ndarray:
        self.n_hvp += 1
        return self._hvp(v)

    def trace(self, samples: int = 50) -> TraceEstimate:
        return hutchinson_trace(self.matvec, self.n, samples, self.generator)

    def density(self, steps: int = 50, runs: int = 1) -> SpectralDensity:
        return slq_density(self.matvec, self.n, steps, runs, self.generator)

    def layers(self, steps: int = 20) -> dict[str, float]:
        return layer_top_eigenvalues(self.matvec, layer_blocks(self.model), self.n, steps, self.generator)
