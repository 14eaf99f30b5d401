"""Tests of landscape_core.landscape: directions, exact restore, scans, perturbation similarity."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from landscape_core.analysis.landscape import filter_normalized_direction, random_direction, scan_1d, scan_2d
from landscape_core.analysis.similarity import perturbation_cosine, perturbation_similarity
from landscape_core.attacks import AttackSpec, adversarial_examples, make_attack, sweep
from landscape_core.core.params import flat_to_tensors, get_flat_params, num_parameters, perturbed, set_flat_params, trainable_parameters
from landscape_core.core.rng import draw_seed
from landscape_core.report.plots import plot_surface
from landscape_core.report.tables import markdown, similarity_rows
from landscape_core.core.spec import ParameterError


def pgd_standin(model, x, y, generator=None, eps=0.2, steps=3):
    """Random-start L-inf PGD with the attack-callable contract (attacks.py is tested elsewhere)."""
    d = (torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1) * eps
    for _ in range(steps):
        d.requires_grad_(True)
        g, = torch.autograd.grad(F.cross_entropy(model((x + d).clamp(0, 1)), y), d)
        d = (d.detach() + eps / 2 * g.sign()).clamp(-eps, eps)
    return (x + d).clamp(0, 1).detach()


class TinyConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3 * 4 * 4, 4)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).flatten(1))


def make_model(seed=0):
    torch.manual_seed(seed)
    m = TinyConv()
    with torch.no_grad():
        m.bn.weight.uniform_(0.5, 1.5)
        m.bn.bias.uniform_(-0.2, 0.2)
        m.bn.running_mean.uniform_(-0.1, 0.1)
    return m


def make_data(n=20, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 6, 6, generator=g), torch.randint(0, 4, (n,), generator=g)


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------ flat vectors
def test_flat_roundtrip_skips_frozen_parameters():
    m = make_model()
    m.bn.bias.requires_grad_(False)
    P = num_parameters(m)
    assert P == sum(p.numel() for p in m.parameters()) - 3
    theta = get_flat_params(m)
    assert theta.shape == (P,)
    set_flat_params(m, torch.arange(P, dtype=torch.float32))
    assert m.conv.weight.reshape(-1)[0] == 0 and m.fc.bias[-1] == P - 1
    set_flat_params(m, theta)
    assert torch.equal(get_flat_params(m), theta)


def test_random_direction_unit_and_deterministic():
    m = make_model()
    d1, d2 = random_direction(m, gen(3)), random_direction(m, gen(3))
    assert d1.shape == (num_parameters(m),) and d1.dtype == torch.float32
    assert torch.equal(d1, d2)
    assert abs(d1.norm().item() - 1.0) < 1e-6
    assert not torch.equal(d1, random_direction(m, gen(4)))


def test_filter_normalized_direction_invariants():
    m = make_model()
    with torch.no_grad():
        m.conv.weight[1].zero_()  # a dead filter gets a zero direction
    d = filter_normalized_direction(m, gen(0))
    parts = dict(zip([n for n, p in m.named_parameters()],
                     flat_to_tensors(d, trainable_parameters(m))))
    for name in ("conv.weight", "fc.weight"):
        w = dict(m.named_parameters())[name]
        dn = parts[name].reshape(w.shape[0], -1).norm(dim=1)
        wn = w.detach().reshape(w.shape[0], -1).norm(dim=1)
        torch.testing.assert_close(dn, wn, rtol=1e-5, atol=1e-7)
    assert torch.all(parts["conv.weight"][1] == 0)
    for name in ("conv.bias", "fc.bias", "bn.weight", "bn.bias"):
        assert torch.all(parts[name] == 0), name
    # not a rescaled copy of the weights: the direction inside a filter is random
    assert not torch.allclose(parts["fc.weight"], m.fc.weight.detach())
    assert torch.equal(d, filter_normalized_direction(m, gen(0)))


# ------------------------------------------------------------------------------- perturbed
def test_perturbed_sets_and_restores_bitwise():
    m = make_model()
    theta = get_flat_params(m)
    delta = 1e3 * random_direction(m, gen(5)) + 1e-4   # theta + delta - delta != theta in float32
    assert not torch.equal((theta + delta) - delta, theta)
    buffers = m.bn.running_mean.clone()
    with perturbed(m, delta) as inner:
        assert inner is m
        assert torch.equal(get_flat_params(m), theta + delta)
    assert torch.equal(get_flat_params(m), theta)
    with pytest.raises(RuntimeError):
        with perturbed(m, delta):
            raise RuntimeError("boom")
    assert torch.equal(get_flat_params(m), theta)
    assert torch.equal(m.bn.running_mean, buffers)
    with pytest.raises(ValueError):
        with perturbed(m, torch.zeros(3)):
            pass


# ------------------------------------------------------------------------------------- scans
def test_evaluate_robust_eval_mode_and_no_attack():
    m = make_model().train()
    x, y = make_data()
    r = sweep(m, x, y, None, batch_size=7)
    assert r.adv_loss == pytest.approx(r.clean_loss) and r.adv_error == r.clean_error
    m.eval()
    with torch.no_grad():
        logits = m(x)
    assert r.clean_loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert r.clean_error == pytest.approx((logits.argmax(1) != y).float().mean().item())
    m.train()
    ra = sweep(m, x, y, pgd_standin, generator=gen(0), batch_size=7)
    assert m.training and m.bn.training
    assert ra.adv_loss > ra.clean_loss and ra.clean_loss == pytest.approx(r.clean_loss)


def test_scan_1d_at_zero_is_the_models_robust_loss():
    m = make_model()
    x, y = make_data()
    d = random_direction(m, gen(1))
    theta = get_flat_params(m)
    res = scan_1d(m, d, [0.0], x, y, pgd_standin, batch_size=8, generator=gen(9))
    # the scan draws one attack seed from the generator; the same seed at theta gives the same value
    assert res.attack_seed == draw_seed(gen(9))
    own = sweep(m, x, y, pgd_standin, generator=gen(res.attack_seed), batch_size=8)
    assert res.adv_loss[0] == own.adv_loss and res.adv_error[0] == own.adv_error
    assert res.clean_loss[0] == own.clean_loss
    # a point's value does not depend on the rest of the grid (common attack seed)
    grid = scan_1d(m, d, [0.5, 0.0, -0.5], x, y, pgd_standin, batch_size=8, generator=gen(9))
    assert grid.adv_loss.shape == (3,) and grid.adv_loss[1] == own.adv_loss
    # a perturbed point equals the model with its parameters set by hand
    set_flat_params(m, theta + 0.5 * d)
    there = sweep(m, x, y, pgd_standin, generator=gen(res.attack_seed), batch_size=8)
    set_flat_params(m, theta)
    assert grid.adv_loss[0] == pytest.approx(there.adv_loss, rel=1e-6)
    assert torch.equal(get_flat_params(m), theta)
    # the attack was regenerated: the adversarial loss differs from the clean loss everywhere
    assert np.all(grid.adv_loss > grid.clean_loss)


def test_scan_2d_shapes_and_values():
    m = make_model()
    x, y = make_data(n=12)
    d1, d2 = random_direction(m, gen(1)), filter_normalized_direction(m, gen(2))
    alphas, betas = [-0.5, 0.0, 0.5], [0.0, 1.0]
    res = scan_2d(m, d1, d2, alphas, betas, x, y, pgd_standin, batch_size=5, generator=gen(3))
    for arr in (res.adv_loss, res.adv_error, res.clean_loss, res.clean_error):
        assert arr.shape == (3, 2) and np.isfinite(arr).all()
    own = sweep(m, x, y, pgd_standin, generator=gen(res.attack_seed), batch_size=5)
    assert res.adv_loss[1, 0] == own.adv_loss
    with perturbed(m, 0.5 * d1 + 1.0 * d2):
        clean = sweep(m, x, y, None, batch_size=5).clean_loss
    assert res.clean_loss[2, 1] == pytest.approx(clean, rel=1e-6)
    one = scan_1d(m, d1, alphas, x, y, pgd_standin, batch_size=5, generator=gen(3))
    np.testing.assert_allclose(res.adv_loss[:, 0], one.adv_loss, rtol=1e-6)


# ----------------------------------------------------------------------- cosine similarity
def test_perturbation_cosine_values_and_zero_convention():
    a = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]], [[0.0, 0.0]], [[0.0, 0.0]], [[2.0, 0.0]]])
    b = torch.tensor([[[3.0, 0.0]], [[1.0, -1.0]], [[0.0, 0.0]], [[1.0, 0.0]], [[-1.0, 0.0]]])
    np.testing.assert_allclose(perturbation_cosine(a, b).numpy(), [1.0, 0.0, 1.0, 0.0, -1.0])
    r = torch.randn(5, 1, 3, 3, generator=gen(0))
    s = torch.randn(5, 1, 3, 3, generator=gen(1))
    expected = F.cosine_similarity(r.flatten(1).double(), s.flatten(1).double(), dim=1)
    torch.testing.assert_close(perturbation_cosine(r, s), expected)


def test_same_seed_attack_has_cosine_one():
    m = make_model()
    x, y = make_data()
    x1 = adversarial_examples(m, x, y, pgd_standin, gen(4), batch_size=6)
    x2 = adversarial_examples(m, x, y, pgd_standin, gen(4), batch_size=6)
    assert torch.equal(x1, x2)
    cos = perturbation_cosine(x1 - x, x2 - x)
    torch.testing.assert_close(cos, torch.ones_like(cos), rtol=0, atol=1e-12)
    x3 = adversarial_examples(m, x, y, pgd_standin, gen(5), batch_size=6)
    assert perturbation_cosine(x1 - x, x3 - x).mean() < 1.0


def test_perturbation_similarity_baseline_and_shapes():
    m = make_model()
    x, y = make_data(n=10)
    xt, yt = make_data(n=8, seed=7)
    v = random_direction(m, gen(0))
    theta = get_flat_params(m)
    a_values = [0.0, 0.5, 2.0]
    res = perturbation_similarity(m, v, a_values, x, y, pgd_standin, repeats=2,
                                    generator=gen(1), x_test=xt, y_test=yt, batch_size=4)
    assert torch.equal(get_flat_params(m), theta)
    assert res.cosine_runs.shape == (2, 3) and res.baseline_runs.shape == (2,)
    assert res.cosine_mean.shape == res.cosine_std.shape == res.error_mean.shape == (3,)
    assert res.seeds.shape == (2, 2) and res.error_set == "test"
    # a = 0: both models are theta, so the cosine is the same-model baseline
    np.testing.assert_array_equal(res.cosine_runs[:, 0], res.baseline_runs)
    # the baseline: two independent PGD runs at theta itself with the recorded seeds
    for r, (s_plus, s_minus) in enumerate(res.seeds):
        p1 = adversarial_examples(m, x, y, pgd_standin, gen(int(s_plus)), 4) - x
        p2 = adversarial_examples(m, x, y, pgd_standin, gen(int(s_minus)), 4) - x
        assert res.baseline_runs[r] == pytest.approx(perturbation_cosine(p1, p2).mean().item(),
                                                     abs=1e-12)
    assert np.all(res.baseline_runs < 1.0)  # independent random starts
    # a = 2, by hand: PGD at theta + a v with seed s+ and at theta - a v with seed s-; the robust test
    # error at each point with PGD regenerated on the test set, continuing that point's generator
    s_plus, s_minus = (int(s) for s in res.seeds[1])
    deltas, errors = [], []
    m.eval()
    for sign, seed in ((1.0, s_plus), (-1.0, s_minus)):
        g = gen(seed)
        set_flat_params(m, theta + sign * 2.0 * v)
        deltas.append(torch.cat([pgd_standin(m, x[i:i + 4], y[i:i + 4], g) for i in range(0, 10, 4)]) - x)
        x_adv_test = torch.cat([pgd_standin(m, xt[i:i + 4], yt[i:i + 4], g) for i in range(0, 8, 4)])
        with torch.no_grad():
            errors.append((m(x_adv_test).argmax(1) != yt).float().mean().item())
        set_flat_params(m, theta)
    m.train()
    assert res.cosine_runs[1, 2] == pytest.approx(perturbation_cosine(*deltas).mean().item(), abs=1e-12)
    assert (res.error_plus_runs[1, 2], res.error_minus_runs[1, 2]) == pytest.approx(tuple(errors))
    # two runs: the sample std (ddof 1) is |b0 - b1| / sqrt(2)
    assert res.baseline_std == pytest.approx(abs(res.baseline_runs[0] - res.baseline_runs[1]) / np.sqrt(2))
    # deterministic for a generator seed
    again = perturbation_similarity(m, v, a_values, x, y, pgd_standin, repeats=2,
                                      generator=gen(1), x_test=xt, y_test=yt, batch_size=4)
    np.testing.assert_array_equal(again.cosine_runs, res.cosine_runs)
    np.testing.assert_array_equal(again.error_minus_runs, res.error_minus_runs)
    with pytest.raises(ParameterError, match="repeats"):
        perturbation_similarity(m, v, a_values, x, y, pgd_standin, repeats=0)


def test_similarity_without_test_set_uses_training_examples():
    m = make_model()
    x, y = make_data(n=8)
    v = random_direction(m, gen(0))
    res = perturbation_similarity(m, v, [0.0], x, y, pgd_standin, repeats=1, generator=gen(2),
                                    batch_size=8)
    assert res.error_set == "train" and np.all(res.cosine_std == 0)
    s_plus = int(res.seeds[0, 0])
    xa = adversarial_examples(m, x, y, pgd_standin, gen(s_plus), 8)
    err = sweep(m, xa, y, None, batch_size=8).clean_error
    assert res.error_plus[0] == pytest.approx(err)


def test_similarity_table_layout():
    m = make_model()
    x, y = make_data(n=6)
    v = random_direction(m, gen(0))
    res = perturbation_similarity(m, v, [0.0, 0.1], x, y, pgd_standin, repeats=1,
                                    generator=gen(2), batch_size=6)
    table = markdown(similarity_rows({"Random": {"eps = 0.1": res, "eps = 0.2": res},
                                      "Eigenvector": {"eps = 0.1": res}}))
    lines = table.splitlines()
    assert lines[0] == ("| v | a | eps = 0.1 Cosine | eps = 0.1 Train(%) | eps = 0.2 Cosine "
                        "| eps = 0.2 Train(%) |")
    assert len(lines) == 2 + 4
    assert lines[2].startswith("| Random | 0 | ") and lines[3].startswith("|  | 0.1 | ")
    assert f"{res.cosine_mean[1]:.3f}" in lines[3] and f"{100 * res.error_mean[1]:.1f}" in lines[3]
    assert lines[4].endswith("|  |  |")  # missing column group left blank
    with pytest.raises(ParameterError):
        similarity_rows({"Random": {"e": res}}, error="median")


def test_plot_surface_puts_z_ij_at_alpha_i_beta_j():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    # a square grid (a transposed Z would still have the right shape) and a plane Z = alpha + 3 beta:
    # every vertex handed to matplotlib lies on that plane, not on 3 alpha + beta (Z drawn transposed)
    alphas, betas = np.linspace(-1, 1, 5), np.linspace(0, 2, 5)
    Z = alphas[:, None] + 3 * betas[None, :]
    fig = plt.figure()
    try:
        ax3 = fig.add_subplot(1, 1, 1, projection="3d")
        drawn = {}
        real = ax3.plot_surface
        ax3.plot_surface = lambda A, B, Z_, **kw: drawn.update(A=A, B=B, Z=Z_) or real(A, B, Z_, **kw)
        plot_surface(ax3, alphas, betas, Z)
        np.testing.assert_allclose(drawn["Z"], drawn["A"] + 3 * drawn["B"], atol=1e-12)
        assert np.abs(drawn["Z"] - 3 * drawn["A"] - drawn["B"]).max() > 1.0
        assert tuple(ax3.xy_dataLim.extents) == (-1.0, 0.0, 1.0, 2.0)   # alpha on x, beta on y
        assert ax3.get_xlabel() == r"$\alpha$" and ax3.get_ylabel() == r"$\beta$"
    finally:
        plt.close(fig)


def test_with_the_library_pgd():
    """Scans, evaluation and adversarial examples agree with the registered PGD: the scan's a = 0 point
    is the evaluation of the model itself with the scan's seed, and a seed reproduces the examples."""
    attack = make_attack(AttackSpec(name="pgd", eps=0.2, steps=3, step_size=0.1))
    m = make_model()
    x, y = make_data(n=8)
    res = scan_1d(m, random_direction(m, gen(0)), [0.0, 0.3], x, y, attack, batch_size=4,
                    generator=gen(1))
    own = sweep(m, x, y, attack, generator=gen(res.attack_seed), batch_size=4)
    assert res.adv_loss[0] == own.adv_loss and own.adv_loss > own.clean_loss
    x1 = adversarial_examples(m, x, y, attack, gen(3), 4)
    x2 = adversarial_examples(m, x, y, attack, gen(3), 4)
    assert torch.equal(x1, x2)
    cos = perturbation_cosine(x1 - x, x2 - x)
    torch.testing.assert_close(cos, torch.ones_like(cos), rtol=0, atol=1e-12)
