"""What runs inside a job of ``make runs`` (:mod:`.runs` submits them through submitit): one training run
(:class:`TrainJob`), a stack of compatible runs trained together (:class:`GroupJob`), or 06's Bezier curves
of one notebook run (:class:`CurveJob`).  Each is requeued at a time limit or preemption and resumes from
its last epoch."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..core.io import load_checkpoint, load_json
from ..training import (STACK_FILE, TrainSpec, get_or_train, get_or_train_group, run_key, run_path,
                        stack_checkpoint)

__all__ = ["TrainJob", "GroupJob", "CurveJob", "checkpoint_epoch"]


def checkpoint_epoch(spec: TrainSpec, store: Path) -> str:
    """``epoch k/N`` of a run's last checkpoint in the store: its own ``last.pt``, else its stack's (``epoch
    k/N in a stack of M``); "" when it has none."""
    folder = run_path(spec, store)
    last, stack = folder / "last.pt", ""
    if not last.exists():
        try:
            last = stack_checkpoint(folder)
        except Exception:      # a damaged pointer: as if none (training rewrites it)
            last = None
        if last is None or not last.exists():
            return ""
        stack = f" in a stack of {len(load_json(folder / STACK_FILE)['members'])}"
    try:
        return f"epoch {_epoch(str(last), last.stat().st_mtime_ns)}/{spec.epochs}{stack}"
    except Exception:          # written right now, or damaged: training will say
        return "a checkpoint (unreadable now)"


@lru_cache(maxsize=64)
def _epoch(path: str, mtime_ns: int) -> int:
    """The epoch count of a checkpoint (read once per version of the file: a stack's is every member's)."""
    return int(load_checkpoint(path)["epoch"])


def _job_device(device: str, threads: int | None):
    """Inside a job: torch's thread count set, and the torch device of ``device`` (cpu, cuda or auto)."""
    import torch
    from ..studies.base import NotebookParams
    if threads:
        torch.set_num_threads(threads)
    return NotebookParams(device=device).torch_device()


class TrainJob:
    """One job: train (or load, or resume) ``spec`` into ``store``.  submitit calls :meth:`checkpoint` at a
    time limit or preemption and requeues the job, which resumes from the run's last epoch."""

    def __call__(self, spec: dict, store: str, device: str = "auto", threads: int | None = None) -> tuple[str, bool]:
        device = _job_device(device, threads)
        spec = TrainSpec.from_params(spec)
        at = checkpoint_epoch(spec, Path(store))       # the job's log says where a requeued job resumed
        print(f"{run_key(spec)} {spec.label()}: " + (f"resuming at {at}" if at else "starting"), flush=True)
        run = get_or_train(spec, Path(store), device=device)
        print(f"{run.path.name}: " + ("trained" if run.trained else "found complete in the store"), flush=True)
        return run.path.name, run.trained

    def checkpoint(self, *args, **kwargs):
        import submitit
        return submitit.helpers.DelayedSubmission(type(self)(), *args, **kwargs)


class GroupJob(TrainJob):
    """One job: the compatible ``specs`` (:func:`~landscape_core.training.compatible`) trained together as one
    stacked model (members already in the store are loaded).  Requeued like :class:`TrainJob`; the stack
    resumes from its last epoch."""

    def __call__(self, specs: list[dict], store: str, device: str = "auto", threads: int | None = None
                 ) -> tuple[str, bool]:
        device = _job_device(device, threads)
        specs = [TrainSpec.from_params(s) for s in specs]
        print(f"a stack of {len(specs)}: " + ", ".join(f"{run_key(s)} {s.label()}" for s in specs), flush=True)
        runs = get_or_train_group(specs, Path(store), device=device)
        print(" ".join(r.path.name for r in runs) + (": trained" if any(r.trained for r in runs) else
                                                     ": found complete in the store"), flush=True)
        return " ".join(r.path.name for r in runs), any(r.trained for r in runs)


class CurveJob(TrainJob):
    """The second phase: 06's Bezier curves of one notebook run (``P``: its validated
    ``ConnectivityParams``), trained into ``store`` once their end points are there
    (:func:`landscape_core.studies.connectivity.train_curves`; a missing end point is trained first).
    Requeued like :class:`TrainJob`; a curve resumes from its ``last.pt``."""

    def __call__(self, P, store: str, device: str = "auto", threads: int | None = None) -> tuple[str, bool]:
        from ..studies.connectivity import train_curves
        from ..studies.base import zoo_data
        curves = train_curves(P, Path(store), device=_job_device(device, threads), data=zoo_data(P.zoo))
        return " ".join(key for key, _ in curves.values()), any(trained for _, trained in curves.values())
