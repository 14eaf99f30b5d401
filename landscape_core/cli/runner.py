"""The notebook runner: papermill, reference notebooks, variants, staleness (what ``run`` and
``reference`` of :mod:`.commands` do).

``run`` validates ``params/<profile>/<name>.yaml`` against the notebook's spec (``studies.NOTEBOOKS``)
*before* starting a kernel, executes the jupytext ``.py`` with papermill into a scratch file and moves
the executed notebook to ``outputs/<profile>/<name>.ipynb`` only on success (a failed one goes to
``outputs/<profile>/failed/`` for inspection).  Notebooks that analyse notebook 02's models
(``studies.UsesZoo``) receive them as their ``zoo`` parameter, resolved here from 02's params file of
the same profile; 03, 04 and 06 (``studies.ZooStudyParams``) run once more per task of 02, on that task's
zoo, into ``outputs/<profile>/tasks/<task>/`` (:mod:`.params`).  ``reference`` re-executes a notebook on its defaults and writes the committed
``notebooks/<name>.ipynb`` (the nbval reference) with volatile metadata stripped.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence


from ..core.io import atomic_path, output_parts, outputs_dir, repo_root
from ..core.spec import ParameterError
from ..report.notebook import INTERACTIVE_ENV, provenance
from ..studies import NOTEBOOKS, NotebookParams
from .params import ParamsError, notebook_runs

STRIP_KEYS = ("metadata.papermill cell.metadata.papermill cell.metadata.execution metadata.widgets "
              "metadata.language_info cell.metadata.collapsed")


def outputs_of(profile: str, name: str) -> list[Path]:
    """Everything a run of notebook ``name`` leaves in ``outputs/<profile>/`` (not the run store)."""
    found = []
    for root in output_parts(outputs_dir(profile, create=False)).values():
        found += [root / f"{name}.ipynb", root / "failed" / f"{name}.ipynb", root / "claims" / f"{name}.json"]
        found += list((root / "figures").glob(f"{name}_*")) + list((root / "tables").glob(f"{name}[._]*"))
    return [p for p in found if p.exists()]


def read_notebook(py: Path):
    import jupytext
    nb = jupytext.read(py)
    nb.metadata.setdefault("kernelspec", dict(KERNELSPEC))
    return nb


# What JupyterLab (with jupytext's contents manager) writes on a save: the references carry exactly
# this, so that opening one and saving it without an edit changes nothing (``language_info``, which
# names the Python version, is removed by the git filter that ``make setup`` installs).
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
JUPYTEXT_METADATA = {"cell_metadata_filter": "tags,-all", "formats": "ipynb,py:percent",
                     "notebook_metadata_filter": "-all"}


def install_git_filter(repo: Path | None = None) -> bool:
    """Configure the ``nbstripout`` clean filter that ``.gitattributes`` names for ``*.ipynb`` (same
    keys as :func:`strip`); False when ``repo`` is no git work tree."""
    repo = repo or repo_root()
    if subprocess.run(["git", "-C", str(repo), "rev-parse", "--git-dir"], capture_output=True).returncode:
        return False
    clean = (f"'{sys.executable}' -m nbstripout --keep-output --keep-count --extra-keys '{STRIP_KEYS}'")
    for key, value in (("clean", clean), ("smudge", "cat"), ("required", "false")):
        subprocess.run(["git", "-C", str(repo), "config", f"filter.nbstripout.{key}", value], check=True)
    return True


# The kernel's own log at ERROR: its "running over TCP without encryption" warning (a local kernel on
# loopback, started and stopped by this process) is noise on the console of every notebook run.
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]


def execute(py: Path, out: Path, parameters: dict | None, progress: bool = False) -> None:
    """Execute ``py`` with papermill into ``out``; ``out`` appears only if every cell succeeded."""
    import papermill as pm
    nb = read_notebook(py)
    os.environ.pop(INTERACTIVE_ENV, None)       # a run from a Lab terminal: static, as in CI
    failed = out.parent / "failed" / out.name
    with atomic_path(out) as tmp:
        try:
            pm.execute_notebook(nb, str(tmp), parameters=parameters or None, kernel_name="python3",
                                progress_bar=progress, cwd=str(py.parent), language="python",
                                extra_arguments=KERNEL_ARGS)
        except Exception:
            failed.parent.mkdir(parents=True, exist_ok=True)
            if tmp.exists() and tmp.stat().st_size:
                shutil.copyfile(tmp, failed)
            raise
    if failed.exists():
        failed.unlink()


def strip(path: Path) -> None:
    """Drop volatile metadata but keep outputs and execution counts (nbval needs both); pin the
    metadata a JupyterLab save writes (:data:`KERNELSPEC`, :data:`JUPYTEXT_METADATA`, no empty tags)."""
    import nbformat
    subprocess.run([sys.executable, "-m", "nbstripout", "--keep-output", "--keep-count",
                    "--extra-keys", STRIP_KEYS, str(path)], check=True)
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["jupytext"] = dict(JUPYTEXT_METADATA)
    with atomic_path(path) as tmp:
        nbformat.write(nb, tmp)


NOT_VARIANT = rf"({'|'.join(NotebookParams.NOT_RESULTS)})=.*"     # overrides that do not change what a study computes


def variant_name(items: Sequence[str] | None) -> str:
    """The folder of a run with overrides, named after them (``make`` computes the same name from
    ``SET``): ``["eps_list=[0.1, 0.2]", "seed=1"]`` -> ``"eps_list=_0.1__0.2__seed=1"``.  Overrides of
    :attr:`NotebookParams.NOT_RESULTS` alone (device, progress bars, interactive views) make no variant."""
    kept = [i for i in items or () if not re.fullmatch(NOT_VARIANT, i)]
    return re.sub(r"[^A-Za-z0-9.=-]", "_", " ".join(kept))[:60]


def expected_digests(profile: str) -> dict[str, str]:
    """The parameter digest each notebook's params file of ``profile`` gives now (valid files only), by
    :func:`~landscape_core.report.claims.part_label` (a per-task run: ``03_hessian [task]``)."""
    out = {}
    for name in NOTEBOOKS:
        try:
            out |= {label: provenance(P, name)["digest"] for label, P in notebook_runs(name, profile).items()}
        except (ParameterError, ParamsError, SystemExit):
            pass
    return out


def stale_notebooks(folder: Path | None = None) -> list[str]:
    """Names of reference notebooks whose cells differ from their jupytext ``.py`` source."""
    import nbformat
    folder = folder or repo_root() / "notebooks"
    stale = []
    for py in sorted(folder.glob("[0-9][0-9]_*.py")):
        ipynb = py.with_suffix(".ipynb")
        if not ipynb.exists():
            stale.append(f"{py.name}: no reference {ipynb.name} (run `make notebooks`)")
            continue
        want = [(c.cell_type, c.source.strip()) for c in read_notebook(py).cells]
        have = [(c.cell_type, c.source.strip()) for c in nbformat.read(ipynb, as_version=4).cells
                if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
        if want != have:
            first = next((i for i, (a, b) in enumerate(zip(want, have)) if a != b), min(len(want), len(have)))
            stale.append(f"{ipynb.name} is stale: its cell {first + 1} differs from {py.name} "
                         f"(run `make notebooks` to re-execute the reference)")
    return stale
