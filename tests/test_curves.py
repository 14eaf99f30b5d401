"""Tests of landscape_core.curves: Bezier curves between two models (mode connectivity)."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from landscape_core.analysis.curve_training import CurveTrainSpec, train_curve
from landscape_core.analysis.curves import (BezierCurve, PointModel, barrier_height, bezier_coefficients, line_point,
                                            recompute_bn, scan_path)
from landscape_core.core.spec import ParameterError


# --- tiny models and data --------------------------------------------------------------------------
def seeded(model: nn.Module, seed: int) -> nn.Module:
    """Re-initialise the parameters from a seeded generator (the global RNG is left alone)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            bound = 1.0 / math.sqrt(p[0].numel()) if p.dim() > 1 else 0.2
            p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
    return model


def mlp(seed: int, bn: bool = False) -> nn.Module:
    layers = [nn.Linear(8, 16)] + ([nn.BatchNorm1d(16)] if bn else []) + [nn.ReLU(), nn.Linear(16, 3)]
    return seeded(nn.Sequential(*layers), seed)


def convnet(seed: int) -> nn.Module:
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    return seeded(net, seed)


def blobs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    teacher = torch.randn(8, 3, generator=g)
    return x, (x @ teacher).argmax(1)


def fit(model: nn.Module, x, y, epochs: int = 5, batch_size: int = 32) -> nn.Module:
    """Adam in small mini-batches (small tensors stay fast on a loaded 2-core machine)."""
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(epochs):
        for i in range(0, len(x), batch_size):
            opt.zero_grad()
            F.cross_entropy(model(x[i:i + batch_size]), y[i:i + batch_size]).backward()
            opt.step()
    return model.eval()


class Scalar2(nn.Module):
    """A 'model' whose only parameter is a point in R^2."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2))

    def forward(self, x):
        return x * self.w


# --- closed forms --------------------------------------------------------------------------------
def test_bezier_point_matches_hand_computation():
    curve = BezierCurve(Scalar2(), torch.tensor([0.0, 0.0]), torch.tensor([2.0, 0.0]), n_bends=1)
    assert torch.equal(curve.controls.detach(), torch.tensor([[1.0, 0.0]]))  # midpoint of the line
    with torch.no_grad():
        curve.controls[0] = torch.tensor([1.0, 2.0])
    # t = 0.3: weights 0.7^2 = 0.49, 2*0.3*0.7 = 0.42, 0.3^2 = 0.09
    # 0.49*(0,0) + 0.42*(1,2) + 0.09*(2,0) = (0.60, 0.84)
    assert torch.allclose(curve.point(0.3)["w"], torch.tensor([0.60, 0.84]), atol=1e-6)
    assert bezier_coefficients(0.3, 2) == pytest.approx([0.49, 0.42, 0.09])
    # cubic (two bends): weights at t = 0.5 are 1/8, 3/8, 3/8, 1/8
    cubic = BezierCurve(Scalar2(), torch.tensor([0.0, 0.0]), torch.tensor([3.0, 3.0]), n_bends=2)
    with torch.no_grad():
        cubic.controls.copy_(torch.tensor([[0.0, 3.0], [3.0, 0.0]]))
    assert torch.allclose(cubic.point(0.5)["w"], torch.tensor([1.5, 1.5]), atol=1e-6)
    assert torch.allclose(cubic.point(0.25)["w"],
                          torch.tensor([3 * 0.0 * 0.5625 * 0.25 + 3 * 3.0 * 0.75 * 0.0625 + 3.0 * 0.015625,
                                        3 * 3.0 * 0.5625 * 0.25 + 3.0 * 0.015625]), atol=1e-6)


def test_line_point_and_barrier_height():
    a, b = torch.tensor([1.0, -2.0]), torch.tensor([3.0, 4.0])
    assert torch.equal(line_point(a, b, 0.0), a) and torch.equal(line_point(a, b, 1.0), b)
    assert torch.allclose(line_point(a, b, 0.25), torch.tensor([1.5, -0.5]))
    assert torch.allclose(line_point({"w": a}, {"w": b}, 0.5)["w"], torch.tensor([2.0, 1.0]))
    assert barrier_height([1.0, 3.0, 2.0, 0.5]) == pytest.approx(3.0 - 0.75)
    assert barrier_height([2.0, 1.0, 0.0]) == pytest.approx(1.0)  # the maximum may be an end point
    with pytest.raises(ValueError):
        barrier_height([1.0])


# --- end points are reproduced exactly -------------------------------------------------------------
def test_mlp_endpoints_exact():
    a, b = mlp(1), mlp(2)
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    curve = BezierCurve(mlp(9), a.state_dict(), torch.nn.utils.parameters_to_vector(b.parameters()), n_bends=2)
    with torch.no_grad():  # move the control points off the line: exactness must not rely on it
        curve.controls.add_(torch.randn(curve.controls.shape, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        assert torch.equal(curve(x, 0.0), a(x)) and torch.equal(curve(x, 1.0), b(x))
        assert torch.equal(curve.at(0.0)(x), a(x)) and torch.equal(curve.at(1.0)(x), b(x))
        assert not torch.equal(curve(x, 0.5), line_point(a(x), b(x), 0.5))
    assert curve.point(0.5)["0.weight"].requires_grad  # differentiable in the control points
    assert not curve.at(0.5)(x).requires_grad  # the point model is detached from them
    assert [n for n, _ in curve.named_parameters()] == ["controls"]  # the base is not trained


def test_convnet_batchnorm_endpoints_exact():
    a, b = convnet(1), convnet(2)
    g = torch.Generator().manual_seed(0)
    x_train, x = torch.randn(40, 1, 6, 6, generator=g) + 0.5, torch.randn(6, 1, 6, 6, generator=g)
    for net in (a, b):  # give each end point its own running statistics
        net.train()
        with torch.no_grad():
            net(x_train * 2.0)
        net.eval()
    curve = BezierCurve(convnet(9), a.state_dict(), b.state_dict(), n_bends=1)
    with torch.no_grad():
        curve.controls.mul_(1.5)
        # eval mode with the end point's own statistics
        assert torch.equal(curve.at(0.0).eval()(x), a(x))
        assert torch.equal(curve.at(1.0, buffers=b.state_dict()).eval()(x), b(x))
        # train mode (batch statistics)
        assert torch.equal(curve.at(1.0).train()(x), b.train()(x))
        b.eval()
        # recomputed statistics: the curve's point model and the plain end point agree exactly
        before = {k: v.clone() for k, v in curve.bn_state.items()}
        point = recompute_bn(curve.at(1.0), x_train, batch_size=16)
        plain = recompute_bn(copy.deepcopy(b), x_train, batch_size=16)
        assert not point.training and not plain.training
        assert torch.equal(point(x), plain(x))
        assert all(torch.equal(before[k], v) for k, v in curve.bn_state.items())  # curve untouched


def test_recompute_bn_is_the_data_average():
    net = seeded(nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2)), 0)
    x = torch.randn(60, 4, generator=torch.Generator().manual_seed(1)) * 3.0 + 2.0
    recompute_bn(net, x, batch_size=25)  # batches of 25, 25, 10: weighted by size
    bn = net[0]
    assert torch.allclose(bn.running_mean, x.mean(0), atol=1e-5)
    per_batch = [x[i:i + 20].var(0, unbiased=True) for i in range(0, 60, 20)]
    recompute_bn(net, x, batch_size=20)
    assert torch.allclose(bn.running_var, torch.stack(per_batch).mean(0), atol=1e-4)
    assert bn.momentum == 0.1 and not net.training


# --- the initial curve is the line -------------------------------------------------------------------
@pytest.mark.parametrize("n_bends", [1, 3])
def test_initial_curve_is_the_line(n_bends):
    a, b = mlp(1), mlp(2)
    curve = BezierCurve(mlp(9), a, b, n_bends=n_bends)
    for t in torch.linspace(0, 1, 11).tolist():
        on_curve, on_line = curve.point(t), curve.line(t)
        for name, p in a.named_parameters():
            assert torch.allclose(on_curve[name], on_line[name], atol=1e-6)
            assert torch.allclose(on_line[name], (1 - t) * p + t * dict(b.named_parameters())[name], atol=1e-6)


# --- training ------------------------------------------------------------------------------------
def test_clean_training_lowers_the_mid_curve_loss():
    x, y = blobs(256)
    a, b = fit(mlp(1), x, y), fit(mlp(2), x, y)
    curve = BezierCurve(mlp(9), a, b, n_bends=1)
    ts = [0.0, 0.25, 0.5, 0.75, 1.0]
    line = scan_path(curve.line, ts, x, y, base_model=curve.base)
    spec = CurveTrainSpec(epochs=8, batch_size=32, lr=0.05, momentum=0.9, weight_decay=0.0)
    history = train_curve(curve, x, y, spec, generator=torch.Generator().manual_seed(0))
    trained = scan_path(curve.point, ts, x, y, base_model=curve.base)
    assert history["epoch"] == list(range(1, 9)) and len(history["loss"]) == 8
    assert barrier_height(line.clean_loss) > 0.1  # the two minima are separated on the line ...
    assert trained.clean_loss[2] < 0.7 * line.clean_loss[2]  # ... and much less along the trained curve
    assert barrier_height(trained.clean_loss) < barrier_height(line.clean_loss)
    assert trained.clean_loss[0] == line.clean_loss[0] and trained.clean_loss[-1] == line.clean_loss[-1]
    assert trained.adv_loss is None and line.ts.tolist() == ts


def test_weight_decay_acts_on_the_point_with_one_t_per_batch():
    x, y = blobs(32)
    a, b = mlp(1), mlp(2)
    lr, wd = 0.1, 0.5
    runs = {}
    for decay in (0.0, wd):
        curve = BezierCurve(mlp(9), a, b, n_bends=1)
        spec = CurveTrainSpec(epochs=1, batch_size=32, lr=lr, momentum=0.0, weight_decay=decay)
        train_curve(curve, x, y, spec, generator=torch.Generator().manual_seed(3))
        runs[decay] = curve.controls.detach().clone()
    g = torch.Generator().manual_seed(3)  # replay the draws: the batch order, then one t for the batch
    torch.randperm(32, generator=g)
    t = torch.rand((), generator=g).item()
    phi = BezierCurve(mlp(9), a, b, n_bends=1).point_flat(t).detach()
    expected = -lr * wd * (2 * t * (1 - t)) * phi  # d/dtheta_1 of wd/2 ||phi(t)||^2 = wd B_1(t) phi(t)
    assert torch.allclose(runs[wd] - runs[0.0], expected.unsqueeze(0), atol=1e-6)


def test_training_step_is_the_gradient_of_the_train_mode_loss():
    x, y = blobs(32)
    a, b = mlp(1, bn=True), mlp(2, bn=True)
    curve = BezierCurve(mlp(9, bn=True).eval(), a.state_dict(), b.state_dict())  # base left in eval mode
    spec = CurveTrainSpec(epochs=1, batch_size=32, lr=0.1, momentum=0.0, weight_decay=0.0)
    history = train_curve(curve, x, y, spec, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    order = torch.randperm(32, generator=g)
    t = torch.rand((), generator=g).item()
    ref = BezierCurve(mlp(9, bn=True), a.state_dict(), b.state_dict()).train()
    loss = F.cross_entropy(ref(x[order], t), y[order])  # BatchNorm on batch statistics
    loss.backward()
    assert torch.allclose(curve.controls, ref.controls - 0.1 * ref.controls.grad, atol=1e-6)
    assert history["loss"] == [pytest.approx(loss.item(), abs=1e-6)]


class Interrupted(Exception):
    pass


def stand_in_attack(fail_at: int | None = None, point_only: bool = True):
    """Random start + one signed-gradient step, in eval mode; raises on call number ``fail_at``.
    With ``point_only`` it also checks that it is handed a detached curve point."""
    calls = {"n": 0}

    def attack(model, x, y, generator):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise Interrupted
        if point_only:
            assert isinstance(model, PointModel) and not model(x).requires_grad  # no path to the controls
        was_training = model.training
        model.eval()
        start = x + (torch.rand(x.shape, generator=generator) * 2 - 1) * 0.05
        start.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(start), y), start)
        model.train(was_training)
        return (start + 0.1 * grad.sign()).detach()

    return attack


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_resume_after_interruption_equals_uninterrupted(tmp_path, optimizer):
    x, y = blobs(96)
    a, b = mlp(1, bn=True).eval(), mlp(2, bn=True).eval()
    spec = CurveTrainSpec(epochs=3, batch_size=32, lr=0.05, weight_decay=1.0e-3, optimizer=optimizer, n_bends=2)

    whole = BezierCurve(mlp(9, bn=True), a.state_dict(), b.state_dict(), n_bends=2)
    g_whole = torch.Generator().manual_seed(5)
    h_whole = train_curve(whole, x, y, spec, stand_in_attack(), generator=g_whole,
                          checkpoint_path=tmp_path / "whole.pt")

    broken = BezierCurve(mlp(9, bn=True), a.state_dict(), b.state_dict(), n_bends=2)
    with pytest.raises(Interrupted):  # 3 batches per epoch: dies in the middle of epoch 2
        train_curve(broken, x, y, spec, stand_in_attack(fail_at=5), generator=torch.Generator().manual_seed(5),
                    checkpoint_path=tmp_path / "resumed.pt")
    resumed = BezierCurve(mlp(9, bn=True), a.state_dict(), b.state_dict(), n_bends=2)
    g_resumed = torch.Generator().manual_seed(999)  # its state comes from the checkpoint
    h_resumed = train_curve(resumed, x, y, spec, stand_in_attack(), generator=g_resumed,
                            checkpoint_path=tmp_path / "resumed.pt")

    assert torch.equal(resumed.controls, whole.controls)
    assert all(torch.equal(resumed.bn_state[k], v) for k, v in whole.bn_state.items())
    assert torch.equal(g_resumed.get_state(), g_whole.get_state())
    assert h_resumed == h_whole and h_whole["epoch"] == [1, 2, 3]
    assert not torch.equal(whole.controls, BezierCurve(mlp(9, bn=True), a, b, n_bends=2).controls)  # it trained
    # a finished checkpoint returns at once; one written for another spec is refused
    assert train_curve(resumed, x, y, spec, stand_in_attack(fail_at=1), checkpoint_path=tmp_path / "whole.pt") == h_whole
    with pytest.raises(ValueError, match="another spec"):
        train_curve(resumed, x, y, spec.replace(lr=0.01), checkpoint_path=tmp_path / "whole.pt")


def test_adversarial_scan_and_validation():
    x, y = blobs(40)
    a, b = mlp(1, bn=True).eval(), mlp(2, bn=True).eval()
    curve = BezierCurve(mlp(9, bn=True), a.state_dict(), b.state_dict(), n_bends=1)
    scan = scan_path(curve.point, [0.0, 0.5, 1.0], x, y, base_model=curve.base, attack=stand_in_attack(),
                     bn_data=x, batch_size=16, generator=torch.Generator().manual_seed(0))
    assert (scan.adv_loss >= scan.clean_loss - 1e-6).all()
    # reference for t = 0: the plain start model with its BatchNorm statistics recomputed on x, evaluated
    # by hand clean and under the same attack in batches of 16 (the scan's generator is fresh at t = 0)
    ref = recompute_bn(copy.deepcopy(a), x, batch_size=16)
    with torch.no_grad():
        logits = ref(x)
    assert scan.clean_loss[0] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    assert scan.clean_err[0] == pytest.approx((logits.argmax(1) != y).float().mean().item())
    g = torch.Generator().manual_seed(0)
    attack = stand_in_attack(point_only=False)
    x_adv = torch.cat([attack(ref, x[i:i + 16], y[i:i + 16], g) for i in range(0, 40, 16)])
    with torch.no_grad():
        adv_logits = ref(x_adv)
    assert scan.adv_loss[0] == pytest.approx(F.cross_entropy(adv_logits, y).item(), rel=1e-5)
    assert scan.adv_err[0] == pytest.approx((adv_logits.argmax(1) != y).float().mean().item())
    with pytest.raises(ParameterError, match="optimizer"):
        CurveTrainSpec(optimizer="rmsprop")
    with pytest.raises(ParameterError, match="n_bends"):
        train_curve(curve, x, y, CurveTrainSpec(n_bends=2))
    with pytest.raises(ParameterError):
        bezier_coefficients(1.5, 2)
