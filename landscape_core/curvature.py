"""Sec 4.2 on the stored models: Hessian spectra, their normalisation, landscape views along the top
eigenvectors, and perturbation similarity along eigenvector vs random directions.

One function per experiment, each taking a trained model and returning plain results, so notebooks
03 and 04 stay one call per experiment.  The attack is the training attack of the model's budget
(PGD, step = ``step_ratio`` × ε) regenerated wherever parameters change.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import hessian, landscape


def attack_for(eps: float, steps: int, step_ratio: float):
    """PGD at budget ``eps`` (clean inputs when eps = 0), as an ``attack(model, x, y, generator=)``."""
    if eps == 0:
        return None
    return landscape.pgd_attack(eps, steps=steps, step_ratio=step_ratio)


@dataclass(frozen=True)
class Spectrum:
    eps: float
    values: np.ndarray            # raw top-k eigenvalues (descending)
    scale: float                  # mean adversarial loss at random parameters
    scale_samples: np.ndarray
    n_hvp: int
    adv_loss: float               # adversarial loss of the trained model on the fixed set
    vectors: np.ndarray           # [k, P]

    @property
    def normalised(self) -> np.ndarray:
        return hessian.normalise(self.values, self.scale)


def spectrum(model, x, y, eps: float, *, steps: int, step_ratio: float, k: int, n_random: int, seed: int,
             tol: float = 1e-2, batch_size: int = 500) -> Spectrum:
    """Top-k eigenpairs of the adversarial-loss Hessian (adversarial set fixed once) and the
    normalisation by the mean adversarial loss at ``n_random`` random parameter draws (Sec 4.2)."""
    attack = attack_for(eps, steps, step_ratio)
    gen = torch.Generator().manual_seed(seed)
    x_adv = hessian.fixed_adversarial_set(model, x, y, attack, generator=gen, batch_size=batch_size)
    res = hessian.top_eigenpairs(model, x_adv, y, k=k, batch_size=batch_size, tol=tol, generator=gen)
    rnd = hessian.random_parameter_loss(model, x, y, attack, n_random, generator=gen, batch_size=batch_size)
    own = landscape.evaluate_robust(model, x_adv, y, None, None, batch_size).clean_loss
    return Spectrum(eps=eps, values=res.values, scale=rnd.mean, scale_samples=rnd.values, n_hvp=res.n_hvp,
                    adv_loss=own, vectors=res.vectors)


def eigen_landscape(model, x, y, eps: float, vectors: np.ndarray, *, steps: int, step_ratio: float,
                    span: float, points: int, seed: int, batch_size: int = 500, progress: bool = False):
    """Adversarial loss on the plane of the top-2 eigenvectors (Fig 12), PGD regenerated per point."""
    d1, d2 = (torch.from_numpy(np.ascontiguousarray(v)) for v in vectors[:2])
    grid = np.linspace(-span, span, points)
    return landscape.scan_2d(model, d1, d2, grid, grid, x, y, attack_for(eps, steps, step_ratio),
                             batch_size=batch_size, generator=torch.Generator().manual_seed(seed),
                             progress=progress)


def similarity(model, x, y, x_test, y_test, eps: float, *, steps: int, step_ratio: float, a_values,
               repeats: int, seed: int, batch_size: int = 500, progress: bool = False) -> dict:
    """Fig 4 / slide tables: cosine of PGD perturbations at θ ± a v, v = top eigenvector or random."""
    attack = attack_for(eps, steps, step_ratio)
    gen = torch.Generator().manual_seed(seed)
    x_adv = hessian.fixed_adversarial_set(model, x, y, attack, generator=gen, batch_size=batch_size)
    top = hessian.top_eigenpairs(model, x_adv, y, k=1, batch_size=batch_size, generator=gen)
    directions = {"Eigenvector": torch.from_numpy(np.ascontiguousarray(top.vectors[0])),
                  "Random": landscape.random_direction(model, gen)}
    return {name: landscape.perturbation_similarity(model, v, a_values, x, y, attack, repeats=repeats,
                                                    generator=gen, x_test=x_test, y_test=y_test,
                                                    batch_size=batch_size, progress=progress)
            for name, v in directions.items()}
