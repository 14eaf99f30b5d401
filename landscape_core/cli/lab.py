"""``make lab``: JupyterLab on the study, configured by the project (not by each user).

* Lab serves the repository root (so jupytext finds ``jupytext.toml`` and pairs ``NN_name.py`` with
  ``NN_name.ipynb``) and opens on ``notebooks/``; double-clicking a ``.py`` opens it as a notebook
  (``python`` files' default viewer is jupytext's "Jupytext Notebook", written to this environment's
  ``share/jupyter/lab/settings/overrides.json``), with its outputs from the ``.ipynb`` and no kernel prompt.
* Interactive views are on in Lab's kernels (``LANDSCAPE_INTERACTIVE=1``, read by
  :func:`landscape_core.report.notebook.start`) and off under papermill and nbval: no tracked file is
  edited to turn them on.
* :func:`pre_save` (the contents manager's pre-save hook) keeps the committed references the nbval
  baseline: a save writes the metadata exactly as ``make notebooks`` does (no Python version, no widget
  state) and keeps the reference's outputs of every cell whose code is unchanged, so opening, running
  and saving a notebook without an edit leaves ``git status`` empty.  An edited cell keeps the session's
  outputs (the reference is then stale: ``make notebooks`` re-executes it, a test says so).
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from ..core.io import atomic_write_text, repo_root
from ..report.notebook import INTERACTIVE_ENV as ENV

__all__ = ["OVERRIDES", "ENV", "write_overrides", "pre_save", "lab_command", "normalise_reference"]

OVERRIDES = {"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}},
             "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}
# What Lab or papermill add to a cell that a reference does not carry (``runner.STRIP_KEYS``); jupytext's
# layout keys (``lines_to_next_cell``) and tags stay.
VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled", "papermill", "trusted")
REFERENCE = re.compile(r"(^|/)notebooks/\d\d_[A-Za-z0-9_]+\.ipynb$")


def write_overrides(prefix: str | Path = sys.prefix) -> Path:
    """Merge :data:`OVERRIDES` into ``<prefix>/share/jupyter/lab/settings/overrides.json`` (Lab's settings
    for every user of this environment); other settings in the file are kept."""
    path = Path(prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    current = {}
    if path.exists():
        try:
            current = json.loads(path.read_text())
        except ValueError:
            current = {}
    for plugin, settings in OVERRIDES.items():
        merged = current.setdefault(plugin, {})
        for key, value in settings.items():
            merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    atomic_write_text(path, json.dumps(current, indent=2) + "\n")
    return path


def normalise_reference(nb: dict, reference: dict | None) -> dict:
    """``nb`` (a notebook dict about to be saved) with the metadata a reference carries (as
    ``runner.strip`` writes it) and, for every code cell whose source equals the reference's cell at the
    same place, the reference's outputs and execution count."""
    from .runner import JUPYTEXT_METADATA, KERNELSPEC
    nb["metadata"] = {"kernelspec": dict(KERNELSPEC), "jupytext": dict(JUPYTEXT_METADATA)}
    ref_cells = (reference or {}).get("cells", [])
    for i, cell in enumerate(nb.get("cells", [])):
        meta = {k: v for k, v in cell.get("metadata", {}).items() if k not in VOLATILE_CELL_METADATA}
        if not meta.get("tags", True):
            del meta["tags"]
        cell["metadata"] = meta
        ref = ref_cells[i] if i < len(ref_cells) else None
        if cell.get("cell_type") != "code":
            continue
        if ref is not None and ref.get("cell_type") == "code" and _source(ref) == _source(cell):
            cell["outputs"] = ref.get("outputs", [])
            cell["execution_count"] = ref.get("execution_count")
    return nb


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def pre_save(model: dict, path: str, contents_manager=None, **kwargs) -> None:
    """Jupyter Server's pre-save hook: a committed reference notebook is saved as :func:`normalise_reference`
    makes it; every other file is saved as Lab sends it."""
    if model.get("type") != "notebook" or not REFERENCE.search(path or ""):
        return
    root = Path(getattr(contents_manager, "root_dir", None) or repo_root())
    target = root / path
    reference = None
    if target.exists():
        try:
            reference = json.loads(target.read_text())
        except (OSError, ValueError):
            reference = None
    normalise_reference(model["content"], reference)


def lab_command(extra: list[str] | None = None, root: Path | None = None) -> list[str]:
    """The ``jupyter lab`` command line of ``make lab``."""
    root = root or repo_root()
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}",
           "--ServerApp.default_url=/lab/tree/notebooks",
           f"--ContentsManager.pre_save_hook={__name__}.pre_save"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd + list(extra or [])


def main(argv: list[str]) -> int:
    """Configure Lab's default viewer, then run JupyterLab (``argv``: its options) with interactive views
    on in its kernels."""
    write_overrides()
    env = {**os.environ, ENV: "1"}
    cmd = lab_command(argv)
    os.execvpe(cmd[0], cmd, env)
    return 0
