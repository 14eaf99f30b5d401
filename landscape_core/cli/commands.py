"""The commands of ``python -m landscape_core`` beyond running notebooks: ``report`` (the HTML report),
``diagnose`` (one model's diagnostics), ``runs`` (a profile's training runs through submitit) and ``dry-run``
(a profile's notebooks at tiny sizes)."""
from __future__ import annotations

import sys
from pathlib import Path

from ..core.io import outputs_dir, outputs_root, repo_root
from ..core.spec import ParameterError
from ..studies import NOTEBOOKS
from .params import ParamsError, notebook_runs, parse_overrides

__all__ = ["report", "diagnose", "runs", "dry_run"]


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
    for c in d.checks():
        print(f"[{c['verdict']}] {c['claim']}: {c['measured']}")
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
                              device=args.device, threads=args.threads)
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
