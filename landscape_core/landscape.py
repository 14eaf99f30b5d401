"""Directions in parameter space, loss-landscape scans and the perturbation-similarity experiment.

Everything here works on *flat* vectors over the model's trainable parameters (the order of
``model.parameters()``, ``requires_grad`` only), so a Hessian eigenvector from :mod:`.hessian`, a
random direction and a filter-normalised direction are interchangeable.

* Directions: :func:`random_direction` (unit norm) and :func:`filter_normalized_direction` (Li et
  al. 2018, "Visualizing the loss landscape of neural nets": every filter rescaled to the norm of the
  matching filter of the weights; biases and normalisation-layer parameters zeroed).
* :func:`perturbed` temporarily sets the parameters to ``theta + delta`` and restores them bitwise.
* :func:`scan_1d` / :func:`scan_2d`: adversarial loss and robust error (plus clean loss / error) at
  every grid point, with the attack REGENERATED at every grid point (Liu et al. 2020, Fig 12 and the
  original ``param_scan_*`` with ``adv_calc_freq = 1``).
* :func:`perturbation_similarity`: Liu et al. 2020 Sec 4.2 / Fig 4 / the slide tables: cosine
  similarity of the PGD perturbations at ``theta + a v`` and ``theta - a v``, over repeats, with the
  same-model baseline and the robust test error at both points; :func:`similarity_table` renders the
  slide-table layout.

Attacks are callables ``attack(model, x, y, generator=generator) -> x_adv`` (e.g. :func:`pgd_attack`,
a ``functools.partial`` of :func:`landscape_core.attacks.pgd`).  They are called on evaluation
batches with the model in eval mode, always with ``generator`` passed by keyword.

Randomness (common random numbers): a scan draws ONE attack seed from ``generator`` and every grid
point runs its attack with a fresh generator seeded with it, so a point's value does not depend on
which other points are in the grid, and the noise from PGD's random start is shared across the grid
(smoother surfaces).  The similarity experiment draws two seeds per repeat (one for the ``+a`` model,
one for the ``-a`` model) and uses that pair for every ``a`` and for the same-model baseline, so the
``a = 0`` row equals the baseline exactly.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .spec import ParameterError, Spec, param

Attack = Callable[..., torch.Tensor]
"""``attack(model, x, y, generator=generator) -> x_adv`` (same shape as ``x``)."""

__all__ = [
    "Attack", "pgd_attack", "trainable_parameters", "num_parameters", "get_flat_params",
    "set_flat_params", "flat_to_tensors", "eval_mode", "perturbed", "random_direction",
    "filter_normalized_direction", "PointEval", "adversarial_examples", "evaluate_robust",
    "Scan1DResult", "Scan2DResult", "scan_1d", "scan_2d", "SimilaritySpec", "SimilarityResult",
    "perturbation_cosine", "perturbation_similarity", "similarity_table", "plot_surface",
    "plot_contour", "draw_seed", "seeded_generator",
]

_SEED_HIGH = 2 ** 62


# --------------------------------------------------------------------------------------- attacks
def pgd_attack(eps: float, **kwargs) -> Attack:
    """``functools.partial`` of :func:`landscape_core.attacks.pgd` with the budget and options bound.

    Imported lazily so this module does not depend on :mod:`.attacks` at import time.
    """
    from .attacks import pgd
    return functools.partial(pgd, eps=eps, **kwargs)


def draw_seed(generator: torch.Generator | None) -> int:
    """A seed drawn from ``generator`` (a fixed default generator when None: deterministic)."""
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    return int(torch.randint(0, _SEED_HIGH, (1,), generator=generator, device=generator.device))


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A new generator on ``device`` (where the attack draws its random start) seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(seed)


# ----------------------------------------------------------------------------- flat parameters
def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters with ``requires_grad``, in ``model.parameters()`` order (flat-vector order)."""
    return [p for p in model.parameters() if p.requires_grad]


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in trainable_parameters(model))


def get_flat_params(model: nn.Module) -> torch.Tensor:
    """A detached copy of the trainable parameters as one flat vector."""
    return torch.cat([p.detach().reshape(-1) for p in trainable_parameters(model)]).clone()


def flat_to_tensors(flat: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Split a flat vector into views shaped like ``like`` (on ``flat``'s device and dtype)."""
    total = sum(t.numel() for t in like)
    if flat.numel() != total:
        raise ValueError(f"flat vector has {flat.numel()} entries, the parameters {total}")
    out, start = [], 0
    for t in like:
        out.append(flat[start:start + t.numel()].view_as(t))
        start += t.numel()
    return out


def set_flat_params(model: nn.Module, flat: torch.Tensor) -> None:
    """Copy a flat vector into the trainable parameters (in place)."""
    params = trainable_parameters(model)
    with torch.no_grad():
        for p, value in zip(params, flat_to_tensors(torch.as_tensor(flat), params)):
            p.copy_(value)


def _as_flat(direction, model: nn.Module) -> torch.Tensor:
    params = trainable_parameters(model)
    d = torch.as_tensor(direction).reshape(-1).to(device=params[0].device, dtype=params[0].dtype)
    if d.numel() != sum(p.numel() for p in params):
        raise ValueError(f"direction has {d.numel()} entries, the model {num_parameters(model)} "
                         "trainable parameters")
    return d


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode; restore each one's training flag afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.train(flag)


@contextmanager
def perturbed(model: nn.Module, delta) -> Iterator[nn.Module]:
    """Temporarily set the trainable parameters to ``theta + delta``; restore them bitwise.

    ``delta`` is a flat vector (``a * v`` or ``a * d1 + b * d2``).  The original values are copied
    before and written back after, so ``theta`` is restored exactly (not ``theta + delta - delta``).
    Buffers (BatchNorm running statistics) are not touched.
    """
    params = trainable_parameters(model)
    saved = [p.detach().clone() for p in params]
    d = _as_flat(delta, model)
    try:
        with torch.no_grad():
            for p, step in zip(params, flat_to_tensors(d, params)):
                p.add_(step)
        yield model
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)


# ----------------------------------------------------------------------------------- directions
def random_direction(model: nn.Module, generator: torch.Generator) -> torch.Tensor:
    """A Gaussian direction over the trainable parameters, scaled to unit Euclidean norm.

    ``generator`` is required: two directions drawn from one generator differ, and the same seed
    gives the same direction on any run.
    """
    params = trainable_parameters(model)
    d = torch.randn(sum(p.numel() for p in params), generator=generator, device=generator.device,
                    dtype=torch.float64)
    d = d / d.norm()
    return d.to(device=params[0].device, dtype=params[0].dtype)


_NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def filter_normalized_direction(model: nn.Module, generator: torch.Generator) -> torch.Tensor:
    """Li et al. (2018) filter-normalised Gaussian direction (flat vector, NOT unit norm).

    For every weight with two or more dimensions, each filter (row along the output dimension:
    a conv output channel, a linear output neuron) is rescaled so that its norm equals the norm of
    the same filter of the weights.  Biases (one-dimensional parameters) and all parameters of
    normalisation layers (BatchNorm, GroupNorm, LayerNorm) are set to zero ("ignore biasbn").  The
    draw follows the flat-vector order, one ``randn`` per non-zeroed parameter.
    """
    norm_params = {id(p) for m in model.modules() if isinstance(m, _NORM_LAYERS)
                   for p in m.parameters(recurse=False)}
    pieces = []
    for p in trainable_parameters(model):
        if p.dim() <= 1 or id(p) in norm_params:
            pieces.append(torch.zeros(p.numel(), dtype=torch.float64))
            continue
        d = torch.randn(p.shape, generator=generator, device=generator.device,
                        dtype=torch.float64).cpu()
        rows = d.reshape(p.shape[0], -1)
        w_norm = p.detach().reshape(p.shape[0], -1).double().cpu().norm(dim=1, keepdim=True)
        d_norm = rows.norm(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
        pieces.append((rows * (w_norm / d_norm)).reshape(-1))
    p0 = trainable_parameters(model)[0]
    return torch.cat(pieces).to(device=p0.device, dtype=p0.dtype)


# ------------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class PointEval:
    """Mean losses and error rates (fractions) over an evaluation set at one parameter point."""
    adv_loss: float
    adv_error: float
    clean_loss: float
    clean_error: float


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def adversarial_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack | None,
                         generator: torch.Generator | None = None,
                         batch_size: int = 500) -> torch.Tensor:
    """Adversarial examples for the whole set, batch by batch (consuming ``generator`` in order),
    model in eval mode; ``attack=None`` returns ``x``."""
    if attack is None:
        return x
    with eval_mode(model):
        return torch.cat([attack(model, x[s], y[s], generator=generator).detach()
                          for s in _batches(len(x), batch_size)])


def evaluate_robust(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack | None,
                    generator: torch.Generator | None = None, batch_size: int = 500) -> PointEval:
    """Adversarial and clean cross-entropy / error of ``model`` (eval mode) on ``(x, y)``.

    The attack runs on each batch of ``batch_size`` in order, consuming ``generator``; with
    ``attack=None`` the adversarial numbers equal the clean ones.
    """
    if batch_size < 1:
        raise ParameterError("batch_size", batch_size, "must be >= 1")
    sums = np.zeros(4)
    with eval_mode(model):
        for s in _batches(len(x), batch_size):
            xb, yb = x[s], y[s]
            xa = xb if attack is None else attack(model, xb, yb, generator=generator).detach()
            with torch.no_grad():
                for i, inputs in enumerate((xa, xb)):
                    logits = model(inputs)
                    sums[2 * i] += F.cross_entropy(logits, yb, reduction="sum").item()
                    sums[2 * i + 1] += (logits.argmax(1) != yb).sum().item()
    sums /= len(x)
    return PointEval(*map(float, sums))


# ------------------------------------------------------------------------------------- scans
@dataclass(frozen=True)
class Scan1DResult:
    """Values along ``theta + alpha * d``; every array has the shape of ``alphas``."""
    alphas: np.ndarray
    adv_loss: np.ndarray
    adv_error: np.ndarray
    clean_loss: np.ndarray
    clean_error: np.ndarray
    attack_seed: int


@dataclass(frozen=True)
class Scan2DResult:
    """Values on the grid ``theta + alpha * d1 + beta * d2``; arrays of shape (len(alphas), len(betas))."""
    alphas: np.ndarray
    betas: np.ndarray
    adv_loss: np.ndarray
    adv_error: np.ndarray
    clean_loss: np.ndarray
    clean_error: np.ndarray
    attack_seed: int


def _scan(model, deltas, shape, x, y, attack, batch_size, generator, progress, desc):
    seed = draw_seed(generator)
    out = np.zeros((4, len(deltas)))
    for i, delta in enumerate(tqdm(deltas, desc=desc, disable=not progress)):
        with perturbed(model, delta):
            r = evaluate_robust(model, x, y, attack, seeded_generator(seed, x.device),
                                batch_size)
        out[:, i] = (r.adv_loss, r.adv_error, r.clean_loss, r.clean_error)
    return [a.reshape(shape) for a in out], seed


def scan_1d(model: nn.Module, direction, alphas: Sequence[float], x: torch.Tensor, y: torch.Tensor,
            attack: Attack | None, batch_size: int = 500, generator: torch.Generator | None = None,
            progress: bool = False) -> Scan1DResult:
    """Adversarial/clean loss and error at ``theta + alpha * direction`` for every alpha.

    The attack is regenerated at every point (with the scan's common attack seed, see the module
    docstring); the model's parameters are restored bitwise afterwards.
    """
    d = _as_flat(direction, model)
    alphas = np.asarray(alphas, dtype=float).reshape(-1)
    arrays, seed = _scan(model, [float(a) * d for a in alphas], alphas.shape, x, y, attack,
                         batch_size, generator, progress, "scan 1d")
    return Scan1DResult(alphas, *arrays, attack_seed=seed)


def scan_2d(model: nn.Module, d1, d2, alphas: Sequence[float], betas: Sequence[float],
            x: torch.Tensor, y: torch.Tensor, attack: Attack | None, batch_size: int = 500,
            generator: torch.Generator | None = None, progress: bool = False) -> Scan2DResult:
    """As :func:`scan_1d` on the grid ``theta + alpha * d1 + beta * d2`` (alpha-major order)."""
    u, v = _as_flat(d1, model), _as_flat(d2, model)
    alphas = np.asarray(alphas, dtype=float).reshape(-1)
    betas = np.asarray(betas, dtype=float).reshape(-1)
    deltas = [float(a) * u + float(b) * v for a in alphas for b in betas]
    arrays, seed = _scan(model, deltas, (len(alphas), len(betas)), x, y, attack, batch_size,
                         generator, progress, "scan 2d")
    return Scan2DResult(alphas, betas, *arrays, attack_seed=seed)


# ------------------------------------------------------------------- perturbation similarity
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


def _robust_error(model, x, y, attack, generator, batch_size) -> float:
    return evaluate_robust(model, x, y, attack, generator, batch_size).adv_error


def perturbation_similarity(model: nn.Module, v, a_values: Sequence[float], x: torch.Tensor,
                            y: torch.Tensor, attack: Attack, repeats: int = 4,
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
    d = _as_flat(v, model)
    a_arr = np.asarray(spec.a_values)
    seeds = [(draw_seed(generator), draw_seed(generator)) for _ in range(spec.repeats)]

    def side(delta, seed):
        gen = seeded_generator(seed, x.device)
        with perturbed(model, delta):
            x_adv = adversarial_examples(model, x, y, attack, gen, spec.batch_size)
            if x_test is None:
                err = _robust_error(model, x_adv, y, None, None, spec.batch_size)
            else:
                err = _robust_error(model, x_test, y_test, attack, gen, spec.batch_size)
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


def similarity_table(results: Mapping[str, Mapping[str, SimilarityResult]], *, digits: int = 3,
                     error: str = "mean") -> str:
    """Markdown table in the slides' layout: row groups (e.g. "Eigenvector", "Random") x ``a``;
    for each column group (e.g. "eps = 0.1") the mean cosine and the robust error in percent
    (headed "Test(%)" when every result measured it on a test set, "Train(%)" when none did).

    ``results`` maps row-group label -> column-group label -> result; all results must share their
    ``a_values`` within a row group.  ``error`` picks the error column: "mean" of the two points
    (default), "plus" (``theta + a v``), "minus" or "max".
    """
    if error not in ("mean", "plus", "minus", "max"):
        raise ParameterError("error", error, "must be one of ['mean', 'plus', 'minus', 'max']")
    columns = list(dict.fromkeys(c for group in results.values() for c in group))
    sets = {res.error_set for group in results.values() for res in group.values()}
    err_label = {frozenset({"test"}): "Test(%)", frozenset({"train"}): "Train(%)"}.get(
        frozenset(sets), "Error(%)")
    header = "| v | a | " + " | ".join(f"{c} Cosine | {c} {err_label}" for c in columns) + " |"
    lines = [header, "|" + "---|" * (2 + 2 * len(columns))]
    for label, group in results.items():
        first = next(iter(group.values()))
        for i, a in enumerate(first.a_values):
            cells = []
            for c in columns:
                res = group.get(c)
                if res is None:
                    cells += ["", ""]
                    continue
                err = {"mean": res.error_mean, "plus": res.error_plus, "minus": res.error_minus,
                       "max": np.maximum(res.error_plus, res.error_minus)}[error][i]
                cells += [f"{res.cosine_mean[i]:.{digits}f}", f"{100 * err:.1f}"]
            lines.append(f"| {label if i == 0 else ''} | {a:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- plots
def plot_surface(ax3d, alphas, betas, Z, *, cmap: str = "viridis", **kwargs):
    """3-D surface of ``Z[i, j]`` at ``(alphas[i], betas[j])`` on a matplotlib 3-D Axes."""
    A, B = np.meshgrid(np.asarray(alphas), np.asarray(betas), indexing="ij")
    surface = ax3d.plot_surface(A, B, np.asarray(Z), cmap=cmap, **kwargs)
    ax3d.set_xlabel(r"$\alpha$")
    ax3d.set_ylabel(r"$\beta$")
    return surface


def plot_contour(ax, alphas, betas, Z, *, levels: int = 20, cmap: str = "viridis",
                 labels: bool = True, **kwargs):
    """Contour lines of ``Z[i, j]`` at ``(alphas[i], betas[j])`` on a matplotlib Axes."""
    A, B = np.meshgrid(np.asarray(alphas), np.asarray(betas), indexing="ij")
    contour = ax.contour(A, B, np.asarray(Z), levels=levels, cmap=cmap, **kwargs)
    if labels:
        ax.clabel(contour, inline=True, fontsize=7)
    ax.set_xlabel(r"$\alpha$")
    ax.set_ylabel(r"$\beta$")
    return contour
