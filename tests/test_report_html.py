"""The HTML report (without a browser) and the diagnose command on a small model."""
import json
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
import torch
from torch import nn

from landscape_core.cli.main import main
from landscape_core.core.io import save_figure, save_json
from landscape_core.analysis.dynamics import Health
from landscape_core.report.claims import Claims
from landscape_core.report.html import build, claim_cells, run_inventory, table_html




KINK = "Sec 3.2 / Fig 1: g_eps has a kink at theta = 0 that sharpens as eps grows"
ZERO = "Fig 2d: without attack the late gradient is almost zero"


def _outputs(root: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 09 test"),
                nbformat.v4.new_code_cell('claims.test("fig1_kink", jumps, 1.0)'),
                nbformat.v4.new_code_cell("claims.report(out.claims)")]
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"[untestable] P2. {ZERO}\n")]
    nbformat.write(nb, str(root / "09_test.ipynb"))
    c = Claims("09_test", "smoke")
    c.test("fig1_kink", {0.6: 0.6, 1.2: 1.2})
    plateau = Health(width=4, constant=True, dead_fraction=1.0, robust_err=0.9)
    c.test("fig2d_zero", [0.0, 0.1], [0.01, 1.0], {0.0: plateau, 0.1: plateau})
    c.save(root / "claims")
    fig = plt.figure()
    fig.gca().plot([0, 1])
    (root / "figures").mkdir()
    save_figure(fig, root / "figures" / "09_test_line")
    (root / "tables").mkdir()
    (root / "tables" / "09_test_table1.csv").write_text("model,Clean\nours,1.5\n")


def test_build_links_claims_to_cells_and_embeds_everything(tmp_path):
    _outputs(tmp_path)
    store = tmp_path / "runs"
    save_json(store / "v1-abc" / "result.json", {"digest": "abc", "spec": {"model": {"arch": "lenet", "width": 4},
              "attack": {"eps": 0.3}, "data": {"name": "mnist5k"}}, "epochs_done": 2, "seconds": 3.5,
              "device": "cpu", "precision": "fp32"})
    index = build(tmp_path, store, "test report")
    text = index.read_text()
    ids = claim_cells(tmp_path / "09_test.ipynb", [{"claim": KINK, "key": "fig1_kink"}, ZERO])
    cells = nbformat.read(str(tmp_path / "09_test.ipynb"), as_version=4).cells
    assert ids == {KINK: cells[1].id, ZERO: cells[2].id}
    assert f'notebooks/09_test.html#cell-id={cells[1].id}' in text
    assert f'id="cell-id={cells[1].id}"' in (tmp_path / "report" / "notebooks" / "09_test.html").read_text()
    assert text.count("data:image/png;base64,") == 1 and "http" not in text.split("<body>")[1].replace("https://", "")
    assert "2 paper claims: 1 holds, 0 fail, 1 untestable" in text and "not met:</b> eps=0: constant classifier" in text
    assert "<details><summary>Liu et al. 2020, Sec 3.2 (Fig 1)</summary><q>as the light blue band" in text
    assert "the paper's Table 1" in text and "15.18(155)" in text          # beside our table1
    assert run_inventory(store)[0]["model"] == "lenet-4" and "1 runs, 0.1 min" in text


def test_table_html_formats_numbers_and_escapes_text():
    html = table_html([{"a": 1.23456, "b": "<x>", "c": "7", "d": True}])
    assert "<td>1.23</td>" in html and "&lt;x&gt;" in html and "<td>7</td>" in html and "True" in html


def test_report_command_rejects_an_empty_profile(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANDSCAPE_ROOT", str(tmp_path))
    assert main(["report", "--profile", "paper"]) == 2
    assert "nothing to report" in capsys.readouterr().err
    assert not (tmp_path / "outputs" / "paper" / "report").exists()


def test_diagnose_rejects_bad_input_before_any_compute(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["diagnose", "--state-dict", str(tmp_path / "missing.pt"), "--arch", "lenet", "--width", "2",
                 "--out", str(out)]) == 2
    assert main(["diagnose", "--run", "abc", "--state-dict", "x.pt", "--out", str(out)]) == 2
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "w.pt")
    assert main(["diagnose", "--state-dict", str(tmp_path / "w.pt"), "--arch", "lenet", "--width", "2",
                 "--out", str(out)]) == 2
    assert "does not fit lenet-2" in capsys.readouterr().err
    from landscape_core.models.networks import build_model
    torch.save(build_model("lenet", 2).state_dict(), tmp_path / "lenet2.pt")
    assert main(["diagnose", "--state-dict", str(tmp_path / "lenet2.pt"), "--arch", "lenet", "--width", "2",
                 "--set", "eps=-1", "--out", str(out)]) == 2
    assert "eps" in capsys.readouterr().err
    assert not out.exists()


def test_diagnose_a_small_model_writes_its_page(tmp_path):
    from landscape_core.models.networks import build_model
    from landscape_core.report.diagnosis import diagnose
    from landscape_core.studies.diagnose import DiagnoseParams
    torch.manual_seed(0)
    model = build_model("lenet", 1)
    torch.save(model.state_dict(), tmp_path / "lenet1.pt")
    small = {"eps": 0.1, "n_test": 40, "pgd_steps": 3, "pgd100_steps": 5, "apgd_steps": 5, "square_queries": 20,
             "attack_grid": {"steps": 3, "restarts": 2, "l2_eps": [1.0], "l2_steps": 3},
             "masking": {"n_examples": 20, "iterations": [2, 5, 10], "sweep_steps": 3, "square_queries": 20},
             "hessian_examples": 30, "k": 2, "n_random": 1, "trace_samples": 3, "slq_steps": 5, "layer_steps": 3,
             "cosine_examples": 20, "repeats": 1, "lipschitz_steps": 2}
    d, page = diagnose(model, DiagnoseParams.from_params(small), tmp_path / "out")
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 2
    assert "gradient-masking check" in text and "top Hessian eigenvalues" in text and "local Lipschitz" in text
    assert len(d.eigenvalues) == 2 and d.scale > 0 and d.lipschitz > 0
    assert d.eigen_batches.shape == (3, 2) and np.allclose(d.eigenvalues, d.eigen_batches.mean(axis=0))   # PyHessian #5
    # each batch's values are eigenpairs of the Hessian on ITS fixed adversarial set (batch b: training images
    # 30 b .. 30 b + 29), not of the clean loss nor of another batch, and the page shows them
    from landscape_core.analysis.hessian import hvp
    from landscape_core.data import load_data, DatasetSpec
    train = load_data(DatasetSpec(name="mnist5k"))[0]
    for b, s in enumerate(d.spectra):
        y = train.y[30 * b:30 * (b + 1)]
        assert float((s.x_adv - train.x[30 * b:30 * (b + 1)]).abs().max()) <= 0.1 + 1e-6      # within eps
        for lam, v in zip(s.values, s.vectors):
            v = torch.from_numpy(np.ascontiguousarray(v))
            assert (hvp(model, s.x_adv, y, v) - lam * v).norm() < 2e-2 * abs(lam)
        v = torch.from_numpy(np.ascontiguousarray(s.vectors[0]))
        assert (hvp(model, train.x[30 * b:30 * (b + 1)], y, v) - s.values[0] * v).norm() > 0.05 * abs(s.values[0])
    assert d.normalised[0] == pytest.approx(d.eigenvalues[0] / d.scale)
    assert "std over batches" in text and "3 x 30" in text
    from landscape_core.report.diagnosis import RULES, checks
    assert tuple(c.key for c in checks(d)) == RULES
    assert {c.key: c.verdict for c in checks(d)}["transfer_vs_white"] == "untestable"      # no surrogate
    assert d.detail.n_hvp > 0 and "HVP passes" in text
    rc = main(["diagnose", "--state-dict", str(tmp_path / "lenet1.pt"), "--arch", "lenet", "--width", "1",
               "--out", str(tmp_path / "cli")] + [f"--set={k}={json.dumps(v)}" for k, v in small.items()])
    assert rc == 0 and (tmp_path / "cli" / "index.html").exists()
