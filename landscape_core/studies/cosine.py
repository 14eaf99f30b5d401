"""04_cosine_similarity: Sec 4.2, Fig 4, the slides' tables - perturbation similarity along the top
Hessian eigenvector and along a random direction, for each adversarially trained model of the zoo."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..analysis import hessian
from ..analysis.landscape import random_direction
from ..analysis.similarity import SimilarityResult, perturbation_similarity
from ..attacks import AttackSpec, make_attack
from ..core.progress import report
from ..core.spec import param
from .base import ZooStudyParams, at_most, from_zero

__all__ = ["CosineParams", "similarity", "similarities", "DIRECTIONS"]

DIRECTIONS = ("Eigenvector", "Random")


@dataclass(frozen=True)
class CosineParams(ZooStudyParams):
    """04_cosine_similarity: Sec 4.2, Fig 4, the slides' tables (models from 02_gradient_dynamics)."""

    n_examples: int = param(100, ge=10, doc="training examples whose perturbations are compared")
    n_test: int = param(100, ge=10, doc="test examples of the robust error at θ ± a v")
    a_values: tuple[float, ...] = param((0.0, 0.05, 0.1), each=dict(ge=0.0), min_len=2, doc="MNIST paper: 0..0.1")
    repeats: int = param(2, ge=1, doc="PGD repeats (paper: 4)")

    def validate(self):
        at_most("n_examples", self.n_examples, self.zoo.training.train_size, "the training set", "04_cosine_similarity")
        at_most("n_test", self.n_test, self.zoo.training.test_size, "the test set", "04_cosine_similarity")
        from_zero("a_values", self.a_values, "04_cosine_similarity")

    @property
    def budgets(self) -> list[float]:
        """The zoo's budgets with a perturbation to compare (ε > 0)."""
        return [e for e in self.zoo.eps_list if e > 0]


def similarity(model: nn.Module, x, y, x_test, y_test, attack: AttackSpec, *, a_values, repeats: int,
               seed: int, batch_size: int = 500, progress: bool = False) -> dict[str, SimilarityResult]:
    """Fig 4 / slide tables: cosine of ``attack``'s perturbations at θ ± a v, v = the top eigenvector of the
    Hessian on (x, y) made adversarial once, or a random direction."""
    attack = make_attack(attack)
    gen = torch.Generator().manual_seed(seed)
    x_adv = hessian.fixed_adversarial_set(model, x, y, attack, generator=gen, batch_size=batch_size)
    top = hessian.top_eigenpairs(model, x_adv, y, k=1, batch_size=batch_size, generator=gen)
    directions = {"Eigenvector": torch.from_numpy(np.ascontiguousarray(top.vectors[0])),
                  "Random": random_direction(model, gen)}
    return {name: perturbation_similarity(model, v, a_values, x, y, attack, repeats=repeats, generator=gen,
                                          x_test=x_test, y_test=y_test, batch_size=batch_size, progress=progress)
            for name, v in directions.items()}


def similarities(models: dict[float, nn.Module], x, y, x_test, y_test, P: CosineParams,
                 health: dict | None = None) -> dict[float, dict[str, SimilarityResult]]:
    """:func:`similarity` for every adversarially trained model of the zoo; with ``health``, a constant
    classifier is skipped (it has no perturbation to compare, and no claim reads it: the claims are
    about the models that trained)."""
    out = {}
    for eps in P.budgets:
        if health is None or not health[eps].constant:
            report(f"cosine similarity along eigenvector and random directions, eps {eps:g}: started")
            out[eps] = similarity(models[eps], x, y, x_test, y_test, P.zoo.attack(eps), a_values=P.a_values,
                                  repeats=P.repeats, seed=P.seed, progress=P.progress)
    return out


def by_direction(results: dict[float, dict[str, SimilarityResult]]) -> dict[str, dict[str, SimilarityResult]]:
    """Regrouped for the slides' table: direction -> "eps = .." -> result."""
    return {d: {f"eps = {e:g}": results[e][d] for e in results} for d in DIRECTIONS}


def perturbation_table(results: dict[float, dict[str, SimilarityResult]]) -> dict:
    """The slides' table, as the claim rules read it: eps -> direction -> a -> (mean cosine similarity,
    robust error %), the same shape as the paper's (:data:`~landscape_core.report.paper.PAPER_PERTURBATION`)."""
    return {e: {d: {float(a): (float(c), 100 * float(err)) for a, c, err in
                    zip(r[d].a_values, r[d].cosine_mean, r[d].error_mean)} for d in DIRECTIONS}
            for e, r in results.items()}
