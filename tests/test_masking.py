"""Reviewer 1's evaluation options and the gradient-masking flags, on a small trained model and a masked one."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from landscape_core.analysis.attack_grid import AttackGridSpec, Transfer, grid_suite, grid_worst, l2_suite
from landscape_core.analysis.masking import MaskingSpec, masking_check, zero_gradient_fraction
from landscape_core.analysis.robustness import evaluate
from landscape_core.attacks import AttackSpec, make_attack
from landscape_core.core.spec import ParameterError
from landscape_core.data import DatasetSpec, load_data

EPS = 0.1


def _linear(seed: int, x, y) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        for i in range(0, len(x), 100):
            opt.zero_grad()
            F.cross_entropy(model(x[i:i + 100]), y[i:i + 100]).backward()
            opt.step()
    return model.eval()


class Quantised(nn.Module):
    """A deliberately masked model: inputs rounded to 4 levels (zero gradient almost everywhere)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.round(x * 3) / 3)


@pytest.fixture(scope="module")
def setup():
    train, test = load_data(DatasetSpec(name="mnist5k"))
    x, y = train.x[:1000], train.y[:1000]
    return _linear(0, x, y), _linear(1, x, y), test.x[:100], test.y[:100]


def test_restarts_never_lower_the_error_and_grid_worst_bounds_every_column(setup):
    model, _, x, y = setup
    grid = AttackGridSpec(steps=5, step_ratios=(0.1, 0.25, 1.0), restarts=4)
    suite = grid_suite(EPS, grid)
    one = {"one start": AttackSpec(name="pgd", eps=EPS, steps=5, step_size=0.25 * EPS)}
    res = evaluate(model, x, y, {**one, **suite}, seed=3)
    err = res.robust_error
    assert err["PGD5 x4"] >= err["one start"]
    worst = grid_worst(res, list(suite))
    assert all(worst >= 100 * err[c] for c in suite)
    assert worst > 100 * res.clean_error


def test_l2_columns_stay_in_the_l2_ball(setup):
    model, _, x, y = setup
    suite = l2_suite(AttackGridSpec(l2_eps=(1.5,), l2_steps=10))
    assert list(suite) == ["PGD-L2 1.5", "APGD-L2 1.5"]
    for spec in suite.values():
        x_adv = make_attack(spec)(model, x[:50], y[:50])
        norms = (x_adv - x[:50]).flatten(1).norm(dim=1)
        assert float(norms.max()) <= 1.5 + 1e-4
        assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
        assert float(norms.max()) > 1.0           # it does move


def test_transfer_uses_only_the_surrogate_and_beats_masking(setup):
    model, surrogate, x, y = setup
    masked = Quantised(model)
    pgd = AttackSpec(name="pgd", eps=0.2, steps=10, step_size=0.05)   # crosses the rounding steps
    res = evaluate(masked, x, y, {"white box": pgd, "transfer": Transfer(surrogate, pgd)}, seed=0)
    assert res.robust_error["transfer"] > res.robust_error["white box"] + 0.05
    with pytest.raises(ParameterError, match="surrogate"):
        Transfer("not a model", pgd)


def test_our_model_raises_no_flag(setup):
    model, _, x, y = setup
    rep = masking_check(model, x, y, EPS, MaskingSpec(n_examples=50, iterations=(5, 20, 100), sweep_steps=20,
                                                      square_queries=200))
    assert rep.flags == {}, rep.flags
    assert rep.sweep[1.0] >= 95.0 and rep.zero_grad == 0.0


def test_a_masked_model_raises_the_flags(setup):
    model, _, x, y = setup
    masked = Quantised(model)
    assert zero_gradient_fraction(masked, x, y) == 1.0
    rep = masking_check(masked, x, y, EPS, MaskingSpec(n_examples=50, iterations=(5, 20, 100), sweep_steps=20,
                                                       square_queries=200))
    assert {"zero_grad", "square"} <= set(rep.flags), rep.flags
    assert rep.square > rep.white_box


def test_masking_spec_is_validated():
    with pytest.raises(ParameterError, match="iterations"):
        MaskingSpec(iterations=(100, 10))
    with pytest.raises(ParameterError, match="n_examples"):
        masking_check(nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), 0.1,
                      MaskingSpec(n_examples=5))
