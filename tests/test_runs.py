"""make runs: collecting a profile's training runs, and the submitit executors on this machine."""
import os
import signal
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("submitit")

from landscape_core.cli import jobs, runs  # noqa: E402
from landscape_core.cli.main import main  # noqa: E402
from landscape_core.cli.params import load_params, spec_class  # noqa: E402
from landscape_core.core.io import load_checkpoint  # noqa: E402
from landscape_core.studies.base import TrainingParams  # noqa: E402
from landscape_core.core.spec import ParameterError  # noqa: E402
from landscape_core.training import get_or_train, is_complete, load_result, run_path  # noqa: E402


def _spec(epochs=2, seed=0, width=1):
    T = TrainingParams(n_train=200, width=width, pgd_steps=2, epochs=epochs, precision="fp32")
    return T.spec(0.1, seed=seed)


def _todo(*specs):
    return {s.digest(): (s, ["test"]) for s in specs}


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and its descendants (submitit's local job is a wrapper around the worker)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, tree = [pid], []
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _weights(store, spec):
    return load_checkpoint(run_path(spec, store) / "final.pt")["model"]


def test_collect_lists_every_run_of_the_quick_profile_once():
    names = ["02_gradient_dynamics", "05_pas_table1", "06_connectivity", "07_local_lipschitzness"]
    params = {n: spec_class(n).from_params(load_params(n, "quick")) for n in names}
    wanted = runs.collect(params)
    zoo = params["02_gradient_dynamics"].zoo().specs()
    for spec in zoo.values():                    # the zoo once, needed by 02, 06 and 07
        key = next(k for k, (s, _) in wanted.items() if s == spec)
        assert {"02_gradient_dynamics", "06_connectivity", "07_local_lipschitzness"} <= set(wanted[key][1])
    P5 = params["05_pas_table1"]
    assert sum("05_pas_table1" in n for _, n in wanted.values()) == len(P5.lrs) * 4 * P5.seeds + P5.seeds + 1
    assert len(wanted) == len({s.digest() for s, _ in wanted.values()})


def test_dry_run_lists_costs_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANDSCAPE_ROOT", str(tmp_path))
    (tmp_path / "params").symlink_to(Path(__file__).resolve().parents[1] / "params")
    assert main(["runs", "--profile", "quick", "--dry-run", "--notebooks", "05_pas_table1"]) == 0
    out = capsys.readouterr().out
    assert "14 training runs for 05_pas_table1; 0 in the store, 14 to train" in out and "gradient passes" in out
    assert "BATCHED on a CPU" not in out
    assert main(["runs", "--profile", "quick", "--dry-run", "--notebooks", "05_pas_table1", "--batched", "14",
                 "--device", "cpu"]) == 0
    assert "note: BATCHED on a CPU: a stack trains slower" in capsys.readouterr().out
    assert not (tmp_path / "outputs").exists()
    assert main(["runs", "--profile", "quick", "--executor", "slurmm", "--dry-run"]) == 2
    assert "executor" in capsys.readouterr().err


def test_local_executor_trains_two_runs_in_parallel_processes(tmp_path):
    a, b = _spec(seed=0), _spec(seed=1)
    store = tmp_path / "runs"
    E = runs.ExecutorSpec(executor="local", jobs=2, device="cpu", threads=1, time_min=10)
    out = runs.submit(_todo(a, b), store, E, tmp_path / "jobs", poll_s=0.2, log=lambda *_: None)
    assert [o.error for o in out] == ["", ""] and all(o.trained for o in out)
    ref = tmp_path / "ref"
    torch.set_num_threads(1)
    for s in (a, b):
        get_or_train(s, ref)
        assert all(torch.equal(_weights(store, s)[k], _weights(ref, s)[k]) for k in _weights(ref, s))


def test_a_killed_job_resubmitted_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    spec = _spec(epochs=6, width=2)
    store = tmp_path / "runs"
    E = runs.ExecutorSpec(executor="local", jobs=1, device="cpu", threads=1, time_min=10)
    ex = runs._executor(E, tmp_path / "jobs")
    job = ex.submit(jobs.TrainJob(), spec.to_dict(), str(store), "cpu", 1)
    last = run_path(spec, store) / "last.pt"
    t0 = time.time()
    while not last.exists() and time.time() - t0 < 120:
        time.sleep(0.05)
    assert last.exists(), "the job wrote no epoch checkpoint"
    _kill_tree(job._process.pid)                    # the job's processes are killed mid-run (no clean-up)
    job._process.wait()
    time.sleep(0.5)
    assert not is_complete(spec, store)
    out = runs.submit(_todo(spec), store, E, tmp_path / "jobs", poll_s=0.2, log=lambda *_: None)
    assert out[0].error == "" and out[0].trained
    ref = tmp_path / "ref"
    torch.set_num_threads(1)
    get_or_train(spec, ref)
    w, r = _weights(store, spec), _weights(ref, spec)
    assert all(torch.equal(w[k], r[k]) for k in r)


def test_two_submissions_of_one_spec_train_it_once(tmp_path):
    spec = _spec(epochs=2)
    store = tmp_path / "runs"
    E = runs.ExecutorSpec(executor="local", jobs=2, device="cpu", threads=1, time_min=10)
    ex = runs._executor(E, tmp_path / "jobs")
    submitted = [ex.submit(jobs.TrainJob(), spec.to_dict(), str(store), "cpu", 1) for _ in range(2)]
    trained = [j.result()[1] for j in submitted]
    assert sorted(trained) == [False, True]


def test_a_failing_job_is_reported_and_the_others_go_on(tmp_path):
    good = _spec(epochs=1)
    bad = good.replace(data=good.data.replace(name="mnist", root=str(tmp_path / "no-data")))   # cannot load
    store = tmp_path / "runs"
    E = runs.ExecutorSpec(executor="local", jobs=2, device="cpu", threads=1, time_min=10)
    out = runs.submit(_todo(bad, good), store, E, tmp_path / "jobs", poll_s=0.2, log=lambda *_: None)
    assert out[0].error and out[0].log.endswith(".err") and out[1].error == "" and is_complete(good, store)
    assert not is_complete(bad, store)


def test_debug_executor_runs_in_process(tmp_path):
    spec = _spec(epochs=1)
    out = runs.submit(_todo(spec), tmp_path / "runs", runs.ExecutorSpec(executor="debug", device="cpu"),
                      tmp_path / "jobs", log=lambda *_: None)
    assert out[0].error == "" and out[0].trained and is_complete(spec, tmp_path / "runs")


def test_a_job_killed_from_outside_is_reported_with_its_cause_not_submitits_last_log_line(tmp_path):
    spec = _spec(epochs=6, width=2)
    store = tmp_path / "runs"
    E = runs.ExecutorSpec(executor="local", jobs=1, device="cpu", threads=1, time_min=10)
    job = runs._executor(E, tmp_path / "jobs").submit(jobs.TrainJob(), spec.to_dict(), str(store), "cpu", 1)
    last = run_path(spec, store) / "last.pt"
    t0 = time.time()
    while not last.exists() and time.time() - t0 < 120:
        time.sleep(0.05)
    _kill_tree(job._process.pid)
    job._process.wait()
    with pytest.raises(Exception) as err:
        job.result()
    assert "Loading pickle" in str(err.value)              # what the report used to show, alone
    cause = runs.failure_cause(err.value, job.paths.stderr)
    assert cause.startswith("the job died without a result") and "has not produced any output" in cause
    assert "Loading pickle" not in cause and "killed from outside" in cause


def test_failure_cause_keeps_the_jobs_own_last_stderr_lines(tmp_path):
    stderr = tmp_path / "0_0_log.err"
    stderr.write_text("submitit INFO (2026-12-04) - Starting with JobEnvironment\n"
                      "submitit INFO (2026-12-04) - Loading pickle: /x/0_submitted.pkl\n"
                      "RuntimeError: DataLoader worker (pid 12) is killed by signal: Killed.\n")
    err = RuntimeError("Job 1 (task: 0) with path /x/0_result.pkl\nhas not produced any output (state: FAILED)\n"
                       "Error stream produced:\n----\nsubmitit INFO (2026-12-04) - Loading pickle: /x/0_submitted.pkl")
    cause = runs.failure_cause(err, stderr)
    assert "(state: FAILED)" in cause and "killed by signal: Killed" in cause and "Loading pickle" not in cause
    assert runs.failure_cause(ValueError("Traceback ...\nValueError: bad spec")) == "ValueError: bad spec"


def test_failure_cause_reads_the_exception_out_of_submitits_trace():
    err = RuntimeError("Job (task=0) failed during processing with trace:\n----------------------\n"
                       "Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
                       "landscape_core.data.datasets.DatasetUnavailable: data set 'mnist' is not available\n"
                       "----------------------\nYou can check full logs with 'job.stderr(0)' and 'job.stdout(0)'"
                       "or at paths:\n  - /x/1_0_log.err\n  - /x/1_0_log.out")
    assert runs.failure_cause(err).endswith("data set 'mnist' is not available")


def test_a_time_limit_within_slurms_signal_window_is_refused_before_submitting():
    with pytest.raises(runs.ParameterError, match="time_min.*at least 3 min"):
        runs.ExecutorSpec(executor="slurm", time_min=2)              # signal_delay_s 90: USR2 at the start
    runs.ExecutorSpec(executor="slurm", time_min=2, signal_delay_s=60)
    runs.ExecutorSpec(executor="local", time_min=1)                  # no signal outside Slurm


def test_status_reads_the_store_the_record_and_the_processes(tmp_path, capsys):
    good, other = _spec(epochs=1), _spec(epochs=1, seed=3)
    bad = good.replace(data=good.data.replace(name="mnist", root=str(tmp_path / "no-data")))
    store, folder = tmp_path / "runs", tmp_path / "jobs"
    E = runs.ExecutorSpec(executor="local", jobs=2, device="cpu", threads=1, time_min=10)
    out = runs.submit(_todo(bad, good), store, E, folder, poll_s=0.2, log=lambda *_: None)
    partial = _spec(epochs=3, seed=5)
    from landscape_core.training.loop import train
    train(partial, run_path(partial, store), stop_after_epochs=1)          # an interrupted run, never submitted
    wanted = {**_todo(bad, good, other, partial)}
    rows = {r["run"]: r for r in runs.status(wanted, {}, store, folder)}
    assert rows[good.digest()]["state"] == "done" and rows[good.digest()]["job"] == out[1].job_id
    assert rows[bad.digest()]["state"] == "failed" and "not available" in rows[bad.digest()]["detail"]
    assert rows[bad.digest()]["log"].endswith("_log.err")
    assert rows[other.digest()]["state"] == "not submitted" and rows[other.digest()]["detail"] == ""
    assert rows[partial.digest()]["detail"] == "stopped at epoch 1/3"
    record = runs.Record(folder).read()
    assert set(record) == {bad.digest(), good.digest()} and all(e["executor"] == "local" for e in record.values())


def test_status_reads_a_stacks_epoch_for_each_of_its_members(tmp_path):
    """A stack checkpoints once, in its first member's folder: every member's status still says its epoch
    (``stack.json`` names the stack's checkpoint), and a run's own ``last.pt`` comes first."""
    from landscape_core.training import STACK_FILE, stack_checkpoint, train_batched
    from landscape_core.training.loop import train
    specs = [_spec(epochs=3, seed=s) for s in (0, 1, 2)]
    store = tmp_path / "runs"
    train_batched(specs, [run_path(s, store) for s in specs], stop_after_epochs=1)
    first = stack_checkpoint(run_path(specs[0], store))
    assert first.parent == run_path(specs[0], store) and first.name.startswith("last-batched-")
    assert all(stack_checkpoint(run_path(s, store)).resolve() == first.resolve() for s in specs)
    assert [jobs.checkpoint_epoch(s, store) for s in specs] == ["epoch 1/3 in a stack of 3"] * 3
    rows = {r["run"]: r for r in runs.status(_todo(*specs), {}, store, tmp_path / "jobs")}
    assert [rows[s.digest()]["detail"] for s in specs] == ["stopped at epoch 1/3 in a stack of 3"] * 3
    train(specs[1], run_path(specs[1], store), stop_after_epochs=2)      # trained on alone: its own last.pt
    assert jobs.checkpoint_epoch(specs[1], store) == "epoch 2/3"
    (run_path(specs[2], store) / STACK_FILE).write_text("{not json")      # a damaged pointer: no epoch, no error
    assert jobs.checkpoint_epoch(specs[2], store) == ""
    assert jobs.checkpoint_epoch(_spec(epochs=3, seed=9), store) == ""


def test_batched_jobs_train_compatible_runs_as_one_stack_recorded_under_each_run(tmp_path):
    """``--batched N``: one job per stack of up to N compatible runs; each member recorded, so
    ``make runs-status`` follows every run; an incompatible run gets its own job."""
    from landscape_core.cli.scheduler import Record
    a, b, c = _spec(seed=0, epochs=1), _spec(seed=1, epochs=1).replace(lr=3e-3), _spec(seed=2, epochs=1)
    wide = _spec(seed=0, epochs=1, width=2)
    E = runs.ExecutorSpec(executor="debug", device="cpu", batched=2)
    items = runs.train_items(_todo(a, wide, b, c), tmp_path / "runs", E)
    assert [(type(it.fn).__name__, len(it.runs())) for it in items] == [("GroupJob", 2), ("TrainJob", 1),
                                                                        ("TrainJob", 1)]
    out = runs.submit(_todo(a, wide, b, c), tmp_path / "runs", E, tmp_path / "jobs", log=lambda *_: None)
    assert [o.error for o in out] == [""] * 3 and all(o.trained for o in out)
    assert all(is_complete(s, tmp_path / "runs") for s in (a, b, c, wide))
    assert load_result(run_path(b, tmp_path / "runs"))["trainer"] == {"kind": "batched", "members": 2, "member": 1}
    E2 = runs.ExecutorSpec(executor="local", jobs=1, device="cpu", threads=1, time_min=10, batched=3)
    d, e = _spec(seed=3, epochs=1), _spec(seed=4, epochs=1)
    runs.submit(_todo(d, e), tmp_path / "runs", E2, tmp_path / "jobs2", poll_s=0.2, log=lambda *_: None)
    record = Record(tmp_path / "jobs2").read()
    assert {d.digest(), e.digest()} <= set(record) and record[d.digest()]["job_id"] == record[e.digest()]["job_id"]
    with pytest.raises(ParameterError, match="batched"):
        runs.ExecutorSpec(batched=0)
