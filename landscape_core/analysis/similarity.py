"""Perturbation similarity (Liu et al. 2020 Sec 4.2, Fig 4, the slides' tables).

How much the adversarial examples change between ``theta + a v`` and ``theta - a v``: the per-example
cosine of the PGD perturbations at both points, over repeats, with the same-model baseline and the
robust error at both points.  The experiment draws two seeds per repeat (one for the ``+a`` model, one
for the ``-a`` model) and uses that pair for every ``a`` and for the same-model baseline, so the
``a = 0`` row equals the baseline exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from ..attacks import adversarial_examples, sweep
from ..attacks.evaluation import AttackLike
from ..core.params import as_flat, perturbed
from ..core.rng import draw_seed, seeded_generator
from ..core.spec import ParameterError, Spec, param

__all__ = ["SimilaritySpec", "SimilarityResult", "perturbation_cosine", "perturbation_similarity"]


@dataclass(frozen=True)
class SimilaritySpec(Spec):
    """User-set parameters of :func:`perturbation_similarity`."""
    a_values: tuple[float, ...] = param((0.0, 0.01, 0.03, 0.05, 0.1), each=dict(ge=0.0), min_len=1,
                                        doc="scales a of the unit direction v")
    repeats: int = param(4, ge=1, doc="independent PGD repetitions (Liu et al.: 4)")
    batch_size: int = param(500, ge=1, doc="evaluation batch size")


def perturbation_cosine(delta1: torch.Tensor, delta2: torch.Tensor) -> torch.Tensor:
    """Per-example cosine similarity of two perturbation batches (each example flattened).

    Zero perturbations: two zero perturbations count as identical (cosine 1, e.g. both attacks
    returned the clean point); one zero and one non-zero perturbation count as unrelated (cosine 0).
    The original code divides by zero there (NaN); with a random start and eps > 0 neither case
    occurs in practice.  Computed in float64.
    """
    a = delta1.reshape(len(delta1), -1).double()
    b = delta2.reshape(len(delta2), -1).double()
    na, nb = a.norm(dim=1), b.norm(dim=1)
    zero_a, zero_b = na == 0, nb == 0
    cos = (a * b).sum(1) / (na * nb).where(~(zero_a | zero_b), torch.ones_like(na))
    cos = cos.where(~(zero_a | zero_b), torch.zeros_like(cos))
    return cos.where(~(zero_a & zero_b), torch.ones_like(cos))


@dataclass(frozen=True)
class SimilarityResult:
    """Perturbation similarity at ``theta +- a v`` (arrays over ``a_values``; ``*_runs`` are
    (repeats, len(a_values)) or (repeats,)).  Errors are robust error fractions on ``error_set``
    ("test" when ``x_test`` was given, else "train": the set the perturbations were made on).
    Means and sample standard deviations (ddof=1; 0 for one repeat) are over the repeats."""
    a_values: np.ndarray
    cosine_runs: np.ndarray
    error_plus_runs: np.ndarray
    error_minus_runs: np.ndarray
    baseline_runs: np.ndarray
    baseline_error_runs: np.ndarray
    error_set: str
    seeds: np.ndarray  # (repeats, 2): the attack seeds of theta + a v and theta - a v per repeat

    @staticmethod
    def _std(a: np.ndarray) -> np.ndarray:
        return a.std(axis=0, ddof=1) if a.shape[0] > 1 else np.zeros(a.shape[1:])

    @property
    def cosine_mean(self) -> np.ndarray:
        return self.cosine_runs.mean(axis=0)

    @property
    def cosine_std(self) -> np.ndarray:
        return self._std(self.cosine_runs)

    @property
    def baseline_mean(self) -> float:
        return float(self.baseline_runs.mean())

    @property
    def baseline_std(self) -> float:
        return float(self._std(self.baseline_runs))

    @property
    def error_plus(self) -> np.ndarray:
        return self.error_plus_runs.mean(axis=0)

    @property
    def error_minus(self) -> np.ndarray:
        return self.error_minus_runs.mean(axis=0)

    @property
    def error_mean(self) -> np.ndarray:
        """Robust error averaged over ``theta + a v`` and ``theta - a v`` and the repeats."""
        return (self.error_plus + self.error_minus) / 2


def perturbation_similarity(model: nn.Module, v, a_values: Sequence[float], x: torch.Tensor,
                            y: torch.Tensor, attack: AttackLike, repeats: int = 4,
                            generator: torch.Generator | None = None,
                            x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
                            batch_size: int = 500, progress: bool = False) -> SimilarityResult:
    """Liu et al. (2020) Sec 4.2: how much the adversarial examples change between ``theta +- a v``.

    For each repeat ``r`` two seeds ``(s+, s-)`` are drawn from ``generator``.  For each ``a``,
    PGD at ``theta + a v`` (seed ``s+``) and at ``theta - a v`` (seed ``s-``) gives perturbations
    ``x'_{+} - x`` and ``x'_{-} - x`` whose per-example cosine (:func:`perturbation_cosine`) is
    averaged over the set.  The baseline is the same pair of seeds at ``theta`` itself (two
    independent PGD runs at one model), so the ``a = 0`` column equals it exactly (and is copied
    from it rather than recomputed).  The robust
    error at both points is measured on ``(x_test, y_test)`` with PGD regenerated there (seeds drawn
    from ``s+`` / ``s-``'s generators after the training-set attack), or, without a test set, on
    the adversarial training examples just made.  ``v`` should have unit norm (not enforced).
    """
    spec = SimilaritySpec(a_values=tuple(float(a) for a in a_values), repeats=repeats,
                          batch_size=batch_size)
    if (x_test is None) != (y_test is None):
        raise ParameterError("x_test", "<one of x_test / y_test>", "give both or neither")
    d = as_flat(v, model)
    a_arr = np.asarray(spec.a_values)
    seeds = [(draw_seed(generator), draw_seed(generator)) for _ in range(spec.repeats)]

    def side(delta, seed):
        gen = seeded_generator(seed, x.device)
        with perturbed(model, delta):
            x_adv = adversarial_examples(model, x, y, attack, gen, spec.batch_size)
            if x_test is None:
                err = sweep(model, x_adv, y, batch_size=spec.batch_size).adv_error
            else:
                err = sweep(model, x_test, y_test, attack, batch_size=spec.batch_size, generator=gen).adv_error
        return x_adv - x, err

    A, R = len(a_arr), spec.repeats
    cos, e_plus, e_minus = np.zeros((R, A)), np.zeros((R, A)), np.zeros((R, A))
    base, base_err = np.zeros(R), np.zeros(R)
    zero = torch.zeros_like(d)
    steps = tqdm(total=R * (A + 1), desc="similarity", disable=not progress)
    for r, (s_plus, s_minus) in enumerate(seeds):
        b1, b_err1 = side(zero, s_plus)
        b2, b_err2 = side(zero, s_minus)
        base[r], base_err[r] = perturbation_cosine(b1, b2).mean().item(), (b_err1 + b_err2) / 2
        steps.update()
        for i, a in enumerate(a_arr):
            if a == 0.0:  # theta +- 0 v is theta: identical to the baseline, not recomputed
                cos[r, i], e_plus[r, i], e_minus[r, i] = base[r], b_err1, b_err2
            else:
                d1, e_plus[r, i] = side(float(a) * d, s_plus)
                d2, e_minus[r, i] = side(-float(a) * d, s_minus)
                cos[r, i] = perturbation_cosine(d1, d2).mean().item()
            steps.update()
    steps.close()
    return SimilarityResult(a_arr, cos, e_plus, e_minus, base, base_err,
                            "train" if x_test is None else "test", np.asarray(seeds, dtype=np.int64))
