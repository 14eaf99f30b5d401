"""The per-section study helpers: ε-model specs, probe windows, stall detection, PAS specs,
curvature experiments and curve connection on tiny models."""
import numpy as np
import pytest
import torch

from landscape_core import curvature, dynamics, pas
from landscape_core.curves import CurveTrainSpec, connect
from landscape_core.experiments import GradientDynamicsParams, PASParams
from landscape_core.runs import get_or_train
from landscape_core.schedules import schedule_value
from landscape_core.spec import ParameterError


def test_eps_specs_share_everything_but_the_budget():
    P = GradientDynamicsParams()
    specs = dynamics.eps_specs(P)
    assert list(specs) == list(P.eps_list)
    assert specs[0.0].attack.name == "none"
    s = specs[0.4]
    assert s.attack.name == "pgd" and s.attack.step_size == pytest.approx(P.step_ratio * 0.4)
    assert s.replace(attack=specs[0.2].attack) == specs[0.2]
    assert len({sp.digest() for sp in specs.values()}) == len(specs)


def test_windows_and_rank_correlation():
    probes = {"grad_norm": np.arange(10.0), "robust_err": np.linspace(1, 0, 10), "dist": np.arange(1.0, 11.0)}
    w = dynamics.windows(0.1, probes, first_n=4, last_n=2)
    assert w.early_grad == pytest.approx(1.5) and w.late_grad == pytest.approx(8.5)
    assert w.dist_at_n == 4.0 and w.final_dist == 10.0
    assert dynamics.rank_correlation([0, 1, 2], [3, 2, 1]) == pytest.approx(-1.0)


def test_pas_specs_follow_the_paper():
    P = PASParams(epochs=10, periods=2, lrs=(1.0e-3,), table_lr=1.0e-3)
    cos = pas.run_spec(P, "cosine", 1e-3, 0)
    lin = pas.run_spec(P, "linear", 1e-3, 0)
    assert cos.eps_max == pytest.approx(0.6) and lin.eps_max == pytest.approx(0.8)   # MNIST settings
    assert schedule_value(cos.eps_spec, 0.0) == 0.0 and schedule_value(cos.eps_spec, 9.9) == pytest.approx(0.4)
    assert schedule_value(lin.eps_spec, 2.5) == pytest.approx(0.8 * 2.5 / 10)
    per = pas.run_spec(P, "cosine", 1e-3, 0, periodic=True)
    assert per.periodic == (5.0,) and per.snapshots == (5, 10)
    assert schedule_value(per.eps_spec, 5.0) == 0.0                                # ε restarts
    assert len(pas.grid(P)) == 3 * P.seeds
    with pytest.raises(ParameterError, match="table_lr"):
        PASParams(lrs=(1.0e-3,), table_lr=1.0e-2)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    P = GradientDynamicsParams(n_train=100, width=1, epochs=1, pgd_steps=2)
    from landscape_core.data import load_data
    data = load_data(dynamics.eps_spec(P, 0.2).data)
    run = get_or_train(dynamics.eps_spec(P, 0.2), tmp_path_factory.mktemp("store"), data=data)
    return P, run, data


def test_stall_reads_predictions_and_probes(tiny_run):
    P, run, data = tiny_run
    s = dynamics.stall(run, data[0].x, batches_per_epoch=1)
    assert s.width == 1 and 0.0 <= s.dead_fraction <= 1.0 and 0.0 <= s.robust_err <= 1.0
    model = run.model()
    with torch.no_grad():
        pred = model(data[0].x).argmax(1)
    assert s.constant == bool((pred == pred[0]).all())


def test_spectrum_is_normalised_by_the_random_parameter_loss(tiny_run):
    P, run, data = tiny_run
    x, y = data[0].x[:40], data[0].y[:40]
    s = curvature.spectrum(run.model(), x, y, 0.2, steps=2, step_ratio=0.5, k=3, n_random=2, seed=0)
    assert s.values.shape == (3,) and np.all(np.diff(s.values) <= 1e-9)
    assert np.allclose(s.normalised, s.values / s.scale) and s.scale == pytest.approx(s.scale_samples.mean())
    again = curvature.spectrum(run.model(), x, y, 0.2, steps=2, step_ratio=0.5, k=3, n_random=2, seed=0)
    assert np.allclose(s.values, again.values, rtol=1e-6)                         # deterministic


def test_similarity_compares_eigenvector_and_random(tiny_run):
    P, run, data = tiny_run
    x, y = data[0].x[:30], data[0].y[:30]
    res = curvature.similarity(run.model(), x, y, x, y, 0.2, steps=2, step_ratio=0.5, a_values=(0.0, 0.5),
                               repeats=1, seed=0)
    assert set(res) == {"Eigenvector", "Random"}
    for r in res.values():
        assert r.cosine_mean[0] == pytest.approx(r.baseline_mean)
        assert -1.0 <= r.cosine_mean[-1] <= 1.0


def test_connect_scans_line_and_curve_with_exact_end_points(tiny_run):
    P, run, data = tiny_run
    a, b = run.model("init"), run.model()
    x, y = data[0].x[:60], data[0].y[:60]
    res = connect(a, b, x, y, x, y, CurveTrainSpec(epochs=1, batch_size=30, lr=1e-3, optimizer="adam"),
                  ts=(0.0, 0.5, 1.0))
    for name in ("line", "curve"):
        sc = res[name]
        assert sc.clean_loss.shape == (3,) and sc.adv_loss is None
    assert res["line"].clean_loss[0] == pytest.approx(res["curve"].clean_loss[0])
    assert res["line"].clean_loss[-1] == pytest.approx(res["curve"].clean_loss[-1])
