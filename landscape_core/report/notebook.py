"""What a notebook calls first: :func:`start` validates its parameters and says where it writes.

In a notebook::

    _before = set(globals())                # first code cell, before the parameters cell
    # parameters cell (tag "parameters"): smoke defaults
    P, out = start(LinearTheoryParams, globals(), _before)   # typed, validated; typos are errors
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ..core.io import outputs_dir
from ..core.spec import Spec
from ..studies import NOTEBOOKS
from .plots import style

__all__ = ["Outputs", "start", "interact_or_draw"]


@dataclass(frozen=True)
class Outputs:
    """Where a notebook writes: ``outputs/<profile>/{figures,tables,claims,runs}``."""

    profile: str
    notebook: str

    @property
    def root(self) -> Path:
        return outputs_dir(self.profile)

    def figure(self, name: str) -> Path:
        """Path stem (no suffix) for a figure of this notebook: figures/<notebook>_<name>."""
        return outputs_dir(self.profile, "figures") / f"{self.notebook}_{name}"

    def table(self, name: str = "") -> Path:
        """Path stem (no suffix) for a table of this notebook: tables/<notebook>[_<name>]."""
        return outputs_dir(self.profile, "tables") / (f"{self.notebook}_{name}" if name else self.notebook)

    @property
    def claims(self) -> Path:
        return outputs_dir(self.profile, "claims")

    @property
    def runs(self) -> Path:
        return outputs_dir(self.profile, "runs")


def start(spec_cls: type[Spec], namespace: Mapping[str, Any], before: set[str], notebook: str | None = None):
    """Validate a notebook's parameters (a bad value or unknown name stops the notebook here)."""
    name = notebook or _notebook_name(spec_cls)
    spec = spec_cls.from_namespace(namespace, before, where=name)
    style()
    return spec, Outputs(spec.profile, name)


def _notebook_name(spec_cls) -> str:
    return next((name for name, cls in NOTEBOOKS.items() if cls is spec_cls), spec_cls.__name__)


def interact_or_draw(draw: Callable, interactive: bool, sliders: Mapping[str, tuple], **fixed):
    """``interactive``: ipywidgets controls driving ``draw``; otherwise one static call with their values
    (papermill and nbval stay clean).  A control is ``(min, max, step, value)`` for a float slider or
    ``(options, value)`` for a drop-down."""
    if not interactive:
        return draw(**{k: v[-1] for k, v in sliders.items()}, **fixed)
    import ipywidgets as w
    controls = {}
    for k, spec in sliders.items():
        if len(spec) == 2:
            controls[k] = w.Dropdown(options=list(spec[0]), value=spec[1])
        else:
            lo, hi, step, value = spec
            controls[k] = w.FloatSlider(min=lo, max=hi, step=step, value=value, continuous_update=False)
    return w.interact(draw, **controls, **{k: w.fixed(v) for k, v in fixed.items()})
