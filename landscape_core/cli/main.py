"""``python -m landscape_core``: the command line, parsed here and handed to :mod:`.commands` (``lab``: every
further argument is JupyterLab's, :mod:`.lab`).

    python -m landscape_core run notebooks/01_linear_theory.py --profile quick
    python -m landscape_core reference notebooks/01_linear_theory.py
    python -m landscape_core check-params
    python -m landscape_core summary --profile quick
    python -m landscape_core stale
    python -m landscape_core dry-run --profile paper --tiny-data
"""
from __future__ import annotations

import argparse
import os
import sys

from ..core.io import PROFILES
from . import commands, lab

__all__ = ["main"]


def main(argv=None) -> int:
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["lab"] and not {"-h", "--help"} & set(argv[1:2]):
        return lab.main(argv[1:])          # every other argument is JupyterLab's
    parser = argparse.ArgumentParser(prog="python -m landscape_core", description="the adversarial loss-landscape study: notebooks, runs, reports")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run", help="execute a notebook on a profile into outputs/<profile>/")
    p.add_argument("notebook")
    p.add_argument("--profile", default="quick", choices=PROFILES)
    p.add_argument("--progress", action="store_true")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="override one parameter of the file (repeatable), e.g. --set device=cuda")
    p.add_argument("--task", default=None, help="03, 04, 06: only the zoo of this task of 02 ('': 02's own); "
                   "default: every task, then 02's own")
    p.set_defaults(func=commands.run)
    p = sub.add_parser("reference", help="re-execute the committed reference notebook on its defaults")
    p.add_argument("notebook")
    p.set_defaults(func=commands.reference)
    p = sub.add_parser("check-params", help="validate params/<profile>/*.yaml (every profile by default)")
    p.add_argument("--profile", default=None, choices=PROFILES)
    p.set_defaults(func=commands.check_params)
    p = sub.add_parser("summary", help="print every claim verdict of a profile")
    p.add_argument("--profile", default="quick", choices=PROFILES)
    p.add_argument("--variant", default="", help="summarise a one-off run with overrides instead")
    p.set_defaults(func=commands.summary)
    p = sub.add_parser("pilot", help="the quick profile's training pilot (diagnostics only) into outputs/quick/pilot/")
    p.add_argument("--cases", nargs="+", help="run only these cases")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--progress", action="store_true")
    p.set_defaults(func=commands.pilot)
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
    p.add_argument("--batched", type=int, default=1, metavar="N", help="train up to N compatible runs together "
                   "as one stacked model per job (1: one run per job)")
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
                   ).set_defaults(func=commands.git_filter)
    sub.add_parser("stale", help="list reference notebooks out of date with their .py").set_defaults(func=commands.stale)
    sub.add_parser("lab", help="JupyterLab on the study (make lab): .py files open as paired notebooks; "
                   "further arguments go to jupyter lab")
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
