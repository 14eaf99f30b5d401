"""``python -m landscape_core runs`` (``make runs``): every training run of a profile, trained ahead through submitit.

The notebooks train what they need through the run store when they run; on a cluster that is one
notebook, one GPU, one run at a time.  This command collects, from each notebook's validated
parameters (``training_specs()``), every training run the profile's notebooks will ask for, drops the
ones the store has, and submits the rest as jobs of ``submitit`` (the standard for Slurm in ML):

* ``--executor slurm``: one job array (partition, GPUs, CPUs, memory, time limit, signal delay and how
  many jobs run at once are :class:`ExecutorSpec` settings), submitted and, unless ``--no-wait``,
  followed to the end through ``squeue`` (:mod:`.scheduler`; never ``sacct``);
* ``--executor local``: one process per job on this machine, ``--jobs`` at a time;
* ``--executor debug``: in this process, one after the other (tests, debugging).

Every job trains one spec into the shared run store (``get_or_train``: a store file lock makes two jobs
of one spec train it once; an interrupted run resumes from its last epoch).  A job that reaches its
time limit or is preempted is requeued by submitit (:class:`TrainJob` is ``Checkpointable``) and resumes
from its last epoch; a job that fails is reported with its spec, cause, job id and log, and the others
go on.  A second phase trains 06's Bezier curves (:class:`CurveJob`, one job per run of 06) once their
end points are in the store.  Each job submitted is recorded (:class:`~.scheduler.Record`), and
:func:`status` (``make runs-status``) tells each run's state from the store, the record and the
scheduler.  Then ``make reproduce`` finds every run and curve in the store and only analyses.
``--dry-run`` lists what would be submitted with its cost, in gradient passes and, where the store
holds finished runs of the same model and data on the same device, in estimated time.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.spec import ParameterError, Spec, param
from ..training import TrainSpec, compatible, is_complete, load_result, run_key
from .jobs import CurveJob, GroupJob, TrainJob, checkpoint_epoch
from .params import collect, passes
from .scheduler import Record, job_state, slurm_states

__all__ = ["EXECUTORS", "ExecutorSpec", "collect", "cost", "Item", "submit", "submit_items",
           "JobOutcome", "failure_cause", "curve_items", "status"]

EXECUTORS = ("local", "slurm", "debug")


@dataclass(frozen=True)
class ExecutorSpec(Spec):
    """Where and how the jobs run."""

    executor: str = param("local", choices=EXECUTORS, doc="slurm (job array), local (processes) or debug")
    jobs: int = param(1, ge=1, doc="jobs running at once (local processes; slurm array parallelism)")
    partition: str | None = param(None, doc="Slurm partition (null: the cluster's default)")
    gpus: int = param(0, ge=0, doc="GPUs per job")
    cpus: int = param(2, ge=1, doc="CPUs per job")
    mem_gb: float = param(16.0, gt=0.0, doc="memory per job (GB)")
    time_min: int = param(240, ge=1, doc="time limit of one job (minutes); a job that reaches it is requeued")
    max_requeues: int = param(3, ge=0, doc="Slurm: time-outs a job may be requeued after (preemptions do not "
                              "count; each requeue resumes from the run's last epoch)")
    signal_delay_s: int = param(90, ge=1, doc="Slurm: seconds before the time limit that a job is told to "
                                "checkpoint and requeue (USR2; Slurm sends it up to 30 s earlier)")
    device: str = param("auto", choices=("cpu", "cuda", "auto"), doc="torch device inside a job")
    threads: int | None = param(None, ge=1, doc="torch threads per job (null: torch's default)")
    batched: int = param(1, ge=1, added=True, doc="at most this many compatible runs trained together as one "
                         "stacked model per job (training.batched; 1: one run per job)")

    def validate(self) -> None:
        if self.executor != "slurm" and self.partition is not None:
            raise ParameterError("partition", self.partition, "applies to executor slurm only")
        if self.executor == "slurm" and self.time_min * 60 - self.signal_delay_s < 45:
            # Slurm signals when the time left is <= signal_delay_s + 30 s, checked every 30 s: a requeued job
            # would be signalled as it starts, before Python runs, and die (exit 140, FAILED)
            raise ParameterError("time_min", self.time_min, f"must leave at least 45 s beyond signal_delay_s "
                                 f"({self.signal_delay_s} s): at least {-(-(self.signal_delay_s + 45) // 60)} min")


def cost(spec: TrainSpec, store: Path) -> tuple[int, float | None]:
    """(gradient passes, estimated seconds): seconds from the finished runs of the store with the same
    data set, architecture, width, precision and batch size (seconds per pass, their median)."""
    rates = []
    for result in Path(store).glob("*/result.json"):
        try:
            r = load_result(result.parent)
            other = TrainSpec.from_params(r["spec"])
        except Exception:          # a damaged or foreign result says nothing about cost
            continue
        same = (other.data.name, other.model, other.precision, other.batch_size)
        if same == (spec.data.name, spec.model, spec.precision, spec.batch_size) and r.get("seconds"):
            rates.append(r["seconds"] / max(passes(other), 1))
    n = passes(spec)
    if not rates:
        return n, None
    rates.sort()
    return n, n * rates[len(rates) // 2]


@dataclass
class JobOutcome:
    key: str
    notebooks: list[str]
    trained: bool | None = None
    error: str = ""
    log: str = ""
    job_id: str = ""
    result: str = ""


@dataclass
class Item:
    """One job to submit: ``fn(*args)`` under ``key`` (a run key, or ``curves <label>``), for ``notebooks``."""

    key: str
    fn: object
    args: tuple
    notebooks: list[str]
    kind: str = "run"
    members: tuple[str, ...] = ()     # a stack's run keys (the job is recorded under each)

    def runs(self) -> tuple[str, ...]:
        return self.members or (self.key,)


def _executor(E: ExecutorSpec, folder: Path, after: list[str] = ()):
    import submitit
    extra = {"slurm_max_num_timeout": E.max_requeues} if E.executor == "slurm" else {}
    ex = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=E.executor, **extra)
    kw = dict(timeout_min=int(E.time_min), gpus_per_node=E.gpus, cpus_per_task=E.cpus, mem_gb=E.mem_gb,
              name="landscape-run")
    if E.executor == "slurm":
        kw.update(slurm_array_parallelism=E.jobs, slurm_signal_delay_s=E.signal_delay_s,
                  **({"slurm_partition": E.partition} if E.partition else {}))
        if after:       # the second phase starts when the first has ended, however it ended
            kw["slurm_additional_parameters"] = {"dependency": "afterany:" + ":".join(sorted(set(after)))}
    ex.update_parameters(**kw)
    return ex


def train_items(todo: dict[str, tuple[TrainSpec, list[str]]], store: Path, E: ExecutorSpec) -> list[Item]:
    """One job per run, or (``E.batched`` > 1) per stack of up to ``E.batched`` compatible runs."""
    if E.batched == 1:
        return [Item(key, TrainJob(), (spec.to_dict(), str(store), E.device, E.threads), names)
                for key, (spec, names) in todo.items()]
    keys = {run_key(spec): key for key, (spec, _) in todo.items()}
    items = []
    for group in compatible(spec for spec, _ in todo.values()):
        for i in range(0, len(group), E.batched):
            part = group[i:i + E.batched]
            members = tuple(keys[run_key(s)] for s in part)
            names = list(dict.fromkeys(n for k in members for n in todo[k][1]))
            fn = TrainJob() if len(part) == 1 else GroupJob()
            arg = part[0].to_dict() if len(part) == 1 else [s.to_dict() for s in part]
            items.append(Item(members[0] if len(part) == 1 else f"stack of {len(part)} {members[0]}", fn,
                              (arg, str(store), E.device, E.threads), names, members=members))
    return items


def submit(todo: dict[str, tuple[TrainSpec, list[str]]], store: Path, E: ExecutorSpec, folder: Path, *,
           wait: bool = True, poll_s: float = 2.0, log=print) -> list[JobOutcome]:
    """Submit every run of ``todo`` (see :func:`collect`) and, with ``wait``, return how each ended."""
    return submit_items(train_items(todo, store, E), E, folder, wait=wait, poll_s=poll_s, log=log)


def submit_items(items: list[Item], E: ExecutorSpec, folder: Path, *, wait: bool = True, poll_s: float = 2.0,
                 log=print, after: list[str] = ()) -> list[JobOutcome]:
    """Submit ``items`` (one Slurm array; local: ``E.jobs`` processes at a time; debug: in this process),
    record each job in the folder's :class:`~.scheduler.Record` and, with ``wait``, return how each ended.
    ``after``: Slurm job ids the array waits for (``afterany``)."""
    folder.mkdir(parents=True, exist_ok=True)
    ex = _executor(E, folder, after)
    by_key = {it.key: it for it in items}
    jobs: dict[str, object] = {}
    record = Record(folder)
    if E.executor == "slurm":
        with ex.batch():
            for it in items:
                jobs[it.key] = ex.submit(it.fn, *it.args)
        record.add({r: _entry(E, j, by_key[k]) for k, j in jobs.items() for r in by_key[k].runs()})
        ids = sorted({str(j.job_id).split("_")[0] for j in jobs.values()})
        log(f"submitted {len(jobs)} jobs as Slurm array {', '.join(ids)} (at most {E.jobs} at once)"
            + (f", after job {', '.join(after)}" if after else "") + f"; logs in {folder}")
        if not wait:
            return [JobOutcome(k, by_key[k].notebooks, None, "", str(j.paths.stderr), str(j.job_id))
                    for k, j in jobs.items()]
        ended = _wait_slurm(jobs, poll_s, log)
    else:   # local: no concurrency limit in submitit, so keep E.jobs running; debug: one after the other
        pending = list(items)
        running: dict[str, object] = {}
        while pending or running:
            while pending and len(running) < E.jobs:
                it = pending.pop(0)
                running[it.key] = jobs[it.key] = ex.submit(it.fn, *it.args)
                if E.executor == "local":
                    record.add({r: _entry(E, jobs[it.key], it) for r in it.runs()})
                log(f"[{len(jobs)}/{len(items)}] {it.key} ({', '.join(it.notebooks)}) submitted")
            done = [k for k, j in running.items() if j.done()]
            for k in done:
                del running[k]
            if running and not done:
                time.sleep(poll_s)
    out = []
    for key, job in jobs.items():
        o = JobOutcome(key, by_key[key].notebooks, log=str(getattr(job.paths, "stderr", "")),
                       job_id=str(getattr(job, "job_id", "")))
        if E.executor == "slurm" and not job.paths.result_pickle.exists():
            # submitit's job.result() would wait on sacct's state: build the cause here
            o.error = died(job.job_id, ended.get(key, "?"), job.paths.stderr)
            out.append(o)
            continue
        try:
            o.result, o.trained = job.result()
        except Exception as err:        # submitit's FailedJobError carries the job's traceback
            o.error = failure_cause(err, getattr(job.paths, "stderr", None))
        out.append(o)
    return out


def _entry(E: ExecutorSpec, job, it: Item) -> dict:
    return {"executor": E.executor, "job_id": str(job.job_id), "stdout": str(job.paths.stdout),
            "stderr": str(job.paths.stderr), "for": it.notebooks, "kind": it.kind}


def _wait_slurm(jobs: dict[str, object], poll_s: float, log) -> dict[str, str]:
    """Until every job has written its result or ended, from ``squeue`` (not ``sacct``, which needs the
    accounting database); a line each time the counts change.  A job requeued after a time limit or a
    preemption is queued again under its id, and waited for.  Returns the final Slurm state of each job
    that ended without a result."""
    open_ = dict(jobs)
    last = None
    gone: set[str] = set()
    ended: dict[str, str] = {}
    while open_:
        states = slurm_states([str(j.job_id) for j in open_.values()])
        counts = {"running": 0, "queued": 0}
        for key, job in list(open_.items()):
            if job.paths.result_pickle.exists():
                del open_[key]
                continue
            what, state = job_state("slurm", str(job.job_id), states)
            if what == "ended":
                ended[key] = state
                # ended without a result: look once more (the result may land just after the state)
                if key in gone:
                    del open_[key]
                    log(f"job {job.job_id} ({key}) ended without a result: {state}")
                gone.add(key)
                continue
            gone.discard(key)
            counts[what] += 1
        line = f"{len(jobs) - len(open_)}/{len(jobs)} ended, {counts['running']} running, {counts['queued']} queued"
        if line != last:
            log(line)
            last = line
        if open_:
            time.sleep(poll_s)
    return ended


# submitit's own log lines in a job's stderr: not the cause of a failure
_SUBMITIT_LINE = re.compile(r"^(submitit (INFO|WARNING|DEBUG)|-{10,}|Error stream produced:)")


def failure_cause(err: BaseException, stderr: Path | str | None = None, tail: int = 6) -> str:
    """Why a job failed, in a few lines: the exception of a job that raised (the last line of its
    traceback); for a job that died without a result (killed, out of memory, a signal) submitit's
    "has not produced any output (state: ...)" and the last lines of the job's own stderr, not
    submitit's "Loading pickle" log line."""
    text = str(err).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    if "has not produced any output" not in text:
        if "with trace:" in text:      # submitit's FailedJobError: the traceback between two dashed lines
            trace = text.split("with trace:", 1)[1]
            parts = [p for p in re.split(r"^-{10,}$", trace, flags=re.M) if p.strip()]
            if parts:
                return [line for line in parts[0].splitlines() if line.strip()][-1].strip()
        return lines[-1]
    state = next((line.strip() for line in lines if "has not produced any output" in line), lines[0])
    why = [f"the job died without a result: {state}"]
    own = []
    if stderr is not None and Path(stderr).exists():
        own = Path(stderr).read_text(errors="replace").splitlines()
    else:
        own = lines[1:]
    own = [line for line in own if line.strip() and not _SUBMITIT_LINE.match(line.strip())
           and "has not produced any output" not in line and not line.startswith("Job ")]
    if own:
        why.append("last lines of its stderr:\n    " + "\n    ".join(own[-tail:]))
    else:
        why.append("its stderr holds only submitit's log: it was killed from outside (a signal, the OOM "
                   "killer, a time limit) before Python could report")
    return "\n  ".join(why)


def died(job_id: str, state: str, stderr: Path | str | None) -> str:
    """:func:`failure_cause` of a job that ended without a result, from the scheduler's final state."""
    return failure_cause(RuntimeError(f"Job {job_id} has not produced any output (state: {state})"), stderr)


def missing(todo: dict[str, tuple[TrainSpec, list[str]]], store: Path) -> dict[str, tuple[TrainSpec, list[str]]]:
    return {k: v for k, v in todo.items() if not is_complete(v[0], store)}


CURVES = "06_connectivity"


def curve_items(params: dict[str, object], store: Path, E: ExecutorSpec, folder: Path, *,
                ends_ready: bool = True) -> tuple[list[Item], dict[str, int]]:
    """The second phase: one :class:`CurveJob` per run of 06 (``06_connectivity`` and each of its tasks)
    whose curves are not known to be trained, and, with ``ends_ready``, whose end points (02's zoo and
    the second seeds) are all in the store.  Returns the items and ``{label: end points missing}`` of
    the runs left waiting."""
    record = Record(folder).read()
    items, waiting = [], {}
    for label, P in params.items():
        if label.split(" [")[0] != CURVES:
            continue
        key = f"curves {label}"
        if _curves_done(record.get(key), store):
            continue
        missing_ends = sum(not is_complete(s, store) for s in P.training_specs())
        if ends_ready and missing_ends:
            waiting[label] = missing_ends
            continue
        items.append(Item(key, CurveJob(), (P, str(store), E.device, E.threads), [label], kind="curves"))
    return items, waiting


def _job_result(entry: dict | None):
    """``("success", value)`` or ``("error", traceback)`` from a recorded job's submitit result file, or None."""
    if not entry or not entry.get("stdout", "").endswith("_log.out"):
        return None
    path = Path(entry["stdout"][: -len("_log.out")] + "_result.pkl")
    if not path.exists():
        return None
    import pickle
    try:
        with path.open("rb") as fh:
            return pickle.load(fh)
    except Exception:           # a result being written, or damaged: as if absent
        return None


def _curves_done(entry: dict | None, store: Path) -> bool:
    keys = (entry or {}).get("result")
    if keys is None:
        res = _job_result(entry)
        keys = res[1][0] if res and res[0] == "success" else None
    return bool(keys) and all((Path(store) / k / "result.json").exists() for k in keys.split())


def _cause(entry: dict, state: str) -> str:
    res = _job_result(entry)
    if res and res[0] == "error":
        return failure_cause(RuntimeError(str(res[1])))
    return died(entry["job_id"], state, entry.get("stderr"))


def status(wanted: dict[str, tuple[TrainSpec, list[str]]], curves: dict[str, object], store: Path,
           folder: Path) -> list[dict]:
    """Each run of a profile (and each run of 06's curves) as done / running / queued / failed / not
    submitted, with its job id, what the scheduler or the store says, and its log: from the run store,
    the job record and the scheduler (``squeue``; a local job: its process), never ``sacct``."""
    record = Record(folder).read()
    slurm_ids = [e["job_id"] for e in record.values() if e.get("executor") == "slurm"]
    squeue = slurm_states(slurm_ids) if slurm_ids else {}
    rows = []

    def row(key, names, entry, done, progress=""):
        job, log = (entry or {}).get("job_id", ""), (entry or {}).get("stderr", "")
        if done:
            return {"run": key, "state": "done", "job": job, "detail": "", "for": ", ".join(names), "log": log}
        if not entry:
            return {"run": key, "state": "not submitted", "job": "", "for": ", ".join(names), "log": "",
                    "detail": f"stopped at {progress}" if progress else ""}
        what, state = job_state(entry["executor"], entry["job_id"], squeue)
        if what == "ended":
            what, detail = "failed", _cause(entry, state)
        else:
            detail = ", ".join(x for x in (state, progress) if x)
        return {"run": key, "state": what, "job": job, "detail": detail, "for": ", ".join(names), "log": log}

    for key, (spec, names) in wanted.items():
        done = is_complete(spec, store)
        rows.append(row(key, names, record.get(key), done, "" if done else checkpoint_epoch(spec, store)))
    for label in curves:
        key = f"curves {label}"
        rows.append(row(key, [label], record.get(key), _curves_done(record.get(key), store)))
    return rows


def describe(todo: dict[str, tuple[TrainSpec, list[str]]], store: Path) -> list[dict]:
    """Rows of a dry run: each run to submit, who needs it, its gradient passes and estimated time."""
    rows = []
    for key, (spec, names) in todo.items():
        n, seconds = cost(spec, store)
        rows.append({"run": key, "model": f"{spec.model.arch}-{spec.model.width}", "data": spec.data.name,
                     "eps": spec.attack.eps, "schedule": spec.eps_schedule, "objective": spec.objective,
                     "lr": spec.lr, "resets": ", ".join(f"{r:g}" for r in spec.periodic) or "-", "seed": spec.seed,
                     "epochs": spec.epochs, "passes": n,
                     "est. minutes": "?" if seconds is None else round(seconds / 60, 1), "for": ", ".join(names)})
    return rows
