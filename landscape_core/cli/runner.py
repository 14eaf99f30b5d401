"""The notebook runner: parameters files, papermill, reference notebooks (the Makefile's entry points).

    python -m landscape_core run notebooks/01_linear_theory.py --profile quick
    python -m landscape_core reference notebooks/01_linear_theory.py
    python -m landscape_core check-params
    python -m landscape_core summary --profile quick
    python -m landscape_core stale
    python -m landscape_core dry-run --profile paper --tiny-data

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

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence


from ..core.io import PROFILES, atomic_path, output_parts, outputs_dir, outputs_root, repo_root
from .watch import ProgressWatcher
from ..core.spec import ParameterError
from ..report.claims import summarise
from ..report.notebook import INTERACTIVE_ENV
from ..studies import NOTEBOOKS, NotebookParams
from .params import (ParamsError, load_params, notebook_runs, parse_overrides, read_yaml, spec_class,  # noqa: F401
                     task_names)  # (read_yaml, spec_class: re-exported for their importers)

STRIP_KEYS = ("metadata.papermill cell.metadata.papermill cell.metadata.execution metadata.widgets "
              "metadata.language_info cell.metadata.collapsed")


def outputs_of(profile: str, name: str) -> list[Path]:
    """Everything a run of notebook ``name`` leaves in ``outputs/<profile>/`` (not the run store)."""
    found = []
    for root in output_parts(outputs_dir(profile, create=False)).values():
        found += [root / f"{name}.ipynb", root / "failed" / f"{name}.ipynb", root / "claims" / f"{name}.json"]
        found += list((root / "figures").glob(f"{name}_*")) + list((root / "tables").glob(f"{name}[._]*"))
    return [p for p in found if p.exists()]


def _read_notebook(py: Path):
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
    nb = _read_notebook(py)
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


def _cmd_run(args) -> int:
    """Validate, then execute the notebook; one that analyses a zoo (03, 04, 06) runs on each task of 02
    first, into ``tasks/<task>/``, and on 02's own zoo last (so a failed task leaves no up-to-date
    target for ``make``)."""
    py = Path(args.notebook).resolve()
    name = py.stem
    try:
        overrides = parse_overrides(args.set, name)
        tasks = task_names(name, args.profile) if args.task is None else [args.task]
        jobs = [(t, load_params(name, args.profile, overrides, task=t)) for t in tasks if t]
        if args.task in (None, ""):
            jobs.append(("", load_params(name, args.profile, overrides)))
        variant = variant_name(args.set)
        roots = {t: outputs_root(args.profile, variant, create=False, task=t) for t, _ in jobs}   # names checked
    except (ParameterError, ParamsError) as err:
        print(f"error: {err}", file=sys.stderr)       # rejected: nothing on disk changes
        return 2
    for task, params in jobs:
        params.setdefault("variant", variant)
        root = roots[task]
        root.mkdir(parents=True, exist_ok=True)
        out = root / f"{name}.ipynb"
        for scratch in root.glob(f".{name}.*.tmp.ipynb"):      # left by a run that was killed
            scratch.unlink()
        label = name + (f" [task {task}]" if task else "")
        where = f"{args.profile}" + (f", variant {variant}" if variant else "")
        shown = f" (outputs in {root.relative_to(repo_root())}/)" if variant or task else ""
        print(f"[{where}] {label}: running{shown}", flush=True)
        try:
            with ProgressWatcher(f"[{args.profile}] {label}", outputs_dir(args.profile) / ".timings.json", label):
                execute(py, out, params, progress=args.progress)
        except Exception as err:  # papermill's PapermillExecutionError carries the cell's error
            print(f"error: {label} failed ({type(err).__name__}): {str(err).strip().splitlines()[-1]}\n"
                  f"  the executed notebook is in {out.parent / 'failed' / out.name}", file=sys.stderr)
            return 1
        print(f"[{where}] {label}: wrote {out.relative_to(repo_root())}", flush=True)
    return 0


def _cmd_reference(args) -> int:
    py = Path(args.notebook).resolve()
    out = py.with_suffix(".ipynb")
    for scratch in out.parent.glob(f".{py.stem}.*.tmp.ipynb"):      # left by a killed reference run
        scratch.unlink()
    execute(py, out, None, progress=False)
    strip(out)
    print(f"reference {out.relative_to(repo_root())} updated")
    return 0


def _cmd_check_params(args) -> int:
    """Validate the parameter files (all profiles, or one).  With ``--profile``, an executed notebook
    whose parameter file is now invalid is removed: it no longer shows what the parameters say."""
    bad = 0
    for profile in ([args.profile] if args.profile else PROFILES):
        for name in NOTEBOOKS:
            try:
                load_params(name, profile)
            except (ParameterError, ParamsError, SystemExit) as err:
                print(f"error: {err}", file=sys.stderr)
                bad += 1
                if args.profile:      # what the invalid parameters made no longer shows what they say
                    for stale in outputs_of(profile, name):
                        stale.unlink()
                        print(f"removed {stale.relative_to(repo_root())} (its parameters are invalid)",
                              file=sys.stderr)
    print("parameter files: " + ("all valid" if not bad else f"{bad} invalid"))
    return 1 if bad else 0


def expected_digests(profile: str) -> dict[str, str]:
    """The parameter digest each notebook's params file of ``profile`` gives now (valid files only), by
    :func:`~landscape_core.report.claims.part_label` (a per-task run: ``03_hessian [task]``)."""
    from ..report.notebook import provenance
    out = {}
    for name in NOTEBOOKS:
        try:
            out |= {label: provenance(P, name)["digest"] for label, P in notebook_runs(name, profile).items()}
        except (ParameterError, ParamsError, SystemExit):
            pass
    return out


def _cmd_summary(args) -> int:
    if args.variant:
        root = outputs_root(args.profile, args.variant, create=False)
        print(f"variant {args.variant} of the {args.profile} profile ({root.relative_to(repo_root())}/):")
        print(summarise(root / "claims", args.profile, store=outputs_dir(args.profile, "runs", create=False)))
        return 0
    print(summarise(outputs_dir(args.profile, "claims", create=False), args.profile, expected_digests(args.profile),
                    store=outputs_dir(args.profile, "runs", create=False)))
    variants = sorted(p.name for p in outputs_dir(args.profile, "variants", create=False).glob("*") if p.is_dir())
    if variants:
        print(f"one-off runs with overrides (not counted above), in outputs/{args.profile}/variants/: "
              + ", ".join(variants))
    return 0


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
        want = [(c.cell_type, c.source.strip()) for c in _read_notebook(py).cells]
        have = [(c.cell_type, c.source.strip()) for c in nbformat.read(ipynb, as_version=4).cells
                if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
        if want != have:
            first = next((i for i, (a, b) in enumerate(zip(want, have)) if a != b), min(len(want), len(have)))
            stale.append(f"{ipynb.name} is stale: its cell {first + 1} differs from {py.name} "
                         f"(run `make notebooks` to re-execute the reference)")
    return stale


def _cmd_stale(args) -> int:
    stale = stale_notebooks()
    for s in stale:
        print(s, file=sys.stderr)
    return 1 if stale else 0


def _cmd_pilot(args) -> int:
    """The quick profile's pilot (:mod:`landscape_core.studies.pilot`): training diagnostics, no verdicts."""
    from ..report.tables import format_table, markdown, write_table
    from ..studies.base import NotebookParams
    from ..studies.base import TrainingParams
    from ..studies.pilot import PILOT_CASES, pilot_rows
    known = [c.name for c in PILOT_CASES]
    unknown = [c for c in args.cases or [] if c not in known]
    if unknown:
        raise SystemExit(f"pilot: unknown case(s) {unknown}; the cases are {known}")
    cases = [c for c in PILOT_CASES if not args.cases or c.name in args.cases]
    base = TrainingParams.from_params({**load_params("02_gradient_dynamics", "quick")["training"],
                                       "precision": "auto", "epochs": 10})
    device = NotebookParams(device=args.device).torch_device()
    out = outputs_dir("quick", "pilot")
    rows = pilot_rows(base, cases, out / "runs", device=device, progress=args.progress)
    formats = {"seconds": ".0f", "lr": "g", "eps": "g"}
    write_table(rows, out / "pilot", decimals=3, formats=formats)
    print(markdown(format_table(rows, 3, formats)))
    print(f"written: {out / 'pilot.md'}")
    return 0


def main(argv=None) -> int:
    from . import commands, lab  # the report, diagnose, runs, dry-run and lab commands (they use this module's loaders)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["lab"] and not {"-h", "--help"} & set(argv[1:2]):
        return lab.main(argv[1:])          # every other argument is JupyterLab's
    parser = argparse.ArgumentParser(prog="python -m landscape_core", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run", help="execute a notebook on a profile into outputs/<profile>/")
    p.add_argument("notebook")
    p.add_argument("--profile", default="quick", choices=PROFILES)
    p.add_argument("--progress", action="store_true")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="override one parameter of the file (repeatable), e.g. --set device=cuda")
    p.add_argument("--task", default=None, help="03, 04, 06: only the zoo of this task of 02 ('': 02's own); "
                   "default: every task, then 02's own")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("reference", help="re-execute the committed reference notebook on its defaults")
    p.add_argument("notebook")
    p.set_defaults(func=_cmd_reference)
    p = sub.add_parser("check-params", help="validate params/<profile>/*.yaml (every profile by default)")
    p.add_argument("--profile", default=None, choices=PROFILES)
    p.set_defaults(func=_cmd_check_params)
    p = sub.add_parser("summary", help="print every claim verdict of a profile")
    p.add_argument("--profile", default="quick", choices=PROFILES)
    p.add_argument("--variant", default="", help="summarise a one-off run with overrides instead")
    p.set_defaults(func=_cmd_summary)
    p = sub.add_parser("pilot", help="the quick profile's training pilot (diagnostics only) into outputs/quick/pilot/")
    p.add_argument("--cases", nargs="+", help="run only these cases")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--progress", action="store_true")
    p.set_defaults(func=_cmd_pilot)
    p = sub.add_parser("report", help="outputs/<profile>/report/index.html: claims, figures, tables, runs, notebooks")
    p.add_argument("--profile", default="quick", choices=PROFILES)
    p.add_argument("--variant", default="", help="report a one-off run with overrides instead")
    p.set_defaults(func=commands.report)
    sub.add_parser("setup", help="the setup table: the sources' settings, each profile's").set_defaults(func=commands.setup)
    p = sub.add_parser("diagnose", help="the study's diagnostics on one model, as an HTML page")
    p.add_argument("--run", help="a run of outputs/<profile>/runs by (part of) its digest")
    p.add_argument("--profile", default="quick", choices=PROFILES, help="the run store of --run, and of the "
                   "study's models measured beside yours (--set compare=0: none)")
    p.add_argument("--model", help="package.module:factory, a callable returning your model (importable here)")
    p.add_argument("--weights", help="... with this weights file (weights_only=True; state_dict / model keys, "
                   "module. prefixes handled)")
    p.add_argument("--normalize", help="... behind (x - mean) / std: a data set's statistics (cifar10) or MEAN,STD "
                   "(per channel: m1/m2/m3,s1/s2/s3); attacks then work on inputs in [0, 1]")
    p.add_argument("--robustbench", metavar="NAME", help="a RobustBench entry (e.g. Wong2020Fast), built by the "
                   "robustbench package (pip install -e '.[robustbench]') from your checkpoint in --model-dir")
    p.add_argument("--threat-model", default="Linf", help="... its threat model (Linf, L2, corruptions)")
    p.add_argument("--model-dir", default="models", help="... RobustBench's folder: <dir>/cifar10/<threat>/<NAME>.pt; "
                   "nothing is downloaded")
    p.add_argument("--surrogate", help="the transfer column's source model: a run of --profile's store by digest, "
                   "or package.module:factory")
    p.add_argument("--surrogate-weights", help="... the factory surrogate's weights file (weights_only=True)")
    p.add_argument("--state-dict", help="a state_dict file (read with weights_only=True) ...")
    p.add_argument("--arch", help="... of this architecture (lenet, vgg16, resnet18)")
    p.add_argument("--width", type=int, help="... and width")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="a diagnostic parameter (repeatable), e.g. --set eps=0.3 --set masking.n_examples=50")
    p.add_argument("--out", help="folder of the page (default outputs/diagnose/<name>)")
    p.set_defaults(func=commands.diagnose)
    p = sub.add_parser("runs", help="train every run a profile's notebooks need, through submitit (make runs)")
    p.add_argument("--profile", default="quick", choices=PROFILES)
    p.add_argument("--executor", default="local", help="slurm, local or debug")
    p.add_argument("--jobs", type=int, default=1, help="jobs at once (local processes, slurm array parallelism)")
    p.add_argument("--partition", default=None)
    p.add_argument("--gpus", type=int, default=0, help="GPUs per job")
    p.add_argument("--cpus", type=int, default=2, help="CPUs per job")
    p.add_argument("--mem-gb", type=float, default=16.0)
    p.add_argument("--time-min", type=int, default=240, help="time limit per job; a job reaching it is requeued")
    p.add_argument("--signal-delay", type=int, default=90,
                   help="slurm: seconds before the time limit that a job checkpoints and requeues")
    p.add_argument("--max-requeues", type=int, default=3, help="slurm: time-outs a job may be requeued after")
    p.add_argument("--device", default="auto", help="torch device in a job: cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=None, help="torch threads per job")
    p.add_argument("--notebooks", nargs="+", help="only the runs of these notebooks")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="as for `run`")
    p.add_argument("--dry-run", action="store_true", help="list what would be submitted, with its cost")
    p.add_argument("--no-wait", action="store_true", help="slurm: return after submitting (06's curves wait for the "
                   "array in Slurm)")
    p.add_argument("--status", action="store_true", help="each run as done / running / queued / failed / not "
                   "submitted, with its job and log (make runs-status)")
    p.set_defaults(func=commands.runs)
    p = sub.add_parser("dry-run", help="every notebook of a profile end to end at tiny sizes (params/<profile>/dry_run.yaml)")
    p.add_argument("--profile", default="paper", choices=PROFILES)
    p.add_argument("--tiny-data", action="store_true",
                   help="read small MNIST / CIFAR10 files written in torchvision's formats, not data/")
    p.add_argument("--keep", help="the scratch project folder (kept; default: a new temporary folder)")
    p.add_argument("--notebooks", nargs="+", help="only these notebooks (default: all, in order)")
    p.set_defaults(func=commands.dry_run)
    sub.add_parser("git-filter", help="configure the nbstripout git filter for the reference notebooks"
                   ).set_defaults(func=lambda args: (install_git_filter(), 0)[1])     # no git tree: nothing to do
    sub.add_parser("stale", help="list reference notebooks out of date with their .py").set_defaults(func=_cmd_stale)
    sub.add_parser("lab", help="JupyterLab on the study (make lab): .py files open as paired notebooks; "
                   "further arguments go to jupyter lab")
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
