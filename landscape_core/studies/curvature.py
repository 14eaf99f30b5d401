"""03_hessian: Sec 4.2, Fig 3, Fig 12 - Hessian spectra of the zoo's models and their landscapes.

For each model the adversarial examples of a fixed set of training images are made once and held
fixed; the top eigenvalues of the Hessian of the adversarial loss come from Lanczos, and are
normalised by the mean adversarial loss at random parameters.  The landscape along the top-2
eigenvectors is scanned with PGD regenerated at every grid point.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..analysis import hessian
from ..analysis.spectrum import HessianSpectrum, SpectralDensity, TraceEstimate
from ..analysis.landscape import Scan1DResult, Scan2DResult, filter_normalized_direction, scan_1d, scan_2d
from ..attacks import AttackSpec, make_attack, sweep
from ..core.progress import report
from ..core.spec import param
from ..core.spec import ParameterError
from .base import ZooParams, ZooStudyParams, at_most

__all__ = ["HessianParams", "Spectrum", "spectrum", "spectra", "SpectrumDetail", "detail", "details", "eigen_landscape",
           "line_scan"]


@dataclass(frozen=True)
class HessianParams(ZooStudyParams):
    """03_hessian: Sec 4.2, Fig 3, Fig 12 (models from 02_gradient_dynamics)."""

    n_examples: int = param(100, ge=10, doc="fixed training examples of the Hessian")
    k: int = param(5, ge=1, doc="top eigenpairs (paper: 20)")
    tol: float = param(1.0e-2, ge=0.0, doc="Lanczos tolerance")
    n_random: int = param(2, ge=1, doc="random parameter draws of the normalisation")
    landscape_eps: tuple[float, ...] = param((0.0, 0.4), each=dict(ge=0.0), doc="budgets whose landscape is scanned")
    landscape_examples: int = param(50, ge=10)
    span: float = param(0.5, gt=0.0, doc="scan half-width along each unit eigenvector")
    points: int = param(5, ge=3, doc="grid points per axis")
    detail_examples: int = param(50, ge=10, added=True, doc="fixed examples of trace, density and layers")
    trace_samples: int = param(5, ge=2, added=True, doc="Rademacher vectors of Hutchinson's trace")
    slq_steps: int = param(10, ge=2, added=True, doc="Lanczos steps per SLQ run (the density's nodes)")
    slq_runs: int = param(1, ge=1, added=True, doc="SLQ runs (start vectors) averaged")
    layer_steps: int = param(5, ge=1, added=True, doc="Lanczos steps of each layer's top eigenvalue")

    def validate(self):
        at_most("n_examples", self.n_examples, self.zoo.training.train_size, "the training set", "03_hessian")
        at_most("detail_examples", self.detail_examples, self.n_examples, "n_examples", "03_hessian")
        at_most("landscape_examples", self.landscape_examples, self.n_examples, "n_examples", "03_hessian")
        missing = [e for e in self.landscape_eps if not any(abs(e - z) < 1e-9 for z in self.zoo.eps_list)]
        if missing:
            raise ParameterError("landscape_eps", list(self.landscape_eps), f"must be budgets of the zoo "
                                 f"{list(self.zoo.eps_list)} (not {missing})", "03_hessian" + (
                                     f", task {self.task}" if self.task else ""))


@dataclass(frozen=True)
class Spectrum:
    eps: float
    values: np.ndarray            # raw top-k eigenvalues (descending)
    scale: float                  # mean adversarial loss at random parameters
    scale_samples: np.ndarray
    n_hvp: int
    adv_loss: float               # adversarial loss of the trained model on the fixed set
    vectors: np.ndarray           # [k, P]
    x_adv: torch.Tensor | None = None   # the fixed adversarial set the Hessian is of

    @property
    def normalised(self) -> np.ndarray:
        return hessian.normalise(self.values, self.scale)


def _made(attack: AttackSpec | None):
    return make_attack(attack) if attack is not None else None


def spectrum(model: nn.Module, x, y, eps: float, attack: AttackSpec | None, *, k: int, n_random: int, seed: int,
             tol: float = 1e-2, batch_size: int = 500) -> Spectrum:
    """Top-k eigenpairs of the Hessian of the loss under ``attack`` (the model trained at ``eps``: its
    adversarial set fixed once; None: the clean loss) and the normalisation by the mean adversarial loss
    at ``n_random`` random parameter draws (Sec 4.2)."""
    attack = _made(attack)
    gen = torch.Generator().manual_seed(seed)
    x_adv = hessian.fixed_adversarial_set(model, x, y, attack, generator=gen, batch_size=batch_size)
    res = hessian.top_eigenpairs(model, x_adv, y, k=k, batch_size=batch_size, tol=tol, generator=gen)
    rnd = hessian.random_parameter_loss(model, x, y, attack, n_random, generator=gen, batch_size=batch_size)
    own = sweep(model, x_adv, y, batch_size=batch_size).clean_loss
    return Spectrum(eps=eps, values=res.values, scale=rnd.mean, scale_samples=rnd.values, n_hvp=res.n_hvp,
                    adv_loss=own, vectors=res.vectors, x_adv=x_adv)


def spectra(models: dict[float, nn.Module], x, y, P: HessianParams) -> dict[float, Spectrum]:
    """Fig 3: :func:`spectrum` of every model of the zoo."""
    out = {}
    for eps, m in models.items():
        report(f"Hessian top-{P.k} (Lanczos) and random-parameter scale, eps {eps:g}: started")
        out[eps] = spectrum(m, x, y, eps, P.zoo.attack(eps), k=P.k, n_random=P.n_random, seed=P.seed, tol=P.tol)
    return out


@dataclass(frozen=True)
class SpectrumDetail:
    """The Hessian beyond the top-k at one budget (PyHessian's set): Hutchinson trace, SLQ density and
    each layer's top eigenvalue, raw; ``scale`` is 03's random-parameter normalisation of that budget."""
    eps: float
    trace: TraceEstimate
    density: SpectralDensity
    layers: dict[str, float]
    scale: float
    n_hvp: int

    def row(self) -> dict:
        return {"eps": self.eps, "trace": self.trace.trace, "trace stderr": self.trace.stderr,
                "normalised trace": self.trace.trace / self.scale,
                "density support": f"[{self.density.support[0]:.3g}, {self.density.support[1]:.3g}]",
                **{f"top {k}": v / self.scale for k, v in self.layers.items()},
                "HVP passes": self.n_hvp}


def detail(model: nn.Module, x_adv, y, eps: float, scale: float, *, trace_samples: int, slq_steps: int,
           slq_runs: int, layer_steps: int, seed: int) -> SpectrumDetail:
    """Trace, spectral density and per-layer top eigenvalue of the Hessian on the fixed set ``x_adv``;
    ``scale``: the random-parameter normalisation of the top-k (:func:`spectrum`)."""
    h = HessianSpectrum(model, x_adv, y, seed=seed)
    trace, density, layers = h.trace(trace_samples), h.density(slq_steps, slq_runs), h.layers(layer_steps)
    return SpectrumDetail(eps, trace, density, layers, scale, h.n_hvp)


def details(models: dict[float, nn.Module], spectra: dict[float, Spectrum], x, y, P: HessianParams
            ) -> dict[float, SpectrumDetail]:
    """:func:`detail` of every model (normalised as the top-k), on the first ``detail_examples`` of the
    fixed set, made adversarial once as for the top-k."""
    out = {}
    n = P.detail_examples
    for eps, model in models.items():
        report(f"Hessian trace, density and layer tops, eps {eps:g}: started")
        gen = torch.Generator().manual_seed(P.seed)
        x_adv = hessian.fixed_adversarial_set(model, x[:n], y[:n], _made(P.zoo.attack(eps)), generator=gen)
        out[eps] = detail(model, x_adv, y[:n], eps, spectra[eps].scale, trace_samples=P.trace_samples,
                          slq_steps=P.slq_steps, slq_runs=P.slq_runs, layer_steps=P.layer_steps, seed=P.seed)
    return out


def eigen_landscape(model: nn.Module, x, y, eps: float, vectors: np.ndarray, zoo: ZooParams, *, span: float,
                    points: int, seed: int, batch_size: int = 500, progress: bool = False) -> Scan2DResult:
    """Adversarial loss on the plane of the top-2 eigenvectors (Fig 12), PGD regenerated per point."""
    d1, d2 = (torch.from_numpy(np.ascontiguousarray(v)) for v in vectors[:2])
    grid = np.linspace(-span, span, points)
    return scan_2d(model, d1, d2, grid, grid, x, y, _made(zoo.attack(eps)), batch_size=batch_size,
                   generator=torch.Generator().manual_seed(seed), progress=progress)


def landscapes(models: dict[float, nn.Module], spectra: dict[float, Spectrum], x, y,
               P: HessianParams) -> dict[float, Scan2DResult]:
    """Fig 12 for every budget of ``landscape_eps`` that the zoo has."""
    n = P.landscape_examples
    report(f"loss on the top-2 eigenvector plane, {P.points}x{P.points} points, eps {list(P.landscape_eps)}: started")
    return {eps: eigen_landscape(models[eps], x[:n], y[:n], eps, spectra[eps].vectors, P.zoo, span=P.span,
                                 points=P.points, seed=P.seed, progress=P.progress)
            for eps in P.landscape_eps if eps in models}


def line_scan(model: nn.Module, x, y, eps: float, zoo: ZooParams, direction: str, vector: np.ndarray,
              scale: float, points: int, seed: int) -> Scan1DResult:
    """The adversarial loss along one direction: the top eigenvector, or a filter-normalised random one."""
    if direction == "eigenvector":
        v = torch.from_numpy(np.ascontiguousarray(vector))
    else:
        v = filter_normalized_direction(model, torch.Generator().manual_seed(seed))
        v = v / v.norm()
    return scan_1d(model, v, np.linspace(-scale, scale, points), x, y, _made(zoo.attack(eps)),
                   generator=torch.Generator().manual_seed(seed))
