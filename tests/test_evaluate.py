"""Tests of landscape_core.evaluate: the Table 1 suite, worst case, RNG hygiene, ensembles and tables.

A small MLP trained on three noisy 1x8x8 templates gives the attacks something to do; APGD and Square
run with few iterations / queries to keep the file fast.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from landscape_core.attacks import AttackSpec
from landscape_core.analysis.robustness import (TABLE1_ATTACKS, TABLE1_COLUMNS, Ensemble, EvalResult, EvalSpec,
                                                evaluate, paper_attacks)
from landscape_core.analysis.stats import mean_std
from landscape_core.report.paper import (PAPER_TABLE1, compare_with_paper, paper_format, paper_row, paper_task,
                                         parse_paper_format)
from landscape_core.report.tables import format_table, read_table, results_table, write_table
from landscape_core.core.spec import ParameterError

K = 3
EPS = 0.11   # PGD-10 breaks about 60% of the test points of the fixture's first model


def _data(templates, n, g):
    y = torch.randint(0, K, (n,), generator=g)
    return (0.5 * templates[y] + 0.5 * torch.rand(n, 1, 8, 8, generator=g)).clamp(0, 1), y


def _train(seed: int, x, y, steps: int = 60) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, K))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    return model.eval()


@pytest.fixture(scope="module")
def problem():
    """Two MLPs trained (different inits) on 3 noisy templates, and 60 test points."""
    g = torch.Generator().manual_seed(0)
    templates = torch.rand(K, 1, 8, 8, generator=g)
    x, y = _data(templates, 256, g)
    xt, yt = _data(templates, 60, g)
    return _train(0, x, y), _train(1, x, y), xt, yt


def small_suite(eps: float = EPS, attacks=TABLE1_ATTACKS):
    train = AttackSpec(name="pgd", eps=eps, steps=10, step_size=eps / 4)
    return paper_attacks("mnist", eps, train, attacks=attacks, pgd100_steps=20, pgd100_step_size=eps / 8,
                         apgd_steps=20, apgd_restarts=1, square_queries=60)


# --- the suite ---------------------------------------------------------------------------------------
def test_paper_attacks_settings():
    mnist = paper_attacks("mnist", 0.4)
    assert tuple(mnist) == TABLE1_ATTACKS
    assert (mnist["PGD"].name, mnist["PGD"].steps, mnist["PGD"].step_size, mnist["PGD"].eps) == ("pgd", 50, 0.01, 0.4)
    assert (mnist["PGD100"].steps, mnist["PGD100"].step_size) == (100, 0.01)
    for name, loss in (("APGD100-CE", "apgd-ce"), ("APGD100-DLR", "apgd-dlr")):
        a = mnist[name]
        assert (a.name, a.steps, a.rho, a.restarts, a.eps) == (loss, 100, 0.75, 5, 0.4)
    sq = mnist["Square5K"]
    assert (sq.name, sq.n_queries, sq.p_init, sq.eps) == ("square", 5000, 0.8, 0.4)
    cifar = paper_attacks("cifar10", 8 / 255)
    assert (cifar["PGD"].steps, cifar["PGD"].step_size) == (10, 2 / 255)
    assert (cifar["PGD100"].steps, cifar["PGD100"].step_size) == (100, 1 / 255)
    # the training attack's own settings are kept (start, step), at the evaluation eps
    train = AttackSpec(name="pgd", eps=0.3, steps=7, step_size=0.02, random_start="step")
    s = paper_attacks("mnist5k", 0.4, train, attacks=("PGD100", "PGD"), pgd100_steps=9, square_queries=3)
    assert tuple(s) == ("PGD100", "PGD")
    assert (s["PGD"].eps, s["PGD"].steps, s["PGD"].step_size, s["PGD"].random_start) == (0.4, 7, 0.02, "step")
    assert (s["PGD100"].steps, s["PGD100"].random_start) == (9, "step")


@pytest.mark.parametrize("params, name", [(dict(attacks=("PGD", "FGSM")), "attacks[1]"),
                                          (dict(attacks=("PGD", "PGD")), "attacks"),
                                          (dict(batch_size=0), "batch_size"), (dict(n_examples=0), "n_examples"),
                                          (dict(square_queries=0), "square_queries")])
def test_eval_spec_validation(params, name):
    with pytest.raises(ParameterError) as err:
        EvalSpec.from_params(params)
    assert err.value.name == name


def test_eval_spec_suite_and_subset():
    spec = EvalSpec(attacks=("Square5K", "APGD100-CE"), apgd_steps=7, apgd_restarts=1, square_queries=11,
                    n_examples=3)
    suite = spec.suite("cifar10", 8 / 255)
    assert tuple(suite) == ("Square5K", "APGD100-CE")
    assert (suite["Square5K"].n_queries, suite["APGD100-CE"].steps, suite["APGD100-CE"].restarts) == (11, 7, 1)
    x, y = torch.arange(10.0), torch.arange(10)
    xs, ys = spec.select(x, y)
    assert xs.tolist() == [0.0, 1.0, 2.0] and ys.tolist() == [0, 1, 2]
    with pytest.raises(ParameterError):
        EvalSpec(n_examples=11).select(x, y)
    with pytest.raises(ParameterError):
        paper_attacks("imagenet", 0.1)


# --- evaluation --------------------------------------------------------------------------------------
def test_apgd_ce_at_least_as_strong_as_pgd10(problem):
    model, _, x, y = problem
    res = evaluate(model, x, y, small_suite(attacks=("PGD", "APGD100-CE")), batch_size=20)
    err = res.robust_error
    assert 0.1 < err["PGD"] < 1.0, err          # the attacks have something to do
    assert err["APGD100-CE"] >= err["PGD"] - 0.05


def test_worst_case_is_the_or_of_the_masks(problem):
    model, _, x, y = problem
    y = y.clone()
    y[:5] = (y[:5] + 1) % K                      # wrong labels: clean errors the worst case must include
    res = evaluate(model, x, y, small_suite(), batch_size=20)
    assert tuple(res.wrong) == TABLE1_ATTACKS and res.n == len(y)
    assert res.clean_wrong[:5].all() and 0 < res.clean_error < res.worst_error < 1
    assert all(m.dtype == torch.bool and m.shape == (len(y),) for m in res.wrong.values())
    assert res.worst_wrong[:5].all()
    # an "attack" that undoes mistakes (returns an input the model assigns to the given label): the worst
    # case still counts the clean mistakes it hid
    with torch.no_grad():
        pred = model(x).argmax(1)
    bank = {k: x[pred == k][0] for k in range(K)}
    undo = evaluate(model, x, y, {"undo": lambda m, xb, yb, generator=None: torch.stack([bank[int(k)] for k in yb])},
                    batch_size=20)
    assert undo.robust_error["undo"] == 0.0 and undo.clean_wrong[:5].all()
    assert torch.equal(undo.worst_wrong, undo.clean_wrong) and undo.worst_error == res.clean_error
    # the worst case on hand-made masks: example 0 only clean, 1 only under "a", 2 only under "b", 3 never
    t, f = True, False
    toy = EvalResult(torch.tensor([t, f, f, f]), {"a": torch.tensor([f, t, f, f]), "b": torch.tensor([f, f, t, f])})
    assert toy.worst_wrong.tolist() == [t, t, t, f] and toy.worst_error == 0.75
    assert toy.robust_error == {"a": 0.25, "b": 0.25} and toy.clean_error == 0.25
    with torch.no_grad():
        assert res.clean_error == pytest.approx((model(x).argmax(1) != y).float().mean().item())
    row = res.row()
    assert tuple(row) == TABLE1_COLUMNS + ("Worst",)
    assert row["Worst"] == pytest.approx(100 * res.worst_error)


def test_rng_mode_and_determinism(problem):
    model, _, x, y = problem
    model.train()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    suite = small_suite()
    a = evaluate(model, x, y, suite, batch_size=20, seed=5)
    assert torch.equal(torch.get_rng_state(), before)      # APGD and Square reseed; restored
    assert model.training                                  # mode restored
    model.eval()
    b = evaluate(model, x, y, suite, batch_size=20, seed=5)
    assert all(torch.equal(a.wrong[k], b.wrong[k]) for k in suite)
    # a column does not depend on which other columns run
    c = evaluate(model, x, y, {"PGD100": suite["PGD100"]}, batch_size=20, seed=5)
    assert torch.equal(c.wrong["PGD100"], a.wrong["PGD100"])
    # a generator gives a seed drawn from it, and advances it
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    d = evaluate(model, x, y, {"PGD": suite["PGD"]}, batch_size=20, generator=g1)
    e = evaluate(model, x, y, {"PGD": suite["PGD"]}, batch_size=20, generator=g2)
    assert torch.equal(d.wrong["PGD"], e.wrong["PGD"])
    assert torch.equal(g1.get_state(), g2.get_state()) and not torch.equal(
        g1.get_state(), torch.Generator().manual_seed(9).get_state())


# --- ensembles ---------------------------------------------------------------------------------------
def test_ensemble_of_one_is_the_model(problem):
    model, _, x, y = problem
    ens = Ensemble([model])
    with torch.no_grad():
        out, logits = ens(x), model(x)
    assert torch.allclose(out, F.log_softmax(logits, 1), atol=1e-6)
    assert torch.equal(out.argmax(1), logits.argmax(1))
    assert F.cross_entropy(out, y).item() == pytest.approx(F.cross_entropy(logits, y).item(), abs=1e-6)
    suite = {"PGD": small_suite()["PGD"]}
    a, b = evaluate(model, x, y, suite, 20, seed=2), evaluate(ens, x, y, suite, 20, seed=2)
    assert (a.wrong["PGD"] == b.wrong["PGD"]).float().mean() >= 0.95   # same loss; float ties aside


def test_ensemble_of_two_averages_probabilities(problem):
    m1, m2, x, y = problem
    ens = Ensemble([m1, m2])
    with torch.no_grad():
        out, p1, p2 = ens(x), m1(x).softmax(1), m2(x).softmax(1)
    assert torch.allclose(out.exp(), (p1 + p2) / 2, atol=1e-6)
    assert torch.allclose(out.exp().sum(1), torch.ones(len(x)), atol=1e-6)
    for p in (p1, p2):
        assert not torch.allclose(out, p.log(), atol=1e-3)
    assert F.cross_entropy(out, y).item() == pytest.approx(-((p1 + p2) / 2).gather(1, y[:, None]).log().mean().item(),
                                                            abs=1e-5)
    with pytest.raises(ParameterError):
        Ensemble([])


def test_an_ensemble_is_evaluated_like_any_model(problem):
    m1, m2, x, y = problem
    # on noise inputs, where the two members disagree, the ensemble's mistakes are those of the averaged
    # probabilities (computed here directly), unlike either member's
    xn = torch.rand(60, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    yn = torch.arange(60) % K
    noise = evaluate(Ensemble([m1, m2]), xn, yn, {}, batch_size=20)
    with torch.no_grad():
        p1, p2 = m1(xn).softmax(1), m2(xn).softmax(1)
    expected = ((p1 + p2) / 2).argmax(1) != yn
    assert not torch.equal(expected, p1.argmax(1) != yn) and not torch.equal(expected, p2.argmax(1) != yn)
    assert torch.equal(noise.clean_wrong, expected)
    suite = small_suite(attacks=("PGD", "Square5K"))
    res = evaluate(Ensemble([m1, m2]), x, y, suite, 20, seed=4)
    assert set(res.wrong) == set(suite) and res.worst_error >= max(res.robust_error.values())


# --- tables ------------------------------------------------------------------------------------------
def test_paper_format_and_parse():
    assert paper_format(1.56, 0.17) == "1.56(17)"
    assert paper_format(10.86, 1.43) == "10.86(143)"
    assert paper_format(8.58, 0.89) == "8.58(89)"
    assert paper_format(56.56, 0.04) == "56.56(4)"
    assert paper_format(0.4, 0.04) == "0.40(4)"
    assert paper_format(0.4) == "0.40" and paper_format(2.0, float("nan")) == "2.00"
    assert paper_format(1.0, 0.0) == "1.00(0)"
    assert parse_paper_format("10.86(143)") == (10.86, 1.43)
    assert parse_paper_format("55.88(5)") == (55.88, 0.05)
    with pytest.raises(ParameterError):
        paper_format(1.0, -0.1)


def test_mean_std():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)          # sample std, ddof 1
    m, s = mean_std([1.0, 2.0])
    assert m == 1.5 and s == pytest.approx(math.sqrt(0.5))
    assert mean_std([4.2]) == (4.2, 0.0)
    with pytest.raises(ParameterError):
        mean_std([])


def test_paper_table1_transcription():
    assert len(PAPER_TABLE1) == 15 and all(tuple(r) == TABLE1_COLUMNS for r in PAPER_TABLE1.values())
    assert PAPER_TABLE1[("mnist_lenet", False, "Cosine")]["APGD100-DLR"] == (13.46, 1.29)
    assert PAPER_TABLE1[("cifar10_resnet18", True, "Linear")]["Square5K"] == (46.47, 0.26)
    assert PAPER_TABLE1[("mnist_lenet", False, "Constant")]["PGD100"] == (10.86, 1.43)
    assert PAPER_TABLE1[("cifar10_vgg", True, "Constant")]["APGD100-DLR"] == (56.56, 0.04)
    assert PAPER_TABLE1[("cifar10_vgg", False, "Linear")]["Clean"] == (23.56, 0.95)
    assert paper_row("cifar10_resnet18", False, "constant")["Clean"] == (18.62, 0.06)
    assert not any(task == "mnist_lenet" and periodic for task, periodic, _ in PAPER_TABLE1)
    with pytest.raises(ParameterError):
        paper_row("mnist_lenet", True, "Cosine")


def test_results_table_write_read_and_compare(tmp_path):
    runs = [dict(task="mnist_lenet", scheduler="Cosine", periodic=False, seed=s, Clean=c, PGD=p)
            for s, c, p in ((0, 1.0, 6.0), (1, 2.0, 7.0), (2, 3.0, 8.0))]
    runs.append(dict(task="mnist_lenet", scheduler="Linear", periodic=False, seed=0, Clean=1.5, PGD=9.0))
    table = results_table(runs)
    assert len(table) == 2
    assert table[0] == dict(task="mnist_lenet", scheduler="Cosine", periodic=False, runs=3,
                            Clean_mean=2.0, Clean_std=1.0, PGD_mean=7.0, PGD_std=1.0)
    assert table[1]["runs"] == 1 and table[1]["PGD_std"] == 0.0
    assert format_table(table)[0]["Clean"] == "2.00(100)"
    write_table(table, tmp_path / "sub" / "table1")
    assert read_table(tmp_path / "sub" / "table1.csv") == table
    md = (tmp_path / "sub" / "table1.md").read_text().splitlines()
    assert md[0] == "| task | scheduler | periodic | runs | Clean | PGD |"
    assert md[2] == "| mnist_lenet | Cosine | False | 3 | 2.00(100) | 7.00(100) |"
    assert not list((tmp_path / "sub").glob(".*tmp*"))       # no temporary files left
    text = compare_with_paper(table[0], "mnist_lenet", False, "Cosine")
    lines = text.splitlines()
    assert lines[2].split() == ["ours", "2.00(100)", "7.00(100)", "-", "-", "-", "-"]
    assert lines[3].split() == ["paper", "1.08(2)", "6.64(70)", "8.46(82)", "14.36(134)", "13.46(129)", "16.78(25)"]
    # a single EvalResult.row() works too
    single = compare_with_paper({"Clean": 1.0, "PGD": 5.5}, "mnist_lenet", False, "Linear").splitlines()
    assert single[2].split()[:3] == ["ours", "1.00", "5.50"]


def test_columns_are_named_by_what_ran():
    from landscape_core.report.tables import relabel
    spec = EvalSpec(pgd100_steps=20, apgd_steps=50, square_queries=1000)
    assert spec.labels() == {"PGD": "PGD", "PGD100": "PGD20", "APGD100-CE": "APGD50-CE",
                             "APGD100-DLR": "APGD50-DLR", "Square5K": "Square1K"}
    assert EvalSpec().labels()["Square5K"] == "Square5K" and EvalSpec(square_queries=100).labels()["Square5K"] == "Square100"
    rows = results_table([{"model": "a", "seed": 0, "PGD100": 10.0}, {"model": "a", "seed": 1, "PGD100": 20.0}])
    assert relabel(rows, spec.labels()) == [{"model": "a", "runs": 2, "PGD20_mean": 15.0,
                                              "PGD20_std": pytest.approx(7.0710678)}]


def test_multi_targeted_column_is_offered_and_at_least_as_strong_as_pgd(problem):
    model, _, x, y = problem
    suite = small_suite(attacks=("PGD", "MultiTargeted"))
    assert (suite["MultiTargeted"].name, suite["MultiTargeted"].steps) == ("multi-targeted", 20)
    assert suite["MultiTargeted"].step_size == pytest.approx(EPS / 10)
    err = evaluate(model, x, y, suite).robust_error
    assert err["MultiTargeted"] >= err["PGD"] - 1 / len(y)
    assert EvalSpec(attacks=("PGD", "MultiTargeted")).labels()["MultiTargeted"] == "MultiTargeted"
    with pytest.raises(ParameterError, match="attacks"):
        paper_attacks("mnist", 0.3, attacks=("PGD", "MT"))
