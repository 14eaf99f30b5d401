import numpy as np
import pytest
import torch

from landscape_core.analysis import linear_theory as lt


def test_closed_form_equals_brute_force_and_kink():
    theta = np.linspace(-2, 2, 81)
    for eps in (0.0, 0.6, 1.2):
        closed = lt.adversarial_logistic_loss(theta, 1.0, eps)
        assert np.abs(closed - lt.brute_force_adversarial_logistic_loss(theta, 1.0, eps)).max() < 1e-12
        assert (closed >= lt.logistic_loss(theta, 1.0) - 1e-15).all()
        left, right = lt.kink_slopes(1.0, eps)
        assert left == pytest.approx((1 - eps) / 2, abs=1e-5) and right == pytest.approx((1 + eps) / 2, abs=1e-5)


@pytest.fixture(scope="module")
def data():
    return lt.make_blobs(20, 3, 2, 0.1, 1.0, torch.Generator().manual_seed(0))


def test_critical_eps_is_sup_of_tau(data):
    crit = lt.critical_eps(data.x, data.y, 3)
    W = torch.randn(5000, 3, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t = lt.tau(W, data.x, data.y)
    assert t.max() <= crit["eps_bar"] + 1e-12          # no direction beats the closed form
    witness = lt.direction_witness(data.x, data.y, 3)
    assert float(lt.tau(witness[None], data.x, data.y)) == pytest.approx(crit["eps_bar"], rel=1e-12)
    assert crit["eps_bar"] <= crit["erase_bound"]


def test_tau_criterion_matches_line_search(data):
    gammas = np.concatenate([-np.logspace(-3, 1, 21)[::-1], [0.0], np.logspace(-3, 1, 21)])
    W = torch.randn(3, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    t = float(lt.tau(W[None], data.x, data.y))
    assert lt.scaled_loss_argmin(W, data.x, data.y, 0.4 * t, gammas) != 0.0
    assert lt.scaled_loss_argmin(W, data.x, data.y, 2.5 * t, gammas) == 0.0


def test_version_space_radius_matches_definition(data):
    gen = torch.Generator().manual_seed(4)
    W0 = data.centres - data.centres.mean(0)
    for _ in range(5):
        W = W0 + 0.3 * torch.randn(3, 2, generator=gen, dtype=torch.float64)
        r = float(lt.version_space_radius(W[None], data.x, data.y))
        for eps in (0.0, 0.1, 0.3, 0.6):
            assert lt.in_version_space_brute_force(W, data.x, data.y, eps) == (r >= eps)


def test_fractions_match_the_definitions(data):
    eps = np.linspace(0, 1.2, 7)
    fr = lt.set_fractions(data, eps, 200, torch.Generator().manual_seed(5))
    # V: the fraction of the sampled W that pass the brute-force check of the definition of V_eps
    for e, v in zip(eps, fr["V"]):
        assert v == np.mean([lt.in_version_space_brute_force(W, data.x, data.y, e) for W in fr["W_near"]])
    assert 0 < fr["V"][1] < fr["V"][0]                       # a non-trivial comparison
    # T: no isotropic direction is in T_0, and every one is in T_eps from eps_bar = sup tau on
    crit = lt.critical_eps(data.x, data.y, 3)["eps_bar"]
    assert fr["T"][0] == 0.0 and (fr["T"][eps >= crit] == 1.0).all() and 0 < fr["T"][1] < 1


def test_linear_adversarial_training_collapses_above_eps_bar(data):
    crit = lt.critical_eps(data.x, data.y, 3)
    below = lt.train_linear(data, 0.5 * crit["eps_bar"], steps=60, lr=0.5, generator=torch.Generator().manual_seed(0))
    above = lt.train_linear(data, 1.2 * crit["eps_bar"], steps=60, lr=0.5, generator=torch.Generator().manual_seed(0))
    assert above["norm"] < 0.05 * below["norm"]
    assert above["adv_loss"] == pytest.approx(np.log(3), abs=0.02)
    assert below["adv_loss"] < np.log(3) - 0.1
