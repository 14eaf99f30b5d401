"""``make runs EXECUTOR=slurm`` against a running single-node Slurm (``make slurm-test``, part of ``make test``).

A scratch project (``LANDSCAPE_ROOT``) holds the smoke profile's parameters plus a task of 02 on
torchvision's MNIST, whose files are missing at first: its runs fail while the others complete, and a
second ``make runs``, once the files are written (in torchvision's on-disk format), submits only them.
Preemption and a real time limit are tested on a run long enough to be interrupted after its first
epoch checkpoint; both must end bitwise equal to an uninterrupted run of the same spec.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from landscape_core.cli import jobs, runs
from landscape_core.cli.params import notebook_runs
from landscape_core.cli.scheduler import Record, slurm_states
from landscape_core.data.formats import write_mnist
from landscape_core.training import TrainSpec, load_probes, run_path

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = ["02_gradient_dynamics", "06_connectivity"]
TASK = {"name": "real_mnist", "eps_list": [0.0, 0.2], "lr_schedule": "constant", "lr_milestones": [],
        "training": {"dataset": "mnist", "download": False, "n_train": 600, "arch": "lenet", "width": 1,
                     "pgd_steps": 5, "optimizer": "adam", "lr": 0.001, "epochs": 2}}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(REPO / "params", root / "params")
    (root / "params" / "smoke" / "02_gradient_dynamics.yaml").write_text(yaml.safe_dump({"tasks": [TASK]}))
    (root / "data").mkdir()
    return root


def _make(root: Path, target: str, **variables) -> subprocess.CompletedProcess:
    env = {**os.environ, "LANDSCAPE_ROOT": str(root)}
    args = [f"{k}={v}" for k, v in variables.items()]
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), target, "PROFILE=smoke", *args], env=env,
                          capture_output=True, text=True, timeout=1200)


def _wanted(root: Path, monkeypatch) -> dict:
    monkeypatch.setenv("LANDSCAPE_ROOT", str(root))
    params = {label: P for n in NOTEBOOKS for label, P in notebook_runs(n, "smoke").items()}
    return runs.collect(params)


def _running(stop: threading.Event, seen: list[tuple[str, ...]]) -> None:
    """Sample which of our jobs Slurm runs at once."""
    while not stop.is_set():
        out = subprocess.run(["squeue", "--noheader", "--array", "--states=RUNNING", "--name=landscape-run",
                              "--format=%i:%T"], capture_output=True, text=True)
        seen.append(tuple(out.stdout.split()))
        time.sleep(0.3)


def _intervals(slurm, array: str) -> list[tuple[str, str, str]]:
    """(task, StartTime, EndTime) of each task of a Slurm array, from ``scontrol`` (no accounting)."""
    text = slurm.run("scontrol", "show", "job", "-o", array)
    rows = []
    for line in text.strip().splitlines():
        info = dict(item.split("=", 1) for item in line.split() if "=" in item)
        rows.append((info.get("ArrayTaskId", ""), info["StartTime"], info["EndTime"]))
    return sorted(rows, key=lambda r: r[1])


def test_make_runs_submits_one_array_and_reports_what_failed(slurm, project, monkeypatch):
    stop, seen = threading.Event(), []
    sampler = threading.Thread(target=_running, args=(stop, seen), daemon=True)
    sampler.start()
    t0 = time.monotonic()
    out = _make(project, "runs", EXECUTOR="slurm", JOBS=1, CPUS=1, MEM=1, THREADS=1, DEVICE="cpu", TIME=30,
                NOTEBOOKS=" ".join(NOTEBOOKS))
    stop.set()
    sampler.join()
    print(f"first make runs: {time.monotonic() - t0:.0f} s\n{out.stdout}\n{out.stderr}")
    assert out.returncode != 0 and "[Makefile" in out.stderr, out.stdout + out.stderr      # the command's rc 1
    wanted = _wanted(project, monkeypatch)
    store = project / "outputs" / "smoke" / "runs"
    task_runs = {k for k, (spec, _) in wanted.items() if spec.data.name == "mnist"}
    assert len(task_runs) == 4                       # the task's zoo (2) and 06's second seeds of it (2)
    # one array for the first phase, at most JOBS=1 task running at a time (2 CPUs would allow 2)
    array = re.search(r"submitted (\d+) jobs as Slurm array (\d+) \(at most 1 at once\)", out.stdout)
    assert array and int(array.group(1)) == len(wanted)
    both = [x for x in seen if len(x) > 1]
    assert seen and max(len(x) for x in seen) >= 1
    spans = _intervals(slurm, array.group(2))
    print("sampled two at once:", both[:5], "\nspans:", spans)
    assert all(b[1] >= a[2] for a, b in zip(spans, spans[1:])), spans        # one task after the other
    assert slurm.show_job(array.group(2) + "_0").get("ArrayTaskThrottle") == "1"
    # every run but the task's is in the store; each failure names its spec, cause and log
    for key, (spec, _) in wanted.items():
        assert ((store / key / "result.json").exists()) == (key not in task_runs), key
    failures = re.findall(r"FAILED (v1-\w+) \((.*?)\): (.*?)\n  spec: (.*?)\n  job: (\S+)\n  log: (\S+)",
                          out.stderr, re.S)
    assert {f[0] for f in failures} == task_runs
    for key, _, cause, spec, job, log in failures:
        assert "mnist" in cause.lower() and ("not found" in cause.lower() or "download" in cause.lower()), cause
        assert spec == wanted[key][0].label() and Path(log).exists() and job.startswith(array.group(2) + "_")
    # the second phase: 06's curves of 02's own zoo trained; the task's wait for its end points
    assert "second phase: the Bezier curves of 06_connectivity" in out.stdout
    assert "06_connectivity [real_mnist]: its curves wait for 4 end points" in out.stdout
    record = Record(project / "outputs" / "smoke" / "jobs").read()
    curves = record["curves 06_connectivity"]["result"].split()
    assert len(curves) == 2 and all((store / k / "result.json").exists() for k in curves)

    status = _make(project, "runs-status", NOTEBOOKS=" ".join(NOTEBOOKS))
    print(status.stdout)
    assert status.returncode != 0
    rows = {r[0]: r[1:] for r in (line.strip("|").split("|") for line in status.stdout.splitlines()[2:])
            if len(r) > 3}
    rows = {k.strip(): [c.strip() for c in v] for k, v in rows.items()}
    for key in task_runs:
        assert rows[key][0] == "failed" and rows[key][1].startswith(array.group(2) + "_")
        assert "mnist" in rows[key][2].lower()
    assert rows["curves 06_connectivity [real_mnist]"][0] == "not submitted"
    assert sum(r[0] == "done" for r in rows.values()) == len(wanted) - 4 + 1

    # the files appear (torchvision's format): a second make runs submits only what is missing
    write_mnist(project / "data", n_train=600, n_test=100)
    before = {p.name: p.stat().st_mtime_ns for p in store.glob("*/result.json")}
    again = _make(project, "runs", EXECUTOR="slurm", JOBS=2, CPUS=1, MEM=1, THREADS=1, DEVICE="cpu", TIME=30,
                  NOTEBOOKS=" ".join(NOTEBOOKS))
    print(again.stdout, again.stderr)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{len(wanted) - 4} in the store, 4 to train" in again.stdout
    assert re.search(r"submitted 4 jobs as Slurm array", again.stdout)
    assert re.search(r"submitted 1 jobs as Slurm array", again.stdout)          # the task's curves
    assert {p.name: p.stat().st_mtime_ns for p in store.glob("*/result.json") if p.name in before} == before
    status = _make(project, "runs-status", NOTEBOOKS=" ".join(NOTEBOOKS))
    assert status.returncode == 0 and f"smoke: {len(wanted) + 2} done" in status.stdout, status.stdout

    # the notebook finds every run and curve: executing 06 (its zoo and its task) trains nothing
    listing = {p.parent.name: p.stat().st_mtime_ns for p in store.glob("*/result.json")}
    nb = subprocess.run([str(REPO / ".venv/bin/python"), "-m", "landscape_core", "run",
                         str(REPO / "notebooks/06_connectivity.py"), "--profile", "smoke"],
                        env={**os.environ, "LANDSCAPE_ROOT": str(project)}, capture_output=True, text=True,
                        timeout=900, cwd=REPO)
    assert nb.returncode == 0, nb.stdout[-2000:] + nb.stderr[-2000:]
    assert {p.parent.name: p.stat().st_mtime_ns for p in store.glob("*/result.json")} == listing


def test_the_resources_asked_for_are_the_jobs_resources(slurm, project):
    out = _make(project, "runs", EXECUTOR="slurm", JOBS=3, GPUS=1, CPUS=1, MEM=2, TIME=7, PARTITION="gpu",
                DEVICE="cpu", NOTEBOOKS="07_local_lipschitzness", NO_WAIT=1)
    print(out.stdout, out.stderr)
    assert out.returncode == 0, out.stdout + out.stderr
    record = Record(project / "outputs" / "smoke" / "jobs").read()
    ids = [e["job_id"] for e in record.values() if "07_local_lipschitzness" in e["for"]]
    assert len(ids) == 6
    try:
        status = _make(project, "runs-status", NOTEBOOKS="07_local_lipschitzness")
        assert {"running", "queued"} & set(status.stdout.split()), status.stdout
        for job in ids:
            info = slurm.show_job(job)
            if info.get("JobState") in ("COMPLETED", "FAILED"):
                continue            # read while it lived: Slurm forgets nothing of a job's request after
            assert info["Partition"] == "gpu"
            assert info["CPUs/Task"] == "1" and info["MinMemoryNode"] == "2G"
            assert info["TimeLimit"] == "00:07:00"
            assert info["TresPerNode"] == "gres:gpu:1"
            assert info["ArrayTaskThrottle"] == "3"
    finally:
        slurm.run("scancel", *sorted({j.split("_")[0] for j in ids}), check=False)


# a run long enough to be interrupted (about 7 s an epoch on one thread here: ~110 s, so a CPU 1.5x faster
# still runs past the first time-limit signal at 30-60 s)
LONG = {"data": {"name": "mnist5k", "n_train": 2000}, "model": {"arch": "lenet", "width": 4},
        "attack": {"name": "pgd", "eps": 0.3, "steps": 10, "step_size": 0.05}, "epochs": 16}


def _digest(run: Path) -> str:
    state = torch.load(run / "final.pt", weights_only=True)
    state = state.get("model", state)
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _epoch(run: Path) -> int:
    try:
        return torch.load(run / "last.pt", weights_only=True)["epoch"]
    except Exception:
        return 0


def test_preempted_and_timed_out_jobs_are_requeued_and_end_bitwise_equal(slurm, tmp_path):
    spec = TrainSpec.from_params(LONG)
    stores = {name: tmp_path / name / "runs" for name in ("preempted", "timed-out", "reference")}
    args = lambda store: (spec.to_dict(), str(store), "cpu", 1)        # noqa: E731
    long_limit = runs.ExecutorSpec(executor="slurm", jobs=2, cpus=1, mem_gb=1, time_min=60, device="cpu", threads=1)
    # Slurm signals a job when its time left is <= 60 + 30 s (checked every 30 s): at 30 to 60 s of the 2 min
    # (each segment gains its whole epochs: allow more time-outs than submitit's 3, the test is about resuming)
    short_limit = runs.ExecutorSpec(executor="slurm", jobs=2, cpus=1, mem_gb=1, time_min=2, signal_delay_s=60,
                                    max_requeues=10, device="cpu", threads=1)
    local = runs.ExecutorSpec(executor="local", jobs=1, time_min=60, device="cpu", threads=1)
    t0 = time.monotonic()
    preempted = runs._executor(long_limit, tmp_path / "jobs").submit(jobs.TrainJob(), *args(stores["preempted"]))
    timed_out = runs._executor(short_limit, tmp_path / "jobs").submit(jobs.TrainJob(), *args(stores["timed-out"]))
    reference = runs._executor(local, tmp_path / "local").submit(jobs.TrainJob(), *args(stores["reference"]))
    run_a = run_path(spec, stores["preempted"])
    while _epoch(run_a) < 1:
        assert time.monotonic() - t0 < 300, "the preempted job never checkpointed an epoch"
        time.sleep(0.5)
    at = _epoch(run_a)
    preempted._interrupt()                  # SIGTERM then USR2: a preemption, as Slurm's preempt/requeue sends
    runs._wait_slurm({"preempted": preempted, "timed-out": timed_out}, 1.0, print)
    ref_key, _ = reference.result()
    elapsed = time.monotonic() - t0
    a, b = slurm.show_job(preempted.job_id), slurm.show_job(timed_out.job_id)
    logs = {name: Path(job.paths.stderr).read_text() + Path(job.paths.stdout).read_text()
            for name, job in (("preempted", preempted), ("timed-out", timed_out))}
    digests = {name: _digest(run_path(spec, store)) for name, store in stores.items()}
    print(f"{elapsed:.0f} s; interrupted at epoch {at}; jobs {preempted.job_id} (Restarts={a['Restarts']}), "
          f"{timed_out.job_id} (Restarts={b['Restarts']}); digests {digests}")
    assert preempted.result()[0] == timed_out.result()[0] == ref_key
    assert int(a["Restarts"]) >= 1 and "this job is preempted" in logs["preempted"]
    assert int(b["Restarts"]) >= 1 and "this job is timed-out" in logs["timed-out"]
    for log in logs.values():
        assert re.search(r"resuming at epoch [1-9]\d*/16", log), log[-3000:]
    assert digests["preempted"] == digests["timed-out"] == digests["reference"]
    probes = {name: load_probes(run_path(spec, store)) for name, store in stores.items()}
    for name in ("preempted", "timed-out"):       # every mini-batch's probes, through the interruption
        assert all(np.array_equal(probes[name][k], probes["reference"][k]) for k in probes["reference"]), name


def test_squeue_states_need_no_accounting(slurm):
    job = slurm.run("sbatch", "--parsable", "--wrap", "sleep 30", "-o", "/dev/null").strip()
    try:
        states = slurm_states([job])
        assert states[job][0] in ("PENDING", "RUNNING")
        assert subprocess.run(["sacct", "-j", job], capture_output=True).returncode != 0   # no accounting here
    finally:
        slurm.run("scancel", job)
    deadline = time.monotonic() + 30
    while slurm_states([job]).get(job, ("",))[0] not in ("CANCELLED", ""):
        assert time.monotonic() < deadline
        time.sleep(0.5)
