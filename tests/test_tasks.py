"""03, 04 and 06 once per task of 02: the task's zoo and per-task settings, validated before any compute;
outputs under ``tasks/<task>/``, counted by the summary and the report."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

from landscape_core.analysis.dynamics import epoch_means
from landscape_core.cli.params import load_params, per_task, task_names
from landscape_core.cli.main import main
from landscape_core.core.io import output_parts, outputs_root, repo_root
from landscape_core.core.spec import ParameterError
from landscape_core.report.claims import part_label, summarise
from landscape_core.studies import NOTEBOOKS

TASK = {"name": "fashion", "training": {"dataset": "fashionmnist", "download": False, "n_train": 200, "arch": "lenet",
                                        "width": 2, "optimizer": "adam", "lr": 1e-3, "epochs": 2},
        "eps_list": [0.0, 0.1, 0.2], "first_n": 2, "last_n": 2}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of the smoke profile's files whose 02 has one task (a Fashion-MNIST LeNet zoo)."""
    folder = tmp_path / "params" / "smoke"
    shutil.copytree(repo_root() / "params" / "smoke", folder)
    (folder / "02_gradient_dynamics.yaml").write_text(yaml.safe_dump({"tasks": [TASK]}))
    monkeypatch.setenv("LANDSCAPE_ROOT", str(tmp_path))
    return folder


def _write(folder, name, params):
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(params))


def test_only_the_zoo_notebooks_run_per_task():
    assert [n for n in NOTEBOOKS if per_task(n)] == ["03_hessian", "04_cosine_similarity", "06_connectivity"]
    assert task_names("03_hessian", "paper") == ["cifar10_resnet18"] and task_names("05_pas_table1", "paper") == []


def test_a_task_run_gets_the_tasks_zoo_and_its_settings(project):
    _write(project, "04_cosine_similarity", {"tasks": {"fashion": {"a_values": [0.0, 0.3]}}})
    main_run = load_params("04_cosine_similarity", "smoke")
    task_run = load_params("04_cosine_similarity", "smoke", task="fashion")
    assert main_run["zoo"]["training"]["dataset"] == "mnist5k" and "tasks" not in main_run
    assert task_run["zoo"]["training"]["dataset"] == "fashionmnist" and task_run["zoo"]["eps_list"] == [0.0, 0.1, 0.2]
    assert task_run["a_values"] == [0.0, 0.3] and task_run["task"] == "fashion"
    assert "a_values" not in main_run          # the task's settings stay with the task


def test_the_papers_cifar10_runs_of_03_04_06_take_the_sources_settings():
    h = load_params("03_hessian", "paper", task="cifar10_resnet18")
    assert h["zoo"]["training"]["arch"] == "resnet18" and h["landscape_eps"][-1] == pytest.approx(8 / 255)
    assert load_params("04_cosine_similarity", "paper", task="cifar10_resnet18")["a_values"] == [0.0, 0.1, 0.3, 0.5, 1.0]
    c = NOTEBOOKS["06_connectivity"].from_params(load_params("06_connectivity", "paper", task="cifar10_resnet18"))
    spec = c.curve_spec()
    assert (spec.optimizer, spec.lr, spec.epochs, spec.lr_milestones) == ("sgd", 0.1, 200, (100, 150))
    assert spec.lr_at(99) == pytest.approx(0.1) and spec.lr_at(150) == pytest.approx(0.001)


@pytest.mark.parametrize("settings, fragment", [
    ({"tasks": {"fashon": {"a_values": [0.0, 0.3]}}}, "fashon"),                 # no such task
    ({"tasks": {"fashion": {"a_values": [0.3, 0.0]}}}, "a_values"),              # a bad value, for one task only
    ({"tasks": {"fashion": {"zoo": {}}}}, "set by the runner"),
    ({"tasks": ["fashion"]}, "tasks"),
])
def test_bad_task_settings_fail_before_any_compute_naming_the_file(project, settings, fragment):
    _write(project, "04_cosine_similarity", settings)
    with pytest.raises(ParameterError, match=fragment) as err:
        load_params("04_cosine_similarity", "smoke")          # the file's own run checks every task's too
    assert "04_cosine_similarity.yaml" in str(err.value)


def test_landscape_budgets_must_be_the_zoos(project):
    _write(project, "03_hessian", {"landscape_eps": [0.0, 0.4]})      # 0.4: in 02's zoo, not in the task's
    with pytest.raises(ParameterError, match="landscape_eps.*task fashion"):
        load_params("03_hessian", "smoke")
    _write(project, "03_hessian", {"landscape_eps": [0.0, 0.4], "tasks": {"fashion": {"landscape_eps": [0.0, 0.2]}}})
    assert load_params("03_hessian", "smoke", task="fashion")["landscape_eps"] == [0.0, 0.2]


def test_a_rejected_task_changes_nothing_on_disk(project, tmp_path, capsys):
    nb = str(repo_root() / "notebooks" / "04_cosine_similarity.py")
    assert main(["run", nb, "--profile", "smoke", "--task", "nope"]) == 2
    assert "--task" in capsys.readouterr().err and not (tmp_path / "outputs").exists()
    assert main(["run", str(repo_root() / "notebooks" / "05_pas_table1.py"), "--profile", "smoke", "--task", "fashion"]) == 2
    assert "once per task" in capsys.readouterr().err
    with pytest.raises(ParameterError, match="once per task"):       # 07 uses 02's zoo, but not per task
        load_params("07_local_lipschitzness", "smoke", task="fashion")


def test_outputs_of_a_task_sit_under_tasks_and_the_summary_counts_them(project, tmp_path):
    root = outputs_root("smoke")
    assert outputs_root("smoke", task="fashion") == root / "tasks" / "fashion"
    assert outputs_root("smoke", "seed=1", create=False, task="fashion") == root / "variants" / "seed=1" / "tasks" / "fashion"
    with pytest.raises(ParameterError, match="task"):
        outputs_root("smoke", task="../x")
    claim = {"claim": "Fig 3: x", "verdict": "holds", "holds": True, "kind": "paper", "measured": "", "reason": ""}
    for part in (root, outputs_root("smoke", task="fashion")):
        (part / "claims").mkdir(parents=True)
        (part / "claims" / "03_hessian.json").write_text(json.dumps({"notebook": "03_hessian", "claims": [claim]}))
    assert list(output_parts(root)) == ["", "fashion"]
    text = summarise(root / "claims", "smoke", expected={"03_hessian": "x", part_label("03_hessian", "fashion"): "y"})
    assert "03_hessian [fashion]: " in text and "paper claims 2: 2 hold" in text.replace("2 paper claims", "paper claims 2")
    assert text.count("NOT made by params") == 2         # no record of either run's parameters


def test_epoch_means_are_fig11s_curves():
    assert np.allclose(epoch_means([1, 3, 2, 4, 6], 2), [2.0, 3.0, 6.0])
    with pytest.raises(ValueError):
        epoch_means([1.0], 0)


def test_the_report_shows_each_task_run_apart(project, tmp_path):
    from landscape_core.report.html import build
    root = outputs_root("smoke")
    claim = {"claim": "Fig 3: x", "verdict": "fails", "holds": False, "kind": "paper", "measured": "m", "reason": ""}
    old = {"claim": "Fig 3: x", "holds": False, "measured": "m"}          # a file from before three verdicts
    for task, c in (("", claim), ("fashion", old)):
        part = outputs_root("smoke", task=task)
        (part / "claims").mkdir(parents=True)
        (part / "claims" / "03_hessian.json").write_text(json.dumps({"notebook": "03_hessian", "claims": [c]}))
    index = build(root, root / "runs", "t").read_text()
    assert "03_hessian [fashion]: " in index and "claims-03_hessian-fashion" in index
    assert "2 paper claims: 0 hold, 2 fail" in index
