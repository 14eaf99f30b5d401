"""What a notebook calls first: :func:`start` validates its parameters and says where it writes.

In a notebook::

    _before = set(globals())                # first code cell, before the parameters cell
    # parameters cell (tag "parameters"): smoke defaults
    P, out = start(LinearTheoryParams, globals(), _before)   # typed, validated; typos are errors
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ..core.io import outputs_dir, outputs_root, save_json
from ..core.machine import numerics
from ..core.spec import Spec
from ..studies import NOTEBOOKS, NotebookParams
from .plots import style

__all__ = ["Outputs", "start", "interact_or_draw", "provenance"]

# Set by `make lab` (landscape_core.cli.lab) for Lab's kernels, never under papermill or nbval: a notebook
# opened in Lab shows its interactive views without an edit of its parameters cell.
INTERACTIVE_ENV = "LANDSCAPE_INTERACTIVE"

# parameters that change how a run looks or where it writes, not what it computes
NOT_PROVENANCE = NotebookParams.NOT_RESULTS


def provenance(spec: Spec, notebook: str) -> dict:
    """What made a notebook's outputs: its parameters and their digest (without :data:`NOT_PROVENANCE`)."""
    params = {k: v for k, v in spec.to_dict().items() if k not in NOT_PROVENANCE}
    # the digest as the run store's: a parameter added since, still at its default, changes nothing
    kept = {k: v for k, v in spec.digest_dict().items() if k not in NOT_PROVENANCE}
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:12]
    return {"notebook": notebook, "digest": digest, "params": params}


@dataclass(frozen=True)
class Outputs:
    """Where a notebook writes: ``outputs/<profile>/{figures,tables,claims,params}`` (or the same under
    ``variants/<variant>/`` for a run with overrides); the run store ``outputs/<profile>/runs`` is shared."""

    profile: str
    notebook: str
    variant: str = ""
    task: str = ""          # 03, 04, 06 on the zoo of a task of 02: under tasks/<task>/

    @property
    def root(self) -> Path:
        return outputs_root(self.profile, self.variant, task=self.task)

    def _dir(self, kind: str) -> Path:
        path = self.root / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    def figure(self, name: str) -> Path:
        """Path stem (no suffix) for a figure of this notebook: figures/<notebook>_<name>."""
        return self._dir("figures") / f"{self.notebook}_{name}"

    def table(self, name: str = "") -> Path:
        """Path stem (no suffix) for a table of this notebook: tables/<notebook>[_<name>]."""
        return self._dir("tables") / (f"{self.notebook}_{name}" if name else self.notebook)

    @property
    def claims(self) -> Path:
        return self._dir("claims")

    @property
    def runs(self) -> Path:
        return outputs_dir(self.profile, "runs")


def start(spec_cls: type[Spec], namespace: Mapping[str, Any], before: set[str], notebook: str | None = None):
    """Validate a notebook's parameters (a bad value or unknown name stops the notebook here)."""
    name = notebook or _notebook_name(spec_cls)
    spec = spec_cls.from_namespace(namespace, before, where=name)
    if os.environ.get(INTERACTIVE_ENV) == "1" and not spec.interactive:
        spec = spec.replace(interactive=True)            # a kernel of `make lab`: interactive views on
    task = getattr(spec, "task", "")
    outputs_root(spec.profile, spec.variant, create=False, task=task)       # a bad variant or task name stops here
    style(eps_max=_largest_budget(spec))
    out = Outputs(spec.profile, name, spec.variant, task)
    record = {**provenance(spec, name), "numerics": numerics(spec.torch_device())}   # what made these outputs
    save_json(out._dir("params") / f"{name}.json", record)
    return spec, out


def _largest_budget(spec) -> float | None:
    """The notebook's largest training budget (its zoo's, or its own list's): fixes ε colours."""
    source = getattr(spec, "zoo", spec)
    budgets = getattr(source, "eps_list", None)
    return max(budgets) if budgets else None


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
    return Controls(w.interact(draw, **controls, **{k: w.fixed(v) for k, v in fixed.items()}).widget)


class Controls:
    """The widgets of an interactive view; shows nothing itself (``interact`` has displayed them), so a
    notebook cell that ends with the call prints no ``Out[..]: <function ...>``."""

    def __init__(self, widget):
        self.widget = widget

    def _ipython_display_(self):
        pass
