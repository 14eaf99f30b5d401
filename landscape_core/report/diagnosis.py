"""``diagnose``: the study's diagnostics on one model, written as an HTML page (see
:mod:`landscape_core.studies.diagnose` for what is measured)."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from ..core.io import save_figure
from ..studies.diagnose import DiagnoseParams, Diagnosis, diagnose_model
from ..studies.hessian import SpectrumDetail
from . import plots
from .html import model_report

__all__ = ["diagnose"]


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
    detail = SpectrumDetail(P.eps, d.trace, d.density, d.layers, d.scale, 0)
    save_figure(plots.spectral_densities({P.eps: detail}), figures / "density")
    save_figure(plots.perturbation_similarity({P.eps: d.similarity}), figures / "similarity")
    shown = [figures / "density.png", figures / "similarity.png"]
    if d.comparison:          # beside the study's models at the same budget
        save_figure(plots.beside_study(d.comparison), figures / "beside_study")
        shown.append(figures / "beside_study.png")
    page = model_report(out / "index.html", f"{title} (eps {P.eps:g}, {P.dataset})", d.tables(), shown, d.checks())
    return d, page
