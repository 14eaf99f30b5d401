"""The commands of ``python -m landscape_core`` (:mod:`.main` parses the command line): ``run`` and
``reference`` (a notebook through :mod:`.runner`), ``check-params``, ``summary``, ``stale``, ``pilot``,
``report`` (the HTML report), ``setup``, ``diagnose`` (one model's diagnostics), ``runs`` (a profile's training
runs through submitit), ``dry-run`` (a profile's notebooks at tiny sizes) and ``git-filter``.  Each takes
the parsed arguments and returns the exit status."""
from __future__ import annotations

import sys
from pathlib import Path

from ..core.io import PROFILES, outputs_dir, outputs_root, repo_root
from ..core.spec import ParameterError
from ..report.claims import summarise
from ..studies import NOTEBOOKS, NotebookParams
from .params import ParamsError, load_params, notebook_runs, parse_overrides, task_names
from .runner import (execute, expected_digests, install_git_filter, outputs_of, stale_notebooks, strip,
                     variant_name)
from .watch import ProgressWatcher

__all__ = ["run", "reference", "check_params", "summary", "stale", "pilot", "git_filter", "report", "setup",
           "diagnose", "runs", "dry_run"]


def run(args) -> int:
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


def reference(args) -> int:
    py = Path(args.notebook).resolve()
    out = py.with_suffix(".ipynb")
    for scratch in out.parent.glob(f".{py.stem}.*.tmp.ipynb"):      # left by a killed reference run
        scratch.unlink()
    execute(py, out, None, progress=False)
    strip(out)
    print(f"reference {out.relative_to(repo_root())} updated")
    return 0


def check_params(args) -> int:
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


def summary(args) -> int:
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


def stale(args) -> int:
    stale = stale_notebooks()
    for s in stale:
        print(s, file=sys.stderr)
    return 1 if stale else 0


def pilot(args) -> int:
    """The quick profile's pilot (:mod:`landscape_core.studies.pilot`): training diagnostics, no verdicts."""
    from ..report.tables import format_table, markdown, write_table
    from ..studies.base import NotebookParams, TrainingParams
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


def git_filter(args) -> int:
    install_git_filter()          # no git work tree (an unpacked archive): nothing to configure
    return 0


def report(args) -> int:
    """``outputs/<profile>/report/index.html`` from what the notebooks left (:mod:`landscape_core.report.html`)."""
    from ..report.html import build
    try:
        root = outputs_root(args.profile, args.variant, create=False)
    except (ParameterError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not (root / "claims").is_dir():
        print(f"error: nothing to report in {root}: run `make reproduce PROFILE={args.profile}` first", file=sys.stderr)
        return 2
    notebooks = root
    if args.profile == "smoke" and not args.variant and not list(root.glob("[0-9][0-9]_*.ipynb")):
        notebooks = repo_root() / "notebooks"      # the committed references: what nbval executed and compared
    title = f"Liu et al. 2020 reproduced: the {args.profile} profile" + (f", variant {args.variant}" if args.variant else "")
    index = build(root, outputs_dir(args.profile, "runs", create=False), title, notebooks, setup=setup_table())
    print(f"wrote {index}")
    return 0


def profile_params(profile: str) -> dict:
    """Every notebook's validated parameters on ``profile`` (its params files, as the runner reads them), and
    those of each run of 03, 04 and 06 on a task of 02, as ``"<notebook> [<task>]"``."""
    return {label: P for n in NOTEBOOKS for label, P in notebook_runs(n, profile).items()}


def setup_table() -> list[dict]:
    """The setup table (:mod:`landscape_core.report.setup`) over the three profiles."""
    from ..report.setup import setup_rows
    return setup_rows({p: profile_params(p) for p in ("paper", "quick", "smoke")})


def setup(args) -> int:
    """Print the setup table as Markdown (the README's "The paper's setup" section is a copy of it)."""
    from ..report.tables import markdown
    try:
        rows = setup_table()
    except (ParameterError, ParamsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(markdown(rows))
    return 0


def diagnose(args) -> int:
    """The study's diagnostics on one model (:func:`landscape_core.report.diagnosis.diagnose`)."""
    from ..report.diagnosis import checks
    from ..report.diagnosis import diagnose as diagnose_model
    from ..studies.diagnose import DiagnoseParams, load_model, run_model
    from ..studies.base import NotebookParams
    from ..data import dataset_info
    from ..training.store import run_path
    try:
        device = NotebookParams(device=args.device).torch_device()
        given = [a for a in ("run", "state_dict", "model", "robustbench") if getattr(args, a, None) is not None]
        if len(given) != 1:
            raise ParameterError("--run / --state-dict / --model / --robustbench", given or None,
                                 "give exactly one: a run-store digest, a state_dict of our architectures, a factory "
                                 "or a RobustBench entry")
        overrides = parse_overrides(args.set)
        if getattr(args, "model", None) is None and (args.weights or args.normalize):
            raise ParameterError("--weights / --normalize", args.weights or args.normalize, "go with --model")
        if args.run is not None:
            store = outputs_dir(args.profile, "runs", create=False)
            model, spec = run_model(store, args.run, device)
            exclude = run_path(spec, store).name          # itself is not one of the models beside it
            base = {"dataset": spec.data.name, "eps": spec.attack.eps if spec.attack.eps > 0 else 0.1}
            name = f"run-{args.run}"
        elif args.robustbench is not None:
            from ..studies.user_models import robustbench_model
            base = {"dataset": "cifar10", "eps": 8 / 255}
            dataset = DiagnoseParams.from_params({**base, **overrides}, where="diagnose").dataset
            model = robustbench_model(args.robustbench, args.threat_model, dataset, args.model_dir)
            name, exclude = f"robustbench-{args.robustbench}", ""
        elif args.model is not None:
            from ..studies.user_models import factory_model, load_weights, parse_normalization, with_normalization
            dataset = DiagnoseParams.from_params(overrides, where="diagnose").dataset     # bad --set first
            model = factory_model(args.model)
            if args.weights:
                load_weights(model, args.weights)
            if args.normalize:
                model = with_normalization(model, *parse_normalization(args.normalize, dataset_info(dataset).in_shape[0]))
            base, name, exclude = {}, args.model.replace(":", "."), ""
        else:
            if args.arch is None or args.width is None:
                raise ParameterError("--arch / --width", (args.arch, args.width), "are needed with --state-dict")
            model = load_model(args.arch, args.width, args.state_dict, overrides.get("dataset", "mnist5k"))
            base, name, exclude = {}, Path(args.state_dict).stem, ""
        P = DiagnoseParams.from_params({**base, **overrides}, where="diagnose")
        surrogate = None
        if args.surrogate:            # the transfer column: a factory (pkg.mod:fn) or a run of the store
            if ":" in args.surrogate:
                from ..studies.user_models import factory_model, load_weights
                surrogate = factory_model(args.surrogate, what="--surrogate")
                if args.surrogate_weights:
                    load_weights(surrogate, args.surrogate_weights, what="--surrogate-weights")
            else:
                surrogate, _ = run_model(outputs_dir(args.profile, "runs", create=False), args.surrogate, device)
        elif args.surrogate_weights:
            raise ParameterError("--surrogate-weights", args.surrogate_weights, "goes with --surrogate")
    except (ParameterError, ParamsError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)      # rejected before any compute: nothing written
        return 2
    out = Path(args.out) if args.out else repo_root() / "outputs" / "diagnose" / name
    try:
        d, page = diagnose_model(model, P, out, title=f"diagnosis of {name}", device=device,
                                 store=outputs_dir(args.profile, "runs", create=False), exclude=exclude,
                                 surrogate=surrogate)
    except ParameterError as err:          # the model failed its check on one clean batch: nothing written
        print(f"error: {err}", file=sys.stderr)
        return 2
    for c in checks(d):
        print(f"[{c.verdict}] {c.claim}: {c.measured}" + (f" ({c.reason})" if c.reason else ""))
    print(f"wrote {page}")
    return 0


def runs(args) -> int:
    """Every training run of a profile's notebooks, trained ahead through submitit (:mod:`.runs`)."""
    from ..report.tables import format_table, markdown
    from . import runs as jobs
    from .scheduler import Record
    names = args.notebooks or list(NOTEBOOKS)
    try:
        unknown = [n for n in names if n not in NOTEBOOKS]
        if unknown:
            raise ParameterError("--notebooks", unknown, f"each must be one of {list(NOTEBOOKS)}")
        E = jobs.ExecutorSpec(executor=args.executor, jobs=args.jobs, partition=args.partition, gpus=args.gpus,
                              cpus=args.cpus, mem_gb=args.mem_gb, time_min=args.time_min,
                              signal_delay_s=args.signal_delay, max_requeues=args.max_requeues,
                              device=args.device, threads=args.threads, batched=args.batched)
        params = {label: P for n in names      # 03, 04, 06 also on each task of 02 (06: its second seeds)
                  for label, P in notebook_runs(n, args.profile, parse_overrides(args.set, n)).items()}
    except (ParameterError, ParamsError) as err:
        print(f"error: {err}", file=sys.stderr)         # rejected: nothing submitted, nothing written
        return 2
    store = outputs_dir(args.profile, "runs", create=False)
    folder = outputs_dir(args.profile, "jobs", create=False)
    wanted = jobs.collect(params)
    curves = {label: P for label, P in params.items() if label.split(" [")[0] == jobs.CURVES}
    if args.status:
        rows = jobs.status(wanted, curves, store, folder)
        print(markdown(format_table(rows, 3)), end="")
        counts = {}
        for r in rows:
            counts[r["state"]] = counts.get(r["state"], 0) + 1
        print(f"{args.profile}: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
        return 1 if counts.get("failed") else 0
    todo = jobs.missing(wanted, store)
    print(f"{args.profile}: {len(wanted)} training runs for {', '.join(names)}; {len(wanted) - len(todo)} in the "
          f"store, {len(todo)} to train" + (f"; then the Bezier curves of {', '.join(curves)}" if curves else ""))
    if E.batched > 1 and E.executor == "local" and NotebookParams(device=E.device).torch_device().type == "cpu":
        print("note: BATCHED on a CPU: a stack trains slower than its runs one by one (a grouped convolution is "
              "slower here than the members' own; README, \"Training a grid together\"); it is meant for a GPU")
    if args.dry_run:
        if todo:
            rows = jobs.describe(todo, store)
            print(markdown(format_table(rows, 3, {"lr": "g", "eps": "g"})), end="")
            known = [r["est. minutes"] for r in rows if r["est. minutes"] != "?"]
            print(f"total: {sum(r['passes'] for r in rows):,} gradient passes"
                  + (f"; {sum(known):.0f} min for the {len(known)} runs with a timing in the store"
                     f" (on its device)" if known else ""))
        return 0
    store.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    outcomes = jobs.submit(todo, store, E, folder, wait=not args.no_wait) if todo else []
    # the second phase: 06's curves once their end points exist (Slurm without waiting: after the array)
    after = [o.job_id.split("_")[0] for o in outcomes if o.job_id] if args.no_wait and E.executor == "slurm" else []
    items, waiting = jobs.curve_items(curves, store, E, folder, ends_ready=not after)
    if items:
        print(f"second phase: the Bezier curves of {', '.join(it.notebooks[0] for it in items)}")
        second = jobs.submit_items(items, E, folder, wait=not args.no_wait, after=after)
        for o in second:
            if o.result and not o.error:
                Record(folder).set_result(o.key, o.result)
        outcomes += second
    for label, n in waiting.items():
        print(f"{label}: its curves wait for {n} end points that are not in the store (see the failures above); "
              f"`make runs` again trains them, then the curves")
    failed = [o for o in outcomes if o.error]
    for o in failed:
        what = todo[o.key][0].label() if o.key in todo else o.key
        print(f"FAILED {o.key} ({', '.join(o.notebooks)}): {o.error}\n  spec: {what}\n  job: {o.job_id}"
              f"\n  log: {o.log}", file=sys.stderr)
    if args.no_wait:
        print(f"{len(outcomes)} jobs submitted; `make runs-status PROFILE={args.profile}` follows them")
        return 0
    trained = sum(bool(o.trained) for o in outcomes)
    print(f"{len(outcomes)} jobs: {trained} trained, {len(outcomes) - trained - len(failed)} found complete, "
          f"{len(failed)} failed" + (f"; {len(waiting)} curve runs waiting" if waiting else ""))
    return 1 if failed or waiting else 0


def dry_run(args) -> int:
    """Every notebook of a profile end to end at tiny sizes (:mod:`.dryrun`)."""
    from . import dryrun
    return dryrun.main(args)
