"""diagnose: the study's diagnostics on any one model - ours from the run store, or any ``nn.Module``.

A model taking inputs in [0, 1] (normalisation, if any, inside it) on a supported data set, at an L-inf
budget ``eps``, gets what the notebooks measure on theirs:

* the attack suite (the Table 1 columns, PGD at ``pgd_steps`` standing in for the unknown training
  attack), reviewer 1's grid (step sizes, restarts, L2; the transfer column when a ``surrogate`` model
  is given: PGD computed on it, the diagnosed model only queried) and the
  gradient-masking flags (:mod:`..analysis.masking`);
* the top Hessian eigenvalues of the adversarial loss on a fixed adversarial set, normalised by the mean
  adversarial loss at random parameters (Sec 4.2; random draws re-run each module's
  ``reset_parameters``), the Hutchinson trace, the SLQ density and each layer's top eigenvalue;
* the cosine similarity of PGD perturbations at theta +- a v along the top eigenvector against a
  random direction (Sec 4.2, Fig 4);
* the empirical local Lipschitz constant of the second source (ascent, in the ``eps``-ball).

:func:`load_model` builds one of the study's architectures from a ``state_dict`` file (``torch.load``
with ``weights_only=True``); :func:`run_model` loads a model of the run store by its digest.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..analysis.attack_grid import AttackGridSpec, Transfer, grid_suite, grid_worst, l2_suite
from ..analysis.lipschitz import local_lipschitz
from ..analysis.masking import MaskingReport, MaskingSpec, masking_check
from ..analysis.robustness import Ensemble, EvalSpec, evaluate
from ..analysis.similarity import SimilarityResult
from ..attacks import AttackSpec
from ..core.io import load_checkpoint
from ..core.spec import ParameterError, Spec, param
from ..data import DATASETS, DatasetSpec, Split, dataset_info, load_data
from ..models.networks import IMAGE_ARCHS, build_model
from ..training import Run, TrainSpec, load_result
from .base import from_zero
from .cosine import similarity as cosine_similarity
from .curvature import Spectrum, SpectrumDetail, spectrum
from .curvature import detail as curvature_detail
from .user_models import ModelCheck, check_model

__all__ = ["DiagnoseParams", "Diagnosis", "diagnose_model", "load_model", "run_model"]


@dataclass(frozen=True)
class DiagnoseParams(Spec):
    """What :func:`diagnose_model` measures, and on what (defaults: a few minutes for a LeNet on 2 cores)."""

    dataset: str = param("mnist5k", choices=tuple(DATASETS), doc="the test data of the model")
    download: bool = param(False, doc="let torchvision download the data set")
    eps: float = param(0.3, gt=0.0, doc="L-inf budget (inputs in [0, 1])")
    n_test: int = param(200, ge=10, doc="first test examples attacked")
    pgd_steps: int = param(10, ge=1, doc="PGD column: steps (step pgd_step_ratio x eps)")
    pgd_step_ratio: float = param(0.25, gt=0.0)
    pgd100_steps: int = param(100, ge=1)
    apgd_steps: int = param(100, ge=1)
    apgd_restarts: int = param(1, ge=1)
    square_queries: int = param(1000, ge=1)
    attack_grid: AttackGridSpec = param(AttackGridSpec(l2_eps=(2.0,)), doc="step sizes, restarts, L2")
    masking: MaskingSpec = param(MaskingSpec(n_examples=100), doc="gradient-masking check")
    hessian_examples: int = param(200, ge=10, doc="fixed training examples of the Hessian (per batch)")
    hessian_batches: int = param(3, ge=1, doc="disjoint batches of hessian_examples: the top eigenvalues are their "
                                              "mean and std over them (small Hessian batches scatter: PyHessian #5)")
    k: int = param(5, ge=1, doc="top eigenvalues")
    n_random: int = param(2, ge=1, doc="random parameter draws of the normalisation")
    trace_samples: int = param(20, ge=2)
    slq_steps: int = param(30, ge=2)
    slq_runs: int = param(1, ge=1)
    layer_steps: int = param(10, ge=1)
    a_values: tuple[float, ...] = param((0.0, 0.05, 0.1), each=dict(ge=0.0), min_len=2,
                                        doc="steps along the eigenvector / random direction")
    cosine_examples: int = param(100, ge=10)
    repeats: int = param(2, ge=1)
    lipschitz_steps: int = param(10, ge=1)
    compare: int = param(3, ge=0, doc="models of the study's run store on the same data set and budget (constant eps, "
                                      "plain adversarial training) measured beside this one (0: none)")
    eot_draws: int = param(10, ge=1, doc="a randomised model (its logits differ between two passes) is measured "
                                         "through the mean probability of this many draws (EOT); 1: as it is")
    seed: int = param(0, ge=0)

    def validate(self) -> None:
        if self.masking.n_examples > self.n_test:
            raise ParameterError("masking.n_examples", self.masking.n_examples, f"must be <= n_test ({self.n_test})")
        from_zero("a_values", self.a_values, "diagnose")

    @property
    def train_attack(self) -> AttackSpec:
        return AttackSpec(name="pgd", eps=self.eps, steps=self.pgd_steps, step_size=self.pgd_step_ratio * self.eps)


@dataclass
class Diagnosis:
    """Everything :func:`diagnose_model` measured (errors in %); the Hessian as 03 measures it
    (:func:`~landscape_core.studies.curvature.spectrum` on each disjoint batch, its
    :func:`~landscape_core.studies.curvature.detail` on the first), the perturbation similarity as 04's
    (:func:`~landscape_core.studies.cosine.similarity`).  The checks that apply to one model are the
    catalogue's rules (:func:`landscape_core.report.diagnosis.checks`)."""

    params: DiagnoseParams
    suite: dict[str, float]                 # Clean, each Table 1 column, Worst
    labels: dict[str, str]
    grid: dict[str, float]                  # each grid column, "grid worst"
    masking: MaskingReport
    spectra: list[Spectrum]                 # one per disjoint Hessian batch (PyHessian #5: small batches scatter)
    detail: SpectrumDetail                  # trace, density, layer tops on the first batch's fixed set
    similarity: dict[str, SimilarityResult]  # "Eigenvector" / "Random"
    lipschitz: float
    model_check: ModelCheck | None = None    # one clean batch, before any attack (user_models.check_model)
    eot_draws: int = 1                       # > 1: a randomised model, measured through EOT over this many draws
    comparison: list[dict] | None = None     # this model beside the study's at the same budget (compare_row)

    @property
    def eigen_batches(self) -> np.ndarray:
        """[batches, k] raw top-k of each disjoint Hessian batch."""
        return np.stack([s.values for s in self.spectra])

    @property
    def eigenvalues(self) -> np.ndarray:
        """Raw top-k: the mean over the Hessian batches."""
        return self.eigen_batches.mean(axis=0)

    @property
    def scale(self) -> float:
        """Mean adversarial loss at random parameters (the first batch's): the normalisation."""
        return self.spectra[0].scale

    @property
    def normalised(self) -> np.ndarray:
        return self.eigenvalues / self.scale

    def tables(self) -> dict[str, list[dict]]:
        """Rows for a report: the suite, the grid, masking, the Hessian and the similarity."""
        sim = [{"direction": d, **{f"a={a:g}": c for a, c in zip(r.a_values, r.cosine_mean)}}
               for d, r in self.similarity.items()]
        per = self.eigen_batches
        std = per.std(axis=0, ddof=1) if len(per) > 1 else np.full(per.shape[1], np.nan)
        hess = [{"rank": i + 1, "eigenvalue": v, "std over batches": sd, "normalised": v / self.scale,
                 "batches x examples": f"{len(per)} x {self.params.hessian_examples}"}
                for i, (v, sd) in enumerate(zip(self.eigenvalues, std))]
        detail = [{**{k: v for k, v in self.detail.row().items() if k != "eps"}, "random-parameter loss": self.scale,
                   "local Lipschitz": self.lipschitz}]
        return {"attack suite (%)": [{self.labels.get(k, k): v for k, v in self.suite.items()}],
                "reviewer 1's grid (%)": [self.grid], "gradient-masking check": [self.masking.row()],
                "top Hessian eigenvalues": hess, "trace, density, layers (normalised), local Lipschitz": detail,
                "perturbation cosine at theta +- a v": sim,
                **({f"beside the study's models at eps {self.params.eps:g} (%; normalised top eigenvalue on the "
                    "first Hessian batch)": self.comparison} if self.comparison else {})}


def _data(P: DiagnoseParams) -> tuple[Split, Split]:
    return load_data(DatasetSpec(name=P.dataset, download=P.download))


def study_runs(store: Path, P: DiagnoseParams, exclude: str = "") -> list[Run]:
    """Up to ``P.compare`` finished runs of the study's store on ``P.dataset`` at budget ``P.eps``: constant eps,
    cross-entropy adversarial training, no periodic resets (06's curves and other records are skipped; so is
    the run folder named ``exclude``: the model diagnosed)."""
    out = []
    for result in sorted(Path(store).glob("*/result.json")) if store is not None else ():
        if exclude and result.parent.name == exclude:
            continue
        try:
            spec = TrainSpec.from_params(load_result(result.parent)["spec"])
        except (ParameterError, OSError, ValueError, KeyError):
            continue
        if (spec.data.name == P.dataset and abs(spec.attack.eps - P.eps) < 1e-9 and spec.eps_schedule == "constant"
                and not spec.periodic and spec.objective == "ce"):
            out.append(Run(spec, result.parent))
    return out[:P.compare]


def _lipschitz(model: nn.Module, x, P: DiagnoseParams) -> float:
    return float(local_lipschitz(model, x, P.eps, steps=P.lipschitz_steps, step_size=P.eps / 4,
                                 generator=torch.Generator().manual_seed(P.seed)).mean())


def _spectrum(model: nn.Module, x, y, P: DiagnoseParams, seed: int) -> Spectrum:
    return spectrum(model, x, y, P.eps, P.train_attack, k=P.k, n_random=P.n_random, seed=seed)


def _row(label: str, clean: float, pgd: float, top: float, lip: float) -> dict:
    return {"model": label, "clean": clean, "PGD": pgd, "top eigenvalue (normalised)": top, "local Lipschitz": lip}


def compare_row(label: str, model: nn.Module, x, y, xh, yh, P: DiagnoseParams) -> dict:
    """What the comparison table shows of a model of the store: clean and PGD error, the normalised top
    eigenvalue on the first Hessian batch, the local Lipschitz constant, drawn exactly as
    :func:`diagnose_model` draws them for the diagnosed model (same generators, same order)."""
    row = evaluate(model, x, y, {"PGD": P.train_attack}, seed=P.seed).row()
    top = _spectrum(model, xh, yh, P, P.seed)
    return _row(label, row["Clean"], row["PGD"], float(top.normalised[0]), _lipschitz(model, x, P))


def diagnose_model(model: nn.Module, P: DiagnoseParams, *, device="cpu",
                   data: tuple[Split, Split] | None = None, store: Path | None = None, exclude: str = "",
                   surrogate: nn.Module | None = None) -> Diagnosis:
    """Run every diagnostic of the study on ``model`` (moved to ``device``, eval mode); with ``store``, measure
    the study's models at the same budget beside it (:func:`study_runs`); with ``surrogate``, the transfer
    column (the training attack computed on the surrogate, checked like the model on one batch first)."""
    if not isinstance(model, nn.Module):
        raise ParameterError("model", type(model).__name__, "must be a torch.nn.Module")
    if surrogate is not None and not isinstance(surrogate, nn.Module):
        raise ParameterError("surrogate", type(surrogate).__name__, "must be a torch.nn.Module")
    model = model.to(device).eval()
    train, test = data or _data(P)
    if P.n_test > len(test.y):
        raise ParameterError("n_test", P.n_test, f"must be <= {len(test.y)}, the test set of {P.dataset}")
    n = P.hessian_examples
    if n * P.hessian_batches > len(train.y):
        raise ParameterError("hessian_batches", P.hessian_batches, f"x hessian_examples ({n}) must be <= "
                             f"{len(train.y)}, the training set of {P.dataset}")
    x, y = test.x[: P.n_test].to(device), test.y[: P.n_test].to(device)
    check = check_model(model, x[:100], dataset_info(P.dataset).num_classes)      # before any attack
    transfer = {}
    if surrogate is not None:
        surrogate = surrogate.to(device).eval()
        try:
            check_model(surrogate, x[:100], dataset_info(P.dataset).num_classes)
        except ParameterError as err:
            raise ParameterError("--surrogate", err.value, err.allowed) from None
        transfer = {"transfer": Transfer(surrogate, P.train_attack)}
    draws = P.eot_draws if check.randomised else 1
    if draws > 1:        # EOT (Athalye et al. 2018): attacks and measures see the expected prediction over the randomness
        model = Ensemble([model] * draws)
    ev = EvalSpec(batch_size=100, pgd100_steps=P.pgd100_steps, apgd_steps=P.apgd_steps, apgd_restarts=P.apgd_restarts,
                  square_queries=P.square_queries, seed=P.seed)
    suite = evaluate(model, x, y, ev.suite(P.dataset, P.eps, P.train_attack), seed=P.seed).row()
    linf = grid_suite(P.eps, P.attack_grid)
    res = evaluate(model, x, y, {**linf, **l2_suite(P.attack_grid), **transfer}, seed=P.seed)
    grid = {**{k: v for k, v in res.row().items() if k not in ("Clean", "Worst")}, "grid worst": grid_worst(res, linf)}
    masking = masking_check(model, x, y, P.eps, P.masking)

    # disjoint batches: the spread of the top eigenvalues over them; batch 0 draws as a single batch would
    batches = [(train.x[b * n:(b + 1) * n].to(device), train.y[b * n:(b + 1) * n].to(device))
               for b in range(P.hessian_batches)]
    spectra = [_spectrum(model, xb, yb, P, P.seed + b) for b, (xb, yb) in enumerate(batches)]
    first = spectra[0]
    detail = curvature_detail(model, first.x_adv, batches[0][1], P.eps, first.scale, trace_samples=P.trace_samples,
                              slq_steps=P.slq_steps, slq_runs=P.slq_runs, layer_steps=P.layer_steps, seed=P.seed)
    m = P.cosine_examples
    similarity = cosine_similarity(model, train.x[:m].to(device), train.y[:m].to(device), x[:m], y[:m],
                                   P.train_attack, a_values=P.a_values, repeats=P.repeats, seed=P.seed)
    lip = _lipschitz(model, x, P)
    runs = study_runs(store, P, exclude)         # measured as this model was: its row is read, not recomputed
    this = _row("this model", suite["Clean"], suite["PGD"], float(first.normalised[0]), lip)
    comparison = [this] + [compare_row(r.spec.label(), r.model(device=device), x, y, *batches[0], P)
                           for r in runs] if runs else None
    return Diagnosis(P, suite, ev.labels(), grid, masking, spectra, detail, similarity, lip, check, draws, comparison)


def load_model(arch: str, width: int, state_dict: str | Path, dataset: str = "mnist5k") -> nn.Module:
    """One of the study's architectures for ``dataset``'s inputs, with the weights of a ``state_dict`` file
    (a plain state dict, or a checkpoint holding one under ``"model"``), read with ``weights_only=True``."""
    if arch not in IMAGE_ARCHS:
        raise ParameterError("arch", arch, f"must be one of {list(IMAGE_ARCHS)}")
    info = dataset_info(dataset)
    model = build_model(arch, width, info.in_shape, info.num_classes, info.mean, info.std)
    state = load_checkpoint(Path(state_dict))
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as err:
        raise ParameterError("state_dict", str(state_dict), f"does not fit {arch}-{width}: {err}") from None
    return model.eval()


def run_model(store: Path, digest: str, device="cpu") -> tuple[nn.Module, TrainSpec]:
    """The final model of the run store's run ``digest`` (a folder name or its digest part) and its spec
    (whose ``digest()`` names its folder)."""
    store = Path(store)
    matches = sorted(p for p in store.glob(f"*{digest}*") if (p / "result.json").exists())
    if len(matches) != 1:
        known = sorted(p.name for p in store.glob("*") if (p / "result.json").exists())
        raise ParameterError("run", digest, f"must name one complete run of {store} "
                             f"({'ambiguous' if matches else 'none matches'}; runs: {known[:12]}"
                             f"{' ...' if len(known) > 12 else ''})")
    spec = TrainSpec.from_params(load_result(matches[0])["spec"])
    return Run(spec, matches[0]).model(device=device), spec
