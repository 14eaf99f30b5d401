"""``python -m landscape_core runs`` (``make runs``): every training run of a profile, trained ahead through submitit.

The notebooks train what they need through the run store when they run; on a cluster that is one
notebook, one GPU, one run at a time.  This command collects, from each notebook's validated
parameters (``training_specs()``), every training run the profile's notebooks will ask for, drops the
ones the store has, and submits the rest as jobs of ``submitit`` (the standard for Slurm in ML):

* ``--executor slurm``: one job array (partition, GPUs, CPUs, memory, time limit and how many jobs run at
  once are :class:`ExecutorSpec` settings), submitted and, unless ``--no-wait``, watched to the end;
* ``--executor local``: one process per job on this machine, ``--jobs`` at a time;
* ``--executor debug``: in this process, one after the other (tests, debugging).

Every job trains one spec into the shared run store (``get_or_train``: a store file lock makes two jobs
of one spec train it once; an interrupted run resumes from its last epoch).  A job that reaches its
time limit or is preempted is requeued by submitit (:class:`TrainJob` is ``Checkpointable``) and resumes
from its last epoch; a job that fails is reported with its spec and log, and the others go on.  Then
``make reproduce`` finds every run in the store and only analyses (06's curves, which depend on which
end points trained, still train in their notebook).  ``--dry-run`` lists what would be submitted with
its cost, in gradient passes and, where the store holds finished runs of the same model and data on
the same device, in estimated time.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.io import outputs_dir
from ..core.spec import ParameterError, Spec, param
from ..training import TrainSpec, get_or_train, is_complete, load_result, run_key

__all__ = ["EXECUTORS", "ExecutorSpec", "collect", "cost", "TrainJob", "submit", "JobOutcome", "failure_cause"]

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
    device: str = param("auto", choices=("cpu", "cuda", "auto"), doc="torch device inside a job")
    threads: int | None = param(None, ge=1, doc="torch threads per job (null: torch's default)")

    def validate(self) -> None:
        if self.executor != "slurm" and self.partition is not None:
            raise ParameterError("partition", self.partition, "applies to executor slurm only")


def collect(params: dict[str, object]) -> dict[str, tuple[TrainSpec, list[str]]]:
    """``{run key: (spec, [notebooks that need it])}`` from each notebook's validated parameters
    (``{notebook: NotebookParams}``), in the order the notebooks ask for them."""
    out: dict[str, tuple[TrainSpec, list[str]]] = {}
    for name, P in params.items():
        for spec in P.training_specs():
            key = run_key(spec)
            if key in out:
                if name not in out[key][1]:
                    out[key][1].append(name)
            else:
                out[key] = (spec, [name])
    return out


def passes(spec: TrainSpec) -> int:
    """Gradient passes of a run: updates x (attack steps + 1) (TRADES: its KL steps + 2)."""
    from ..data import dataset_info
    n = spec.data.n_train or dataset_info(spec.data.name).n_train
    updates = spec.epochs * -(-n // spec.batch_size)
    steps = 0 if spec.attack.name == "none" else spec.attack.steps
    return updates * (steps + (2 if spec.objective == "trades" else 1))


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


class TrainJob:
    """One job: train (or load, or resume) ``spec`` into ``store``.  submitit calls :meth:`checkpoint` at a
    time limit or preemption and requeues the job, which resumes from the run's last epoch."""

    def __call__(self, spec: dict, store: str, device: str = "auto", threads: int | None = None) -> tuple[str, bool]:
        import torch
        from ..studies.base import NotebookParams
        if threads:
            torch.set_num_threads(threads)
        run = get_or_train(TrainSpec.from_params(spec), Path(store), device=NotebookParams(device=device).torch_device())
        return run.path.name, run.trained

    def checkpoint(self, *args, **kwargs):
        import submitit
        return submitit.helpers.DelayedSubmission(TrainJob(), *args, **kwargs)


@dataclass
class JobOutcome:
    key: str
    notebooks: list[str]
    trained: bool | None = None
    error: str = ""
    log: str = ""


def _executor(E: ExecutorSpec, folder: Path):
    import submitit
    ex = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=E.executor)
    kw = dict(timeout_min=int(E.time_min), gpus_per_node=E.gpus, cpus_per_task=E.cpus, mem_gb=E.mem_gb,
              name="landscape-run")
    if E.executor == "slurm":
        kw.update(slurm_array_parallelism=E.jobs, **({"slurm_partition": E.partition} if E.partition else {}))
    ex.update_parameters(**kw)
    return ex


def submit(todo: dict[str, tuple[TrainSpec, list[str]]], store: Path, E: ExecutorSpec, folder: Path, *,
           wait: bool = True, poll_s: float = 2.0, log=print) -> list[JobOutcome]:
    """Submit every run of ``todo`` (see :func:`collect`) and, with ``wait``, return how each ended."""
    folder.mkdir(parents=True, exist_ok=True)
    ex = _executor(E, folder)
    args = [(spec.to_dict(), str(store), E.device, E.threads) for spec, _ in todo.values()]
    keys = list(todo)
    jobs: dict[str, object] = {}
    if E.executor == "slurm":
        with ex.batch():
            for key, a in zip(keys, args):
                jobs[key] = ex.submit(TrainJob(), *a)
        log(f"submitted {len(jobs)} jobs as one array (at most {E.jobs} at once), logs in {folder}")
        if not wait:
            return [JobOutcome(k, todo[k][1], None, "", str(j.paths.stdout)) for k, j in jobs.items()]
    else:   # local: no concurrency limit in submitit, so keep E.jobs running; debug: one after the other
        pending = list(zip(keys, args))
        running: dict[str, object] = {}
        while pending or running:
            while pending and len(running) < E.jobs:
                key, a = pending.pop(0)
                running[key] = jobs[key] = ex.submit(TrainJob(), *a)
                log(f"[{len(jobs)}/{len(keys)}] {key} ({', '.join(todo[key][1])}) submitted")
            done = [k for k, j in running.items() if j.done()]
            for k in done:
                del running[k]
            if running and not done:
                time.sleep(poll_s)
    out = []
    for key, job in jobs.items():
        o = JobOutcome(key, todo[key][1], log=str(getattr(job.paths, "stderr", "")))
        try:
            _, o.trained = job.result()
        except Exception as err:        # submitit's FailedJobError carries the job's traceback
            o.error = failure_cause(err, getattr(job.paths, "stderr", None))
        out.append(o)
    return out


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


def missing(todo: dict[str, tuple[TrainSpec, list[str]]], store: Path) -> dict[str, tuple[TrainSpec, list[str]]]:
    return {k: v for k, v in todo.items() if not is_complete(v[0], store)}


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


def store_of(profile: str) -> Path:
    return outputs_dir(profile, "runs", create=False)

