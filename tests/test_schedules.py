"""Tests of landscape_core.schedules: eq. (5) values, clipping, periods (PAS), epoch updates, step decay."""
import math

import numpy as np
import pytest

from landscape_core.report.plots import plot_schedule
from landscape_core.training.schedules import (ScheduleSpec, period_bounds, schedule_value,
                                      schedule_values)
from landscape_core.core.spec import ParameterError

MNIST_COS = dict(kind="cosine", value=0.4, v_min=0.0, v_max=0.6, epochs=100)
MNIST_LIN = dict(kind="linear", value=0.4, v_min=0.0, v_max=0.8, epochs=100)


def test_cosine_equals_eq5_at_hand_computed_points():
    s = ScheduleSpec(**MNIST_COS, update="batch")
    # eps_cos(d) = 1/2 (1 - cos(pi d / D)) (0.6 - 0) + 0, D = 100
    assert schedule_value(s, 0.0) == 0.0
    assert schedule_value(s, 25.0) == pytest.approx(0.3 * (1 - math.sqrt(0.5)), abs=1e-12)   # 0.0878680
    assert schedule_value(s, 50.0) == pytest.approx(0.3, abs=1e-12)
    assert schedule_value(s, 12.5) == pytest.approx(0.3 * (1 - math.cos(math.pi / 8)), abs=1e-12)
    assert schedule_value(s, 70.0) == 0.4          # raw 0.476 clipped at the target
    assert schedule_value(s, 100.0) == 0.4


def test_linear_equals_eq5_and_clips_at_target_and_zero():
    s = ScheduleSpec(**MNIST_LIN, update="batch")
    assert schedule_value(s, 25.0) == pytest.approx(0.2)
    assert schedule_value(s, 50.0) == pytest.approx(0.4)
    assert schedule_value(s, 75.0) == 0.4          # raw 0.6
    neg = ScheduleSpec(kind="linear", value=0.4, v_min=-0.2, v_max=0.6, epochs=100, update="batch")
    assert schedule_value(neg, 10.0) == 0.0        # raw -0.12 clipped at 0
    assert schedule_value(neg, 50.0) == pytest.approx(0.2)
    assert schedule_value(neg, 90.0) == 0.4        # raw 0.52
    negc = ScheduleSpec(kind="cosine", value=0.4, v_min=-0.2, v_max=0.6, epochs=100, update="batch")
    assert schedule_value(negc, 5.0) == 0.0        # raw -0.2 + 0.4 (1 - cos(pi/20)) < 0


def test_epoch_update_reaches_target_at_the_expected_epoch():
    # cosine: 0.3 (1 - cos(pi d / 100)) >= 0.4 first at d = 61; linear 0.008 d >= 0.4 first at d = 50
    cos = schedule_values(ScheduleSpec(**MNIST_COS), np.arange(100))
    lin = schedule_values(ScheduleSpec(**MNIST_LIN), np.arange(100))
    assert int(np.argmax(cos >= 0.4 - 1e-12)) == 61
    assert cos[60] == pytest.approx(0.3 * (1 + math.cos(0.4 * math.pi)))
    assert int(np.argmax(lin >= 0.4 - 1e-12)) == 50
    assert lin[49] == pytest.approx(0.392)
    assert np.all(np.diff(cos) >= 0) and np.all(np.diff(lin) >= 0)


def test_epoch_update_is_piecewise_constant():
    batch = ScheduleSpec(**MNIST_COS, update="batch")
    epoch = ScheduleSpec(**MNIST_COS, update="epoch")
    for k in (0, 3, 30, 57, 99):
        ts = k + np.linspace(0.0, 0.999, 7)
        vals = schedule_values(epoch, ts)
        assert np.all(vals == vals[0])
        assert vals[0] == schedule_value(batch, float(k))
    assert schedule_value(epoch, 30.9) != schedule_value(batch, 30.9)


def test_periodic_warmup_resets_at_period_boundaries():
    s = ScheduleSpec(kind="cosine", value=8 / 255, v_min=0.0, v_max=16 / 255, epochs=200,
                     resets=(100, 150), update="batch")
    assert period_bounds(s) == (0.0, 100.0, 150.0, 200.0)
    v0 = schedule_value(s, 0.0)
    assert schedule_value(s, 100.0) == v0 == schedule_value(s, 150.0) == 0.0
    assert schedule_value(s, 99.99) == pytest.approx(8 / 255)
    # period 2 has D = 50: t = 112.5 is r = 1/4
    assert schedule_value(s, 112.5) == pytest.approx(0.5 * (1 - math.sqrt(0.5)) * 16 / 255)
    assert schedule_value(s, 112.5) == pytest.approx(schedule_value(s, 162.5))   # period 3: D = 50, r = 1/4
    # first period has D = 100: same ratio 1/4 at t = 25
    assert schedule_value(s, 25.0) == pytest.approx(schedule_value(s, 162.5))
    lin = ScheduleSpec(kind="linear", value=0.3, v_min=0.0, v_max=0.6, epochs=30, resets=(10, 20), update="epoch")
    vals = schedule_values(lin, np.arange(30))
    assert np.allclose(vals[:10], vals[10:20]) and np.allclose(vals[10:20], vals[20:])
    assert vals[10] == vals[0] == 0.0


def test_step_decay_values():
    s = ScheduleSpec(kind="step", value=0.1, milestones=(0.5, 0.75), gamma=0.1, epochs=200, update="batch")
    got = schedule_values(s, [0.0, 99.9, 100.0, 149.99, 150.0, 199.5, 200.0])
    assert np.allclose(got, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.001], rtol=1e-12)
    periodic = ScheduleSpec(kind="step", value=0.1, milestones=(0.5,), gamma=0.2, epochs=200,
                            resets=(100, 150), update="epoch")
    got = schedule_values(periodic, [0, 49, 50, 99, 100, 124, 125, 149, 150, 174, 175, 199])
    assert np.allclose(got, [0.1, 0.1, 0.02, 0.02, 0.1, 0.1, 0.02, 0.02, 0.1, 0.1, 0.02, 0.02], rtol=1e-12)


def test_constant_and_cosine_anneal():
    c = ScheduleSpec(kind="constant", value=1e-4, epochs=10, resets=(5,))
    assert np.all(schedule_values(c, np.linspace(0, 10, 41)) == 1e-4)
    a = ScheduleSpec(kind="cosine_anneal", value=0.1, v_min=0.001, epochs=20, resets=(10,), update="batch")
    assert schedule_value(a, 0.0) == pytest.approx(0.1)
    assert schedule_value(a, 5.0) == pytest.approx(0.001 + 0.5 * 0.099)
    assert schedule_value(a, 9.999) == pytest.approx(0.001, abs=1e-6)
    assert schedule_value(a, 10.0) == pytest.approx(0.1)
    assert schedule_value(a, 20.0) == pytest.approx(0.001)


def test_vector_and_scalar_agree_and_end_of_schedule():
    s = ScheduleSpec(kind="cosine", value=0.4, v_min=0.0, v_max=0.45, epochs=10, update="batch")
    ts = np.array([[0.0, 1.3], [7.7, 10.0]])
    vals = schedule_values(s, ts)
    assert vals.shape == ts.shape and vals.dtype == np.float64
    assert all(vals[i, j] == schedule_value(s, ts[i, j]) for i in range(2) for j in range(2))
    assert schedule_value(s, 10.0) == 0.4 and schedule_value(s, 12.0) == 0.4   # past the end: r = 1
    with pytest.raises(ValueError):
        schedule_value(s, -0.5)
    with pytest.raises(ValueError):
        schedule_values(s, [1.0, float("nan")])


@pytest.mark.parametrize("params, name", [
    (dict(kind="cosine", value=0.4, v_min=0.5, v_max=0.3), "v_max"),
    (dict(kind="linear", value=0.4, v_min=0.5), "v_max"),                  # v_max defaults to value
    (dict(kind="constant", value=-0.1), "value"),
    (dict(kind="warmup", value=0.1), "kind"),
    (dict(kind="step", value=0.1, gamma=-1.0), "gamma"),
    (dict(kind="step", value=0.1, milestones=(0.5, 1.5)), "milestones[1]"),
    (dict(kind="step", value=0.1, milestones=(0.7, 0.5)), "milestones"),
    (dict(kind="cosine", value=0.1, epochs=0), "epochs"),
    (dict(kind="cosine", value=0.1, epochs=100, resets=(150,)), "resets"),
    (dict(kind="cosine", value=0.1, epochs=100, resets=(60, 40)), "resets"),
    (dict(kind="cosine", value=0.1, epochs=100, resets=(-5,)), "resets[0]"),
    (dict(kind="cosine_anneal", value=0.1, v_min=0.2), "v_min"),
    (dict(kind="cosine_anneal", value=0.1, v_min=-0.01), "v_min"),
    (dict(kind="constant", value=0.1, update="iteration"), "update"),
])
def test_validation_errors(params, name):
    with pytest.raises(ParameterError) as err:
        ScheduleSpec(**params)
    assert err.value.name == name


def test_v_max_below_v_min_is_fine_where_it_does_not_matter():
    ScheduleSpec(kind="constant", value=0.1, v_min=0.5, v_max=0.2)
    with pytest.raises(ParameterError):
        ScheduleSpec.from_params(dict(kind="cosine", value=0.1, epoch=10))      # misspelt name


def test_plot_schedule_draws_the_values():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = ScheduleSpec(kind="cosine", value=8 / 255, v_max=16 / 255, epochs=20, resets=(10, 15), update="batch")
    fig, ax = plt.subplots()
    try:
        line = plot_schedule(ax, s, label="cos", points_per_epoch=4)
        xs, ys = line.get_xdata(), line.get_ydata()
        assert xs[0] == 0.0 and xs[-1] == 20.0 and len(xs) == 81
        assert np.allclose(ys, schedule_values(s, xs))
        assert line.get_label() == "cos"
        step = plot_schedule(ax, s.replace(update="epoch"))
        assert step.get_drawstyle() == "steps-post"
    finally:
        plt.close(fig)
