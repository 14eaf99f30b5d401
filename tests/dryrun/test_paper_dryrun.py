"""The paper profile, end to end, at tiny sizes (``make paper-dryrun``, part of ``make test``).

Every notebook runs through the runner with ``params/paper/*.yaml`` as they are, except the sizes of
``params/paper/dry_run.yaml``, on MNIST and CIFAR10 files written in torchvision's on-disk formats with
downloads off.  The assertions check that the paths that only the paper profile takes ran: CIFAR10
VGG16 / ResNet18 with BatchNorm and augmentation, SGD with step milestones and periodic resets, the
ensembles of the three period ends, APGD with 5 restarts, Square, the CIFAR10 Table 1 rows beside the
paper's, Fig 2 on CIFAR10, the torchvision MNIST loader, 07's separation on CIFAR10.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
import torch

from landscape_core.cli.dryrun import dry_run
from landscape_core.report.tables import read_table
from landscape_core.studies import NOTEBOOKS
from landscape_core.training import TrainSpec
from landscape_core.training.loop import load_result
from landscape_core.training.store import run_path


@pytest.fixture(scope="module")
def dry(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("paper-dry-run")
    seconds = dry_run(root, "paper", tiny_data=True)
    assert list(seconds) == list(NOTEBOOKS)
    return root / "outputs" / "paper"


def _text(nb_path: Path) -> str:
    nb = nbformat.read(nb_path, as_version=4)
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                     if o.get("output_type") == "stream")


def _runs(out: Path) -> list[tuple[TrainSpec, dict]]:
    runs = []
    for result in sorted((out / "runs").glob("*/result.json")):
        r = load_result(result.parent)
        if "start" in r["spec"]:          # 06's Bezier curves share the store
            continue
        runs.append((TrainSpec.from_params(r["spec"]), r))
    return runs


def test_every_notebook_ran_and_stated_its_claims(dry):
    for name in NOTEBOOKS:
        assert (dry / f"{name}.ipynb").exists(), name
        claims = json.loads((dry / "claims" / f"{name}.json").read_text())
        assert claims["profile"] == "paper" and claims["claims"], name
    assert not (dry / "failed").exists() or not any((dry / "failed").iterdir())


def test_cifar10_models_with_batchnorm_augmentation_sgd_and_resets_trained(dry):
    runs = _runs(dry)
    cifar = [(s, r) for s, r in runs if s.data.name == "cifar10"]
    assert {s.model.arch for s, _ in cifar} == {"vgg16", "resnet18"}
    assert all(s.augment and s.optimizer == "sgd" and not s.data.download for s, _ in cifar)
    periodic = [s for s, _ in cifar if s.periodic]
    assert periodic and all(s.periodic == (1.0, 2.0) and s.snapshots == (1, 2, 3) for s in periodic)
    # every CIFAR10 run on the original code's schedule: lr / 10 at 0.5 and 0.75 of the run (or period)
    assert all(s.lr_spec.kind == "step" and s.lr_spec.milestones == (0.5, 0.75) for s, _ in cifar)
    table1 = [s for s, _ in cifar if s.attack.eps == pytest.approx(8 / 255)]        # 05's rows (and 02's 8/255)
    assert len(table1) == 2 * 2 * 3 * 2 and set(periodic) <= set(table1)
    fig2 = sorted(s.attack.eps for s, _ in cifar if s.model.arch == "resnet18" and s.eps_schedule == "constant"
                  and not s.periodic and s.seed == 0)        # 02's Fig 2 zoo: its 8/255 model is Table 1's
    assert fig2 == pytest.approx([0.0, 2 / 255, 4 / 255, 6 / 255, 8 / 255])
    others = [s for s, _ in cifar if s.attack.eps != pytest.approx(8 / 255)]      # Fig 2's and 06's second seeds
    assert all(s.model.arch == "resnet18" and s.eps_schedule == "constant" and s.seed in (0, 1) for s in others)
    for s in periodic:       # the three period ends of an ensemble are stored
        assert {p.name for p in run_path(s, dry / "runs").glob("epoch_*.pt")} == {"epoch_1.pt", "epoch_2.pt",
                                                                                 "epoch_3.pt"}
    state = torch.load(run_path(cifar[0][0], dry / "runs") / "final.pt", weights_only=True)
    state = state.get("model", state)
    assert any(k.endswith("running_mean") for k in state)       # BatchNorm statistics were trained
    mnist = {s.data.name for s, _ in runs} - {"cifar10"}
    assert mnist == {"mnist"}       # the torchvision MNIST files, not the embedded 5k


def test_table1_cifar_rows_beside_the_papers(dry):
    for task in ("cifar10_vgg", "cifar10_resnet18"):
        rows = read_table(dry / "tables" / f"05_pas_table1_table1_{task}.csv")
        assert {(r["periodic"], r["scheduler"], r["model"]) for r in rows} == \
            {(p, s, "final" if p == "No" else "ensemble") for p in ("No", "Yes") for s in ("Constant", "Cosine", "Linear")}
        columns = set(rows[0])
        assert any(c.startswith("Square") for c in columns) and any(c.startswith("APGD") for c in columns)
    text = _text(dry / "05_pas_table1.ipynb")
    for head in ("CIFAR10 VGG eps=8/255, periodic lr Yes, Cosine", "CIFAR10 ResNet18 eps=8/255, periodic lr No, Linear"):
        assert head in text
    assert "paper   " in text or "\npaper" in text
    nb = nbformat.read(dry / "05_pas_table1.ipynb", as_version=4)
    injected = next(c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "apgd_restarts = 5" in injected and "square_queries = 10" in injected


def test_fig2_on_cifar10_and_separation_on_cifar10(dry):
    assert list((dry / "figures").glob("02_gradient_dynamics_fig2_cifar10_resnet18.*"))
    claims = json.loads((dry / "claims" / "02_gradient_dynamics.json").read_text())["claims"]
    assert sum("(cifar10_resnet18)" in c["claim"] for c in claims) == 6
    assert "cifar10" in _text(dry / "07_local_lipschitzness.ipynb")


def test_03_04_06_ran_on_the_cifar10_zoo_with_its_settings(dry):
    """Fig 3 and Fig 11 (CIFAR10 ResNet18), Fig 4 with the CIFAR10 slide table's a, Fig 12, C.2.5's curves
    trained as the original README's CIFAR10 command: outputs/paper/tasks/cifar10_resnet18/."""
    task = dry / "tasks" / "cifar10_resnet18"
    for name in ("03_hessian", "04_cosine_similarity", "06_connectivity"):
        assert (task / f"{name}.ipynb").exists(), name
        assert json.loads((task / "claims" / f"{name}.json").read_text())["claims"], name
        params = json.loads((task / "params" / f"{name}.json").read_text())["params"]
        assert params["zoo"]["training"]["arch"] == "resnet18" and params["task"] == "cifar10_resnet18"
    for fig in ("03_hessian_fig3", "03_hessian_fig11", "03_hessian_fig12", "04_cosine_similarity_fig4"):
        assert list((task / "figures").glob(f"{fig}*")), fig
    injected = _injected(task / "04_cosine_similarity.ipynb")
    assert "a_values = [0.0, 0.1, 0.3, 0.5, 1.0]" in injected
    curves = [json.loads(p.read_text())["spec"] for p in (dry / "runs").glob("*/result.json")]
    curves = [c["training"] for c in curves if "start" in c]
    assert {(c["optimizer"], c["lr"]) for c in curves} == {("adam", 1e-4), ("sgd", 0.1)}    # MNIST, CIFAR10
    from landscape_core.report.claims import summarise
    assert "03_hessian [cifar10_resnet18]" in summarise(dry / "claims", "paper")


def test_fig11_and_the_lr_warmup_of_c23_ran(dry):
    names = {c["claim"].split(":")[0] for c in json.loads((dry / "claims" / "03_hessian.json").read_text())["claims"]}
    assert "Fig 11" in names
    claims = json.loads((dry / "claims" / "05_pas_table1.json").read_text())["claims"]
    assert any(c["claim"].startswith("App C.2.3") for c in claims)
    assert [s for s, _ in _runs(dry) if s.lr_schedule == "linear" and s.data.name == "mnist"]


def _injected(nb_path: Path) -> str:
    nb = nbformat.read(nb_path, as_version=4)
    return next(c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
