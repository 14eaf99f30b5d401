"""The notebooks' interactive views (02, 04-07): each redraws from what its notebook computed, a different
figure for a different control value, on synthetic inputs of the types the notebooks pass (no timing
here: how fast a control redraws in Lab is measured by the browser test's run, not asserted)."""
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from landscape_core.analysis.curves import PathScan  # noqa: E402
from landscape_core.analysis.dynamics import Health  # noqa: E402
from landscape_core.analysis.similarity import SimilarityResult  # noqa: E402
from landscape_core.core.spec import ParameterError  # noqa: E402
from landscape_core.report import plots, views  # noqa: E402
from landscape_core.studies.connectivity import Connection  # noqa: E402
from landscape_core.studies.local_lipschitzness import MethodResult  # noqa: E402

def _drawn(view, **kw) -> tuple:
    """What ``view`` draws (plt.show is a no-op under Agg): every line's data, every bar's height and every
    title, with the rendered canvas."""
    plt.close("all")
    view(**kw)
    fig = plt.gcf()
    fig.canvas.draw()
    content = tuple(tuple(tuple(np.round(np.asarray(line.get_xydata(), dtype=float), 6).ravel())
                          for line in ax.get_lines()) for ax in fig.axes)
    bars = tuple(tuple(round(p.get_height(), 6) for p in ax.patches) for ax in fig.axes)
    titles = tuple(ax.get_title() for ax in fig.axes)
    canvas = bytes(fig.canvas.buffer_rgba())
    plt.close("all")
    return content, bars, titles, canvas


def _differ(a: tuple, b: tuple) -> bool:
    """Different figures: different data or titles, and different pixels."""
    return a[:3] != b[:3] and a[3] != b[3]


def _health(robust_err: float = 0.3) -> Health:
    return Health(width=2, constant=False, dead_fraction=0.0, robust_err=robust_err)


@pytest.fixture(autouse=True, scope="module")
def _warm():
    """The first figure of a process pays for fonts and mathtext: not a redraw."""
    plots.fig1_view(x=1.0, eps=0.5, n_grid=11)
    plt.close("all")


def test_dynamics_view_follows_budget_and_window():
    g = np.random.default_rng(0)
    probes = {e: {k: np.abs(g.normal(1 + e, 0.1, 60)) for k in ("grad_norm", "robust_err", "dist")}
              for e in (0.0, 0.2, 0.4)}
    kw = dict(probes=probes, first_n=10, last_n=12, smooth=2)
    every = _drawn(views.dynamics_view, **kw, eps="all", window="first")
    one = _drawn(views.dynamics_view, **kw, eps=0.2, window="first")
    last = _drawn(views.dynamics_view, **kw, eps="all", window="last")
    assert _differ(every, one) and _differ(every, last)
    assert [len(lines) for lines in one[0]] == [1, 1, 1]                # one budget: one line per panel
    assert len(every[0][0]) == 3
    steps = np.asarray(last[0][2][0]).reshape(-1, 2)[:, 0]              # distance, not smoothed: updates 49-60
    assert steps[0] == 49 and steps[-1] == 60
    with pytest.raises(ParameterError):
        views.dynamics_view(**kw, window="middle")


def _similarity(slope: float, a_values) -> SimilarityResult:
    err = np.stack([0.2 + slope * a_values] * 2)
    return SimilarityResult(a_values=a_values, cosine_runs=np.stack([1 - 5 * slope * a_values] * 2),
                            error_plus_runs=err, error_minus_runs=err, baseline_runs=np.ones(2),
                            baseline_error_runs=np.full(2, 0.2), error_set="test", seeds=np.zeros((2, 2)))


def test_similarity_view_follows_a():
    a_values = np.array([0.0, 0.05, 0.1])
    results = {e: {"Eigenvector": _similarity(k, a_values), "Random": _similarity(0.1, a_values)}
               for e, k in ((0.2, 1.0), (0.4, 1.5))}
    at0, at1 = (_drawn(views.similarity_view, results=results, a=a) for a in (0.0, 0.1))
    assert _differ(at0, at1)
    assert _drawn(views.similarity_view, results=results, a=0.09)[:3] == at1[:3]    # snaps to a computed a
    assert "a = 0.1" in at1[2][0]
    _drawn(views.similarity_view, results={}, a=0.0)                    # no model analysed: empty panels


def test_fig5_view_follows_scheduler_and_lr():
    lrs = [1e-4, 1e-3, 1e-2]
    table = {s: {lr: (40 + i * 5 + 1000 * lr, 1.0) for lr in lrs}
             for i, s in enumerate(("constant", "cosine", "linear"))}
    kw = dict(table=table, lrs=lrs)
    every = _drawn(views.fig5_view, **kw, scheduler="all", lr=1e-4)
    assert _differ(every, _drawn(views.fig5_view, **kw, scheduler="cosine", lr=1e-4))
    other = _drawn(views.fig5_view, **kw, scheduler="all", lr=1e-3)
    assert _differ(every, other)
    assert "cosine 46.0%" in other[2][0]


def _connection(eps: float, ts, bump: float) -> Connection:
    line = PathScan(ts, bump * ts * (1 - ts), ts / 2, 1 + bump * ts * (1 - ts), ts / 3)
    curve = PathScan(ts, 0.1 * ts * (1 - ts), ts / 4, 1 + 0.1 * ts * (1 - ts), ts / 5)
    return Connection(eps, (_health(), _health()), None, {}, line, curve)


def test_path_view_follows_t():
    ts = np.linspace(0, 1, 5)
    paths = {0.0: _connection(0.0, ts, 2.0), 0.4: _connection(0.4, ts, 3.0)}
    start, middle = (_drawn(views.path_view, paths=paths, t=t) for t in (0.0, 0.5))
    assert _differ(start, middle)
    assert _drawn(views.path_view, paths=paths, t=0.55)[:3] == middle[:3]      # snaps to a computed t
    assert middle[2][0].startswith("t = 0.50")


def test_methods_view_follows_method_and_eps():
    h = _health()
    rows = [MethodResult(m, e, 10 + i + 10 * e, {"PGD": 50 + i, "APGD-CE": 52 + i}, 1.0 + i, 1.1 + i + e, h)
            for e in (0.1, 0.4) for i, m in enumerate(("natural", "AT", "TRADES beta=6"))]
    at = _drawn(views.methods_view, rows=rows, method="AT", eps=0.1)
    assert _differ(at, _drawn(views.methods_view, rows=rows, method="natural", eps=0.1))
    assert _differ(at, _drawn(views.methods_view, rows=rows, method="AT", eps=0.4))
    missing = _drawn(views.methods_view, rows=rows, method="TRADES beta=1", eps=0.1)   # not trained there
    assert "was not trained" in missing[2][0]
