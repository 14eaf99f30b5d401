"""Issue 26, item 11: the Table 1 assembly of notebook 05 (``pas.run``, ``table_models``, ``attack_grid``,
``scheduler_means``, ``run_tasks``) against tables computed here by hand from the run store's models."""
import numpy as np
import pytest
import torch

from landscape_core.analysis.dynamics import Health
from landscape_core.analysis.robustness import Ensemble, evaluate
from landscape_core.data import load_data
from landscape_core.studies import PASParams
from landscape_core.studies import pas
from landscape_core.training import get_or_train

TRAINED = Health(width=1, constant=False, dead_fraction=0.0, robust_err=0.4, late_fall=0.0, total_fall=0.5)
SMALL = dict(training=dict(n_train=100, width=1, epochs=2, pgd_steps=1), n_test=20, lrs=[1e-3, 1e-2], seeds=2,
             periods=2, lr_warmup=0.0, attacks=["PGD", "PGD100"], pgd100_steps=2, eval_batch_size=10,
             attack_grid=dict(steps=2, step_ratios=[0.25, 0.5], restarts=2, l2_eps=[1.0], l2_steps=2),
             masking=dict(n_examples=10, iterations=[1, 2, 3], sweep_steps=2, square_queries=5))


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    P = PASParams.from_params(SMALL)
    data = load_data(P.training.data_spec())
    store = tmp_path_factory.mktemp("store")
    return P, data, store, pas.run(P, store, data=data)


def by_hand(P, model, data, attacks):
    x, y = data[1].x[: P.n_test], data[1].y[: P.n_test]
    return evaluate(model, x, y, attacks, batch_size=P.eval_batch_size, seed=P.seed).row()


def test_table1_rows_are_the_stores_models_under_the_suite(table):
    P, data, store, result = table
    suite = P.suite()
    want = []
    for s in pas.SCHEDULERS:                       # each scheduler's final model at the Table 1 lr, per seed
        for k in (0, 1):
            model = get_or_train(pas.run_spec(P, s, P.table_lr, k), store).model()
            want.append({"periodic": "No", "scheduler": s.capitalize(), "model": "final", "seed": k,
                         **by_hand(P, model, data, suite)})
    for k in (0, 1):                               # PAS: the last period end alone, then the ensemble of both
        members = get_or_train(pas.run_spec(P, "cosine", P.table_lr, k, periodic=True), store).snapshots()
        assert len(members) == 2
        for label, model in (("final member", members[-1]), ("ensemble", Ensemble(members))):
            want.append({"periodic": "Yes", "scheduler": "Cosine", "model": label, "seed": k,
                         **by_hand(P, model, data, suite)})
    assert [list(r) for r in result.rows] == [list(r) for r in want]                  # columns, in order
    assert result.rows == want
    assert [m.label for m in result.models] == ["constant seed=0", "constant seed=1", "cosine seed=0", "cosine seed=1",
                                                "linear seed=0", "linear seed=1", "PAS final member seed=0",
                                                "PAS ensemble seed=0", "PAS final member seed=1", "PAS ensemble seed=1"]
    assert result.row_health[6] is result.row_health[7]                               # one PAS run, one health


def test_fig5_is_the_mean_and_std_over_seeds_of_each_cells_pgd_error(table):
    P, data, store, result = table
    suite = P.suite()
    for s in pas.SCHEDULERS:
        for lr in P.lrs:
            errs = [by_hand(P, get_or_train(pas.run_spec(P, s, lr, k), store).model(), data,
                            {"PGD": suite["PGD"]})["PGD"] for k in (0, 1)]
            mean, std = result.fig5[s][lr]
            assert mean == pytest.approx(np.mean(errs), abs=1e-9) and std == pytest.approx(np.std(errs, ddof=1), abs=1e-9)
    assert set(result.cells()) == {f"{s} lr={lr:g} seed={k}" for s in pas.SCHEDULERS for lr in P.lrs for k in (0, 1)}
    assert result.fig5_means()["linear"][1e-2] == result.fig5["linear"][1e-2][0]


def test_attack_grid_and_masking_read_the_same_models(table):
    P, data, store, result = table
    rows = pas.attack_grid(P, result.models, store, data=data)
    assert [r["model"] for r in rows] == [m.label for m in result.models]
    linf = [c for c in rows[0] if c.startswith("PGD") and c not in ("PGD",) and "L2" not in c]
    for r, m in zip(rows, result.models):
        assert r["PGD"] == pytest.approx(result.results[result.models.index(m)]["PGD"], abs=1e-9)   # same attack
        assert r["grid worst"] >= max(r[c] for c in ["PGD", *linf]) - 1e-9
        assert r["end of training"] == m.health.state()
    flags = pas.masking(P, result.models, data=data)
    assert [f.label for f in flags] == [m.label for m in result.models]


def test_scheduler_means_average_the_final_models_of_each_scheduler_by_hand():
    models = [pas.Evaluated(s, False, "final", k, None, TRAINED) for s in pas.SCHEDULERS for k in (0, 1)]
    models += [pas.Evaluated("cosine", True, kind, 0, None, TRAINED) for kind in ("final member", "ensemble")]
    rows = [{"model": m.label, "grid worst": v} for m, v in zip(models, [10, 20, 30, 50, 5, 6, 1, 2])]
    assert pas.scheduler_means(models, rows, "grid worst") == {"constant": 15.0, "cosine": 40.0, "linear": 5.5}


def test_a_tasks_rows_means_and_run_labels_by_hand():
    task = pas.Table1Task(name="t")
    models = [pas.Evaluated(s, p, "ensemble" if p else "final", k, None, TRAINED, "t")
              for p in (False, True) for s in pas.SCHEDULERS for k in (0, 1)]
    results = [{"Clean": float(i), "PGD": 10.0 * i} for i in range(len(models))]
    r = pas.TaskResult(task, models, results)
    assert r.rows[0] == {"periodic": "No", "scheduler": "Constant", "model": "final", "seed": 0, "Clean": 0.0, "PGD": 0.0}
    assert r.rows[-1] == {"periodic": "Yes", "scheduler": "Linear", "model": "ensemble", "seed": 1, "Clean": 11.0,
                          "PGD": 110.0}
    assert r.mean(False, "cosine") == 25.0 and r.mean(True, "linear", "Clean") == 10.5
    assert np.isnan(r.mean(True, "none"))
    assert list(r.runs(True, "cosine")) == ["t Cosine periodic=Yes seed=0", "t Cosine periodic=Yes seed=1"]
    assert len(r.runs()) == 12


def test_run_tasks_evaluates_each_tasks_final_models_and_ensembles(tmp_path):
    P = PASParams.from_params({**SMALL, "seeds": 1, "tasks": [
        {"name": "mini", "training": dict(n_train=100, width=1, epochs=2, pgd_steps=1, dataset="mnist5k"),
         "eps": 0.3, "resets": [1.0], "lr_schedule": "constant", "lr_milestones": []}]})
    [res] = pas.run_tasks(P, tmp_path)
    task = P.tasks[0]
    data = load_data(task.training.data_spec())
    x, y = data[1].x[: P.n_test], data[1].y[: P.n_test]
    assert [(m.periodic, m.scheduler, m.kind) for m in res.models] == [
        (p, s, "ensemble" if p else "final") for p in (False, True) for s in pas.SCHEDULERS]
    for m, row in zip(res.models, res.rows):
        run = get_or_train(pas.task_spec(task, m.scheduler, 0, m.periodic), tmp_path)
        model = Ensemble(run.snapshots()) if m.periodic else run.model()
        want = evaluate(model, x, y, P.suite(task), batch_size=P.eval_batch_size, seed=P.seed).row()
        assert {k: v for k, v in row.items() if k not in ("periodic", "scheduler", "model", "seed")} == want
    torch.testing.assert_close(torch.tensor(res.mean(True, "cosine")), torch.tensor(res.rows[4]["PGD"]))
