"""What can change last digits is recorded with every run and notebook, and a mixed store is reported."""
import json

import torch

from landscape_core.cli.main import main
from landscape_core.core.machine import describe, mixed, numerics
from landscape_core.studies.base import TrainingParams
from landscape_core.training import get_or_train

FIELDS = {"torch", "device", "device_name", "threads", "cpu", "cpu_capability", "onednn_max_isa", "precision"}


def test_a_new_run_records_its_numerical_provenance(tmp_path):
    spec = TrainingParams(n_train=200, width=1, pgd_steps=2, epochs=1, precision="fp32").spec(0.1, seed=0)
    run = get_or_train(spec, tmp_path)
    record = run.result["numerics"]
    assert FIELDS <= set(record)
    assert record["torch"] == torch.__version__ and record["device"] == "cpu" and record["precision"] == "fp32"
    assert record["threads"] == torch.get_num_threads() and record["cpu_capability"]


def test_records_that_differ_in_threads_are_mixed_and_said_so():
    one, two = numerics("cpu"), {**numerics("cpu"), "threads": 7}
    assert mixed([("a", one), ("b", one)]) == ""
    text = mixed([("run a", one), ("run b", two), ("notebook 02", one)])
    assert "7 threads" in text and "run b" in text and "2 from" in text
    assert "no record" in describe(None)


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_make_summary_reports_mixed_provenance(tmp_path, monkeypatch, capsys):
    """A store filled by `make runs THREADS=1` and notebooks run with 2 threads: the summary says so."""
    root = tmp_path / "outputs" / "smoke"
    claim = {"claim": "c", "measured": "m", "verdict": "holds", "holds": True}
    _write(root / "claims" / "02_gradient_dynamics.json", {"notebook": "02_gradient_dynamics", "profile": "smoke",
                                                           "claims": [claim]})
    base = numerics("cpu")
    _write(root / "params" / "02_gradient_dynamics.json", {"digest": "x", "numerics": {**base, "threads": 2}})
    for name, threads in (("v1-aaa", 1), ("v1-bbb", 1)):
        _write(root / "runs" / name / "result.json", {"numerics": {**base, "threads": threads}})
    monkeypatch.setenv("LANDSCAPE_ROOT", str(tmp_path))
    assert main(["summary", "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "mixed numerical provenance" in out
    assert "2 from" in out and "1 thread: run v1-aaa, run v1-bbb" in out and "2 threads: notebook 02" in out
    _write(root / "params" / "02_gradient_dynamics.json", {"digest": "x", "numerics": {**base, "threads": 1}})
    main(["summary", "--profile", "smoke"])
    assert "mixed" not in capsys.readouterr().out
