"""What the scheduler says about submitted jobs, without ``sacct``, and the record of what was submitted.

``sacct`` needs Slurm's accounting database, which many clusters (and every single-node test Slurm)
do not run; submitit's own job states come from it and stay ``UNKNOWN`` without it, so a job that dies
without writing its result would be waited for forever.  Here a job's state is read from ``squeue``
(``--states=all`` keeps finished jobs for Slurm's ``MinJobAge``, 300 s by default), and a job that
``squeue`` no longer knows has ended.  A local job's state is whether its process is alive.

:class:`Record` is ``outputs/<profile>/jobs/submitted.json``: for each run key (and each second-phase
job, see :mod:`.runs`), the last job submitted for it: executor, job id, log paths, when, for whom.
``make runs-status`` reads it together with the run store and the scheduler.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from ..core.io import DamagedFile, load_json, save_json

__all__ = ["ACTIVE", "QUEUED", "ENDED", "slurm_states", "local_alive", "job_state", "Record"]

# Slurm's job states (squeue --states=all), as the three that matter here
RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING"}
QUEUED = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "SUSPENDED", "RESV_DEL_HOLD", "SPECIAL_EXIT"}
ACTIVE = RUNNING | QUEUED
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "OUT_OF_MEMORY",
         "BOOT_FAIL", "DEADLINE", "REVOKED"}


def slurm_states(job_ids: list[str], timeout: float = 60) -> dict[str, tuple[str, str]]:
    """``{job id: (state, reason)}`` from ``squeue`` for the jobs it still knows (array tasks one by
    one, as ``<array id>_<task>``).  A job id missing from the answer has left Slurm's memory: it ended."""
    if not job_ids:
        return {}
    if not shutil.which("squeue"):
        raise RuntimeError("squeue is not on PATH: the Slurm client commands are needed to follow Slurm jobs")
    arrays = sorted({str(j).split("_")[0] for j in job_ids})
    out = subprocess.run(["squeue", "--noheader", "--array", "--states=all", "--jobs", ",".join(arrays),
                          "--format=%i|%T|%r"], capture_output=True, text=True, timeout=timeout)
    if out.returncode and "Invalid job id" in out.stderr and len(arrays) > 1:
        # one id of the list has been purged: ask for each (the others are still known)
        merged: dict[str, tuple[str, str]] = {}
        for a in arrays:
            merged.update(slurm_states([j for j in job_ids if str(j).split("_")[0] == a], timeout))
        return merged
    if out.returncode and "Invalid job id" not in out.stderr:
        raise RuntimeError(f"squeue failed ({out.returncode}): {out.stderr.strip()}")
    states = {}
    for line in out.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = (parts[1].split()[0], parts[2])
    return states


def local_alive(pid: str | int) -> bool:
    """A local job's process is alive (not a zombie)."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError):
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def job_state(executor: str, job_id: str, slurm: dict[str, tuple[str, str]] | None = None) -> tuple[str, str]:
    """(one of running / queued / ended, Slurm's state and reason or ""), from the scheduler alone."""
    if executor == "slurm":
        state, reason = (slurm or {}).get(str(job_id), ("", ""))
        if state in RUNNING:
            return "running", state
        if state in QUEUED:
            return "queued", f"{state} ({reason})" if reason and reason != "None" else state
        return "ended", state or "gone from squeue"
    if executor == "local":
        return ("running", "process alive") if local_alive(job_id) else ("ended", "process gone")
    return "ended", ""


class Record:
    """``submitted.json`` of a jobs folder: ``{key: {"executor", "job_id", "stdout", "stderr", "submitted",
    "for", "kind"[, "result"]}}``, merged on every submission (the last job of a key wins)."""

    NAME = "submitted.json"

    def __init__(self, folder: Path):
        self.path = Path(folder) / self.NAME

    def read(self) -> dict[str, dict]:
        if not self.path.exists():
            return {}
        try:
            data = load_json(self.path)
        except DamagedFile as err:       # named, and the record starts again: the store is the truth
            print(f"warning: {err}; the job record starts empty (runs in the store are unaffected)")
            return {}
        return data if isinstance(data, dict) else {}

    def add(self, entries: dict[str, dict]) -> None:
        data = self.read()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        for key, entry in entries.items():
            data[key] = {"submitted": stamp, **entry}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_json(self.path, data)

    def set_result(self, key: str, result) -> None:
        data = self.read()
        if key in data:
            data[key]["result"] = result
            save_json(self.path, data)

