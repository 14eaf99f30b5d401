"""``diagnose``: the study's diagnostics on one model, written as an HTML page (see
:mod:`landscape_core.studies.diagnose` for what is measured)."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from torch import nn

from ..core.io import save_figure
from ..analysis.dynamics import Health
from ..analysis.masking import ModelFlags
from ..studies.cosine import perturbation_table
from ..studies.diagnose import DiagnoseParams, Diagnosis, diagnose_model
from . import plots
from .claims import Claim, Claims
from .html import model_report

__all__ = ["diagnose", "checks", "RULES"]

# the catalogue's rules that apply to one model, in the order :func:`checks` tests them
RULES = ("deterministic", "no_masking", "apgd_vs_pgd", "square_vs_white", "transfer_vs_white", "fig4_cosine")


def diagnose(model: nn.Module, params: DiagnoseParams | None = None, out: str | Path = "outputs/diagnose/model", *,
             title: str = "diagnosis", device="cpu", data=None, store: str | Path | None = None,
             exclude: str = "", surrogate: nn.Module | None = None) -> tuple[Diagnosis, Path]:
    """Measure ``model`` (any ``nn.Module`` on inputs in [0, 1]) and write ``<out>/index.html`` with its
    figures (``<out>/figures``).  Returns the :class:`Diagnosis` and the page's path.  Nothing is written
    unless every measurement succeeded."""
    P = params or DiagnoseParams()
    d = diagnose_model(model, P, device=device, data=data, store=Path(store) if store else None, exclude=exclude,
                       surrogate=surrogate)
    out = Path(out)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    save_figure(plots.spectral_densities({P.eps: d.detail}), figures / "density")
    save_figure(plots.perturbation_similarity({P.eps: d.similarity}), figures / "similarity")
    shown = [figures / "density.png", figures / "similarity.png"]
    if d.comparison:          # beside the study's models at the same budget
        save_figure(plots.beside_study(d.comparison), figures / "beside_study")
        shown.append(figures / "beside_study.png")
    page = model_report(out / "index.html", f"{title} (eps {P.eps:g}, {P.dataset})", d.tables(), shown,
                        [asdict(c) for c in checks(d)])
    return d, page


def checks(d: Diagnosis) -> list[Claim]:
    """The catalogue's rules that apply to one model (its training unknown: every rule's regime counts it):
    deterministic, no gradient-masking flag, APGD-CE at least as strong as PGD100, Square not above the
    white box, the transfer column not above PGD (untestable without a surrogate), and Fig 4's eigenvector
    against a random direction (:mod:`~landscape_core.report.catalogue`, as notebooks 04 and 05 test them)."""
    c = Claims("diagnose", "")
    if d.model_check is not None:
        c.test("deterministic", d.model_check.logit_change, d.model_check.randomised, d.eot_draws)
    h = _regime(d)
    c.test("no_masking", [ModelFlags("this model", d.masking, h)])
    row = {**d.suite, **{k: v for k, v in d.grid.items() if k == "transfer"}}
    for key in ("apgd_vs_pgd", "square_vs_white", "transfer_vs_white"):     # untestable: a column not measured
        c.test(key, [row], None if h is None else [h])
    c.test("fig4_cosine", perturbation_table({d.params.eps: d.similarity}), None if h is None else {d.params.eps: h})
    return c.items


def _regime(d: Diagnosis) -> Health | None:
    """None (the rules count the model: its training is unknown), or, for a model that predicts one class on
    the clean batch of its check, a constant classifier's health: every rule about it is then untestable."""
    if d.model_check is None or not d.model_check.constant:
        return None
    return Health(width=0, constant=True, dead_fraction=0.0, robust_err=1.0 - 1.0 / d.model_check.num_classes,
                  chance_err=1.0 - 1.0 / d.model_check.num_classes)
