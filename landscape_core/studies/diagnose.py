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

from ..analysis import hessian
from ..analysis.attack_grid import AttackGridSpec, Transfer, grid_suite, grid_worst, l2_suite
from ..analysis.landscape import random_direction
from ..analysis.lipschitz import local_lipschitz
from ..analysis.masking import MaskingReport, MaskingSpec, masking_check
from ..analysis.robustness import Ensemble, EvalSpec, evaluate
from ..analysis.similarity import SimilarityResult, perturbation_similarity
from ..analysis.spectrum import HessianSpectrum, SpectralDensity, TraceEstimate
from ..attacks import AttackSpec, make_attack
from ..core.io import load_checkpoint
from ..core.spec import ParameterError, Spec, param
from ..data import DATASETS, DatasetSpec, Split, dataset_info, load_data
from ..models.networks import IMAGE_ARCHS, build_model
from ..training import Run, TrainSpec, load_result
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
        if self.a_values[0] != 0.0 or list(self.a_values) != sorted(set(self.a_values)):
            raise ParameterError("a_values", list(self.a_values), "must start at 0 and increase")

    @property
    def train_attack(self) -> AttackSpec:
        return AttackSpec(name="pgd", eps=self.eps, steps=self.pgd_steps, step_size=self.pgd_step_ratio * self.eps)


@dataclass
class Diagnosis:
    """Everything :func:`diagnose_model` measured (errors in %)."""

    params: DiagnoseParams
    suite: dict[str, float]                 # Clean, each Table 1 column, Worst
    labels: dict[str, str]
    grid: dict[str, float]                  # each grid column, "grid worst"
    masking: MaskingReport
    eigenvalues: np.ndarray                 # raw top-k: the mean over the Hessian batches
    scale: float                            # mean adversarial loss at random parameters
    trace: TraceEstimate
    density: SpectralDensity
    layers: dict[str, float]
    similarity: dict[str, SimilarityResult]  # "Eigenvector" / "Random"
    lipschitz: float
    model_check: ModelCheck | None = None    # one clean batch, before any attack (user_models.check_model)
    eigen_batches: np.ndarray | None = None  # [batches, k] raw top-k of each disjoint Hessian batch
    eot_draws: int = 1                       # > 1: a randomised model, measured through EOT over this many draws
    comparison: list[dict] | None = None     # this model beside the study's at the same budget (compare_row)

    @property
    def normalised(self) -> np.ndarray:
        return self.eigenvalues / self.scale

    def checks(self) -> list[dict]:
        """The study's rules that apply to one model: no masking flag; APGD-CE at least as strong as
        PGD100; Square not above the white box; the eigenvector moves perturbations more than random."""
        s, out = self.suite, []
        if self.model_check is not None:
            c = self.model_check
            eot = (f"; measured through EOT over {self.eot_draws} draws (their mean probability)" if self.eot_draws > 1
                   else "; measured as it is: its robust errors may overstate its robustness" if c.randomised else "")
            out.append({"claim": "the model is deterministic (a randomised defence needs EOT)",
                        "verdict": "fails" if c.randomised else "holds",
                        "measured": f"largest logit change between two passes over one batch {c.logit_change:.3g}{eot}"})
        out.append({"claim": "no gradient-masking flag", "verdict": "fails" if self.masking.flagged else "holds",
                    "measured": "; ".join(self.masking.flags.values()) or "none raised"})
        if "APGD100-CE" in s and "PGD100" in s:
            gap = s["APGD100-CE"] - s["PGD100"]
            out.append({"claim": "APGD-CE at least as strong as PGD100 (- 1 point)",
                        "verdict": "holds" if gap >= -1 else "fails", "measured": f"{gap:+.2f} points"})
        if "Square5K" in s:
            white = max(v for k, v in s.items() if k in ("PGD", "PGD100", "APGD100-CE", "APGD100-DLR"))
            gap = s["Square5K"] - white
            out.append({"claim": "Square does not beat the white-box attacks (+ 1 point)",
                        "verdict": "holds" if gap <= 1 else "fails", "measured": f"{gap:+.2f} points"})
        if "transfer" in self.grid and "PGD" in s:
            gap = self.grid["transfer"] - s["PGD"]
            out.append({"claim": "a transfer attack from the surrogate does not beat white-box PGD (+ 1 point)",
                        "verdict": "holds" if gap <= 1 else "fails", "measured": f"{gap:+.2f} points"})
        e, r = (self.similarity[d].cosine_mean[-1] for d in ("Eigenvector", "Random"))
        out.append({"claim": "Sec 4.2: perturbations change more along the top eigenvector than along a random direction",
                    "verdict": "holds" if e < r else "fails",
                    "measured": f"cosine at a = {self.params.a_values[-1]:g}: eigenvector {e:.3f}, random {r:.3f}"})
        return out

    def tables(self) -> dict[str, list[dict]]:
        """Rows for a report: the suite, the grid, masking, the Hessian and the similarity."""
        sim = [{"direction": d, **{f"a={a:g}": c for a, c in zip(r.a_values, r.cosine_mean)}}
               for d, r in self.similarity.items()]
        per = self.eigen_batches if self.eigen_batches is not None else self.eigenvalues[None]
        std = per.std(axis=0, ddof=1) if len(per) > 1 else np.full(len(self.eigenvalues), np.nan)
        hess = [{"rank": i + 1, "eigenvalue": v, "std over batches": sd, "normalised": v / self.scale,
                 "batches x examples": f"{len(per)} x {self.params.hessian_examples}"}
                for i, (v, sd) in enumerate(zip(self.eigenvalues, std))]
        detail = [{"trace": self.trace.trace, "trace stderr": self.trace.stderr,
                   "normalised trace": self.trace.trace / self.scale, "random-parameter loss": self.scale,
                   "density support": f"[{self.density.support[0]:.3g}, {self.density.support[1]:.3g}]",
                   **{f"top {k}": v for k, v in self.layers.items()}, "local Lipschitz": self.lipschitz}]
        return {"attack suite (%)": [{self.labels.get(k, k): v for k, v in self.suite.items()}],
                "reviewer 1's grid (%)": [self.grid], "gradient-masking check": [self.masking.row()],
                "top Hessian eigenvalues": hess, "trace, density, layers, local Lipschitz": detail,
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


def _top(model: nn.Module, x, y, attack, P: DiagnoseParams, gen: torch.Generator):
    """The fixed adversarial set of (x, y) and the top ``P.k`` Hessian eigenpairs of the loss on it."""
    x_adv = hessian.fixed_adversarial_set(model, x, y, attack, generator=gen)
    return x_adv, hessian.top_eigenpairs(model, x_adv, y, k=P.k, generator=gen)


def _lipschitz(model: nn.Module, x, P: DiagnoseParams) -> float:
    return float(local_lipschitz(model, x, P.eps, steps=P.lipschitz_steps, step_size=P.eps / 4,
                                 generator=torch.Generator().manual_seed(P.seed)).mean())


def _row(label: str, clean: float, pgd: float, top: float, lip: float) -> dict:
    return {"model": label, "clean": clean, "PGD": pgd, "top eigenvalue (normalised)": top, "local Lipschitz": lip}


def compare_row(label: str, model: nn.Module, x, y, xh, yh, P: DiagnoseParams) -> dict:
    """What the comparison table shows of a model of the store: clean and PGD error, the normalised top
    eigenvalue on the first Hessian batch, the local Lipschitz constant, drawn exactly as
    :func:`diagnose_model` draws them for the diagnosed model (same generators, same order)."""
    attack, gen = make_attack(P.train_attack), torch.Generator().manual_seed(P.seed)
    row = evaluate(model, x, y, {"PGD": P.train_attack}, seed=P.seed).row()
    _, top = _top(model, xh, yh, attack, P, gen)
    scale = hessian.random_parameter_loss(model, xh, yh, attack, P.n_random, generator=gen).mean
    return _row(label, row["Clean"], row["PGD"], float(top.values[0]) / scale, _lipschitz(model, x, P))


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

    attack = make_attack(P.train_attack)
    gen = torch.Generator().manual_seed(P.seed)
    tops = []
    for b in range(P.hessian_batches):        # disjoint batches: the spread of the top eigenvalues over them
        xb, yb = train.x[b * n:(b + 1) * n].to(device), train.y[b * n:(b + 1) * n].to(device)
        g = gen if b == 0 else torch.Generator().manual_seed(P.seed + b)    # batch 0 draws as a single batch would
        x_adv_b, top_b = _top(model, xb, yb, attack, P, g)
        tops.append(top_b)
        if b == 0:
            xh, yh, x_adv, top = xb, yb, x_adv_b, tops[0]     # the first batch: vectors, trace, density, layers
    scale = hessian.random_parameter_loss(model, xh, yh, attack, P.n_random, generator=gen).mean
    spec = HessianSpectrum(model, x_adv, yh, seed=P.seed)
    trace, density, layers = spec.trace(P.trace_samples), spec.density(P.slq_steps, P.slq_runs), spec.layers(P.layer_steps)

    xc, yc = train.x[: P.cosine_examples].to(device), train.y[: P.cosine_examples].to(device)
    directions = {"Eigenvector": torch.from_numpy(np.ascontiguousarray(top.vectors[0])),
                  "Random": random_direction(model, gen)}
    similarity = {d: perturbation_similarity(model, v, P.a_values, xc, yc, attack, repeats=P.repeats, generator=gen,
                                             x_test=x[: P.cosine_examples], y_test=y[: P.cosine_examples])
                  for d, v in directions.items()}
    lip = _lipschitz(model, x, P)
    per_batch = np.stack([t.values for t in tops])
    runs = study_runs(store, P, exclude)         # measured as this model was: its row is read, not recomputed
    this = _row("this model", suite["Clean"], suite["PGD"], float(top.values[0]) / scale, lip)
    comparison = [this] + [compare_row(r.spec.label(), r.model(device=device), x, y, xh, yh, P)
                           for r in runs] if runs else None
    return Diagnosis(P, suite, ev.labels(), grid, masking, per_batch.mean(axis=0), scale, trace, density, layers,
                     similarity, lip, check, per_batch, draws, comparison)


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
