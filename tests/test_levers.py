"""Precision (bf16 autocast where the hardware has it), the pilot's cases and the bench's spread
report: the pieces of issue 11's compute levers that a test can check without timing anything."""
import json

import pytest
import torch

from landscape_core.attacks import AttackSpec
from landscape_core.cli import bench
from landscape_core.core.precision import autocast, bf16_fast, memory_format, resolve_precision
from landscape_core.data import DatasetSpec
from landscape_core.models import ModelSpec
from landscape_core.studies.base import TrainingParams
from landscape_core.studies.pilot import PILOT_CASES
from landscape_core.training import TrainSpec, load_probes, train
from landscape_core.core.spec import ParameterError


def test_auto_precision_follows_the_hardware_and_explicit_choices_stay():
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto", "cpu") == ("bf16" if bf16_fast("cpu") else "fp32")
    assert TrainingParams().spec(0.1, seed=0).precision == "fp32"          # the default stays fp32
    assert TrainingParams(precision="auto").spec(0.1, seed=0).precision in ("fp32", "bf16")
    with pytest.raises(ParameterError, match="precision"):
        TrainingParams(precision="fp16")
    fp32, bf16 = TrainSpec(precision="fp32"), TrainSpec(precision="bf16")
    assert fp32.digest() != bf16.digest()                    # the two never share a run folder


def test_autocast_is_a_no_op_in_fp32_and_bf16_otherwise():
    lin = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with autocast("fp32", "cpu"):
        assert lin(x).dtype == torch.float32
    with autocast("bf16", "cpu"):
        assert lin(x).dtype == torch.bfloat16
    assert memory_format("bf16", "cpu", 4) == torch.channels_last
    assert memory_format("fp32", "cpu", 4) == torch.contiguous_format
    assert memory_format("bf16", "cpu", 2) == torch.contiguous_format


def test_a_bf16_run_says_so_and_follows_the_fp32_run(tmp_path):
    runs = {}
    for precision in ("fp32", "bf16"):
        spec = TrainSpec(data=DatasetSpec(name="mnist5k", n_train=300), model=ModelSpec(arch="lenet", width=2),
                         attack=AttackSpec(name="pgd", eps=0.1, steps=3, step_size=0.03), lr=1e-3, epochs=2,
                         precision=precision)
        train(spec, tmp_path / precision)
        result = json.loads((tmp_path / precision / "result.json").read_text())
        assert result["precision"] == precision
        runs[precision] = load_probes(tmp_path / precision)
    # the same data order and starts: bf16 rounding moves the curves a little, not their course
    first = runs["fp32"]["loss"][:3]
    assert abs(runs["bf16"]["loss"][:3] - first).max() < 0.05
    assert runs["bf16"]["loss"][-6:].mean() < runs["bf16"]["loss"][:3].mean()


def test_pilot_cases_change_only_what_they_name():
    base = TrainingParams(n_train=None, width=4, pgd_steps=10, epochs=10, precision="auto")
    names = [c.name for c in PILOT_CASES]
    assert len(names) == len(set(names))
    for case in PILOT_CASES:
        tp = case.training(base)
        for field in ("dataset", "n_train", "batch_size", "epochs", "optimizer"):
            if field not in dict(case.changes):
                assert getattr(tp, field) == getattr(base, field)
        for k, v in case.changes:
            assert getattr(tp, k) == v


def test_spread_report_flags_a_busy_machine(monkeypatch):
    monkeypatch.setattr(bench, "RECORD", [("quiet", [1.0, 1.02, 1.01]), ("busy", [1.0, 2.0, 1.1])])
    lines = bench.spread_report()
    assert "BUSY" not in lines[1] and lines[2].endswith("BUSY")
    assert lines[-1].startswith("1 of 2 measurements")
    assert bench.verdict(0.9, 1.05).endswith("PASS") and bench.verdict(1.2, 1.05).endswith("FAIL")


def test_grid_hours_projects_each_stack_at_its_measured_rate():
    """The projection of the paper's MNIST grid (bench section 6 on a GPU): each stack of compatible runs at
    the per-member rate of the largest measured stack size not above its own, for its longest member."""
    def spec(seed, eps=0.3, steps=2, epochs=1):
        return TrainSpec(data=DatasetSpec(name="mnist5k", n_train=100), model=ModelSpec(arch="lenet", width=1),
                         attack=AttackSpec(name="pgd", eps=eps, steps=steps, step_size=0.1), epochs=epochs,
                         batch_size=50, seed=seed)
    grid = [spec(s) for s in range(5)] + [spec(0, steps=4)]        # a group of 5 (6 passes) and a lone run (10)
    assert bench.grid_hours(grid, {1: 3600.0}) == 5 * 6 + 10
    assert bench.grid_hours(grid, {1: 3600.0, 2: 1800.0}, stack=2) == 2 * 6 / 2 + 2 * 6 / 2 + 6 + 10
    assert bench.grid_hours(grid, {1: 3600.0, 2: 1800.0, 4: 360.0}, stack=5) == 5 * 6 / 10 + 10


def test_the_mnist_grid_projection_runs_its_measurement_end_to_end():
    # the GPU measurement's code path, on the CPU at a toy size (no timing is asserted)
    grid = bench.paper_grid()
    assert grid and all((s.model.arch, s.model.width, s.data.name) == ("lenet", 16, "mnist") for s in grid)
    assert any(s.attack.steps == 50 for s in grid)                  # the paper's PGD-50
    g = bench.mnist_grid_projection((1, 2), updates=1, steps=1, batch=10, repeats=1)
    assert [r["members"] for r in g["rows"]] == [1, 2] and g["runs"] == len(grid)
    assert g["alone_h"] > 0 and g["batched_h"] > 0 and g["ratio"] == pytest.approx(g["alone_h"] / g["batched_h"])
