"""Tests of landscape_core.attacks on tiny models with random 1x8x8 inputs."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from landscape_core.attacks import AttackSpec, fgsm, make_attack, pgd, project, sweep
from landscape_core.core.modes import model_mode
from landscape_core.core.spec import ParameterError

K = 3


def robust_predictions(model, x, y, attack, batch_size):
    """(adversarial inputs, misclassified) over the set, through the one evaluation loop."""
    r = sweep(model, x, y, attack, batch_size=batch_size, keep_adv=True)
    return r.x_adv, r.adv_wrong


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: intra-op threads only add contention on a shared machine (measured 40 ms vs 0.2 ms
    per forward of the tiny CNN with 2 threads under load); restored after this module."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def tiny_cnn(seed: int = 0, classes: int = K, bn: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    layers = [nn.Conv2d(1, 4, 3, padding=1)]
    layers += [nn.BatchNorm2d(4)] if bn else []
    layers += [nn.ReLU(), nn.Flatten(), nn.Dropout(0.5) if bn else nn.Identity(), nn.Linear(256, classes)]
    return nn.Sequential(*layers)


def batch(n: int = 16, seed: int = 1, lo: float = 0.0, hi: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    x = lo + (hi - lo) * torch.rand(n, 1, 8, 8, generator=g)
    return x, torch.randint(0, K, (n,), generator=g)


def per_example_loss(model, x, y):
    with torch.no_grad(), model_mode(model, "eval"):
        return F.cross_entropy(model(x), y, reduction="none")


def dist(delta, norm):
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


@pytest.fixture(scope="module")
def trained():
    """An MLP trained on 3 noisy templates: clean error 0, non-trivial robust error at eps 0.1."""
    g = torch.Generator().manual_seed(0)
    templates = torch.rand(K, 1, 8, 8, generator=g)

    def data(n):
        y = torch.randint(0, K, (n,), generator=g)
        return (0.5 * templates[y] + 0.5 * torch.rand(n, 1, 8, 8, generator=g)).clamp(0, 1), y

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, K))
    x, y = data(256)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    xt, yt = data(64)
    return model.eval(), xt, yt


class Recorder(nn.Module):
    """Wraps a model and records every input it sees and its training flag."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.inputs, self.flags = inner, [], []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        self.flags.append(self.training)
        return self.inner(x)


# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("start", ["ball", "step", "none"])
def test_every_iterate_stays_in_ball_and_box(norm, start):
    x, y = batch(8)
    x[0] = 0.0
    x[1] = 1.0   # boundary images: the box binds
    eps = torch.tensor([0.0, 0.1, 0.3, 0.05, 0.2, 0.0, 0.5, 0.15]) * (1.0 if norm == "linf" else 4.0)
    model = Recorder(tiny_cnn())
    x_adv = pgd(model, x, y, eps, steps=6, step_size=0.4 * eps, norm=norm, random_start=start,
                restarts=2, generator=torch.Generator().manual_seed(3))
    assert len(model.inputs) == 2 * 6 + 2      # 6 gradient passes per restart + 2 loss evaluations
    for z in model.inputs + [x_adv]:
        assert z.min() >= 0.0 and z.max() <= 1.0
        assert torch.all(dist(z - x, norm) <= eps + 1e-6)
    assert torch.equal(x_adv[eps == 0], x[eps == 0])
    assert not x_adv.requires_grad


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_per_sample_eps_is_honoured(norm):
    x, y = batch(6, lo=0.3, hi=0.7)   # the box cannot bind at these budgets
    eps = torch.tensor([0.0, 0.02, 0.05, 0.1, 0.2, 0.0]) * (1.0 if norm == "linf" else 3.0)
    model = tiny_cnn()
    x_adv = pgd(model, x, y, eps, steps=8, step_ratio=0.5, norm=norm, random_start="none")
    d = dist(x_adv - x, norm)
    assert torch.equal(x_adv[0], x[0]) and torch.equal(x_adv[5], x[5])
    assert torch.all(d <= eps + 1e-6)
    assert torch.all(d[1:5] >= (0.999 if norm == "linf" else 0.9) * eps[1:5])   # the budget is used
    for i in range(6):   # the same as attacking example i alone with its scalar budget
        alone = pgd(model, x[i:i + 1], y[i:i + 1], float(eps[i]), steps=8, step_ratio=0.5, norm=norm,
                    random_start="none")
        assert torch.allclose(alone[0], x_adv[i], atol=1e-5)


def test_random_starts_have_the_documented_distributions():
    x = torch.full((4000, 1, 8, 8), 0.5)
    y = torch.zeros(4000, dtype=torch.long)
    model = tiny_cnn()
    g = torch.Generator().manual_seed(0)
    d = pgd(model, x, y, 0.2, steps=0, step_size=0.05, random_start="ball", generator=g, clamp=None) - x
    assert d.abs().max() <= 0.2 + 1e-7 and abs(d.abs().mean().item() - 0.1) < 0.002    # U(-eps, eps)
    d = pgd(model, x, y, 0.2, steps=0, step_size=0.05, random_start="step", generator=g, clamp=None) - x
    assert d.abs().max() <= 0.05 + 1e-7 and abs(d.abs().mean().item() - 0.025) < 0.001  # U(-step, step)
    d = pgd(model, x, y, 2.0, steps=0, step_size=0.5, norm="l2", random_start="ball", generator=g, clamp=None) - x
    u = (d.flatten(1).norm(dim=1) / 2.0) ** 64     # radius^d / eps^d ~ U(0, 1) for uniform-in-ball
    assert u.max() <= 1 + 1e-4 and abs(u.mean().item() - 0.5) < 0.03 and abs((u < 0.25).float().mean() - 0.25) < 0.03
    d = pgd(model, x, y, 0.2, steps=0, step_size=0.05, random_start="none")
    assert torch.equal(d, x)


def test_restarts_never_lower_the_loss():
    x, y = batch(32)
    model = tiny_cnn()
    kw = dict(steps=3, step_size=0.01, random_start="ball")
    one = pgd(model, x, y, 0.05, restarts=1, generator=torch.Generator().manual_seed(7), **kw)
    three = pgd(model, x, y, 0.05, restarts=3, generator=torch.Generator().manual_seed(7), **kw)
    l1, l3 = per_example_loss(model, one, y), per_example_loss(model, three, y)
    assert torch.all(l3 >= l1)
    assert torch.any(l3 > l1)   # the extra restarts found something for some example


def test_model_mode_restored_and_parameters_untouched():
    x, y = batch(8)
    model = Recorder(tiny_cnn(bn=True))
    model.train()
    bn = model.inner[1]
    stats = bn.running_mean.clone()
    pgd(model, x, y, 0.1, steps=3, step_size=0.03)
    assert set(model.flags) == {False}                        # eval during the attack (default)
    assert model.training and all(m.training for m in model.modules())
    assert torch.equal(bn.running_mean, stats)                # BN statistics untouched in eval mode
    assert all(p.grad is None for p in model.parameters())
    model.inputs.clear(), model.flags.clear()
    model.eval()
    model.inner[1].train()                                    # mixed modes come back as they were
    pgd(model, x, y, 0.1, steps=2, step_size=0.03, mode="train")
    assert set(model.flags) == {True}
    assert not model.training and model.inner[1].training and not model.inner[0].training
    model.inputs.clear(), model.flags.clear()
    pgd(model, x, y, 0.1, steps=2, step_size=0.03, mode=None)
    assert set(model.flags) == {False}
    assert all(p.grad is None for p in model.parameters())


def test_mode_restored_when_the_model_raises():
    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    model = nn.Sequential(Boom()).train()
    with pytest.raises(RuntimeError):
        pgd(model, *batch(2), 0.1, steps=1, step_size=0.1)
    assert model.training and model[0].training


def test_existing_parameter_gradients_are_not_changed():
    x, y = batch(8)
    model = tiny_cnn()
    F.cross_entropy(model(x), y).backward()
    before = [p.grad.clone() for p in model.parameters()]
    pgd(model, x, y, 0.1, steps=3, step_size=0.03, restarts=2)
    assert all(torch.equal(b, p.grad) for b, p in zip(before, model.parameters()))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fgsm_equals_closed_form(norm):
    x, y = batch(8)
    model = tiny_cnn().train()
    eps = 0.1 if norm == "linf" else 1.0
    xr = x.clone().requires_grad_(True)
    with model_mode(model, "eval"):
        (g,) = torch.autograd.grad(F.cross_entropy(model(xr), y, reduction="sum"), xr)
    if norm == "linf":
        expected = (x + eps * g.sign()).clamp(0, 1)
    else:
        expected = (x + eps * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)).clamp(0, 1)
    got = fgsm(model, x, y, eps, norm=norm)
    assert torch.allclose(got, expected, atol=1e-6)
    assert model.training
    with pytest.raises(ParameterError):
        fgsm(model, x, y, eps, steps=3)


def test_attack_spec_pgd_step_follows_scheduled_eps():
    x, y = batch(8, lo=0.3, hi=0.7)
    model = tiny_cnn()
    attack = make_attack(AttackSpec(name="pgd", eps=0.1, steps=1, step_size=0.025, random_start="none"))
    assert torch.allclose((attack(model, x, y) - x).abs().amax((1, 2, 3)), torch.full((8,), 0.025))
    d = (attack(model, x, y, eps=0.2) - x).abs().amax((1, 2, 3))
    assert torch.allclose(d, torch.full((8,), 0.05))          # step/eps = 1/4 kept, as adjust_threshold
    none = make_attack(AttackSpec(name="none", eps=0.1))
    assert torch.equal(none(model, x, y), x)


def test_determinism_same_seed_same_result():
    x, y = batch(16)
    model = tiny_cnn()
    spec = AttackSpec(name="pgd", eps=0.1, steps=3, step_size=0.03, restarts=2)
    a = make_attack(spec)
    r1 = a(model, x, y, generator=torch.Generator().manual_seed(5))
    r2 = a(model, x, y, generator=torch.Generator().manual_seed(5))
    r3 = a(model, x, y, generator=torch.Generator().manual_seed(6))
    assert torch.equal(r1, r2) and not torch.equal(r1, r3)
    assert torch.equal(a(model, x, y), a(model, x, y))        # no generator: the spec's seed
    for name, extra in (("apgd-ce", dict(steps=5)), ("square", dict(n_queries=30))):
        att = make_attack(AttackSpec(name=name, eps=0.3, **extra))
        assert torch.equal(att(model, x, y, generator=torch.Generator().manual_seed(1)),
                           att(model, x, y, generator=torch.Generator().manual_seed(1)))


def test_apgd_ce_is_at_least_as_strong_as_pgd10(trained):
    model, x, y = trained
    eps = 0.1
    _, wrong_pgd = robust_predictions(model, x, y, AttackSpec(name="pgd", eps=eps, steps=10, step_size=eps / 4), 64)
    _, wrong_apgd = robust_predictions(model, x, y, AttackSpec(name="apgd-ce", eps=eps, steps=25), 64)
    _, clean = robust_predictions(model, x, y, AttackSpec(name="none", eps=eps), 64)
    assert clean.float().mean() == 0.0
    assert 0.1 < wrong_pgd.float().mean() < 0.9             # a non-trivial comparison
    assert wrong_apgd.float().mean() >= wrong_pgd.float().mean() - 0.05
    assert all(p.grad is None for p in model.parameters())


def test_apgd_and_square_stay_in_budget_and_keep_the_callers_rng(trained):
    model, x, y = trained
    model.train()
    for name, extra in (("apgd-ce", dict(steps=5)), ("apgd-dlr", dict(steps=5)), ("square", dict(n_queries=50))):
        torch.manual_seed(123)
        state = torch.get_rng_state()
        x_adv = make_attack(AttackSpec(name=name, eps=0.15, seed=4, **extra))(model, x, y)
        assert torch.equal(torch.get_rng_state(), state), name
        assert model.training
        assert (x_adv - x).abs().max() <= 0.15 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    model.eval()


def test_package_really_reseeds_the_global_rng(trained):
    """The guard above is needed: pyautoattack's perturb() resets the global RNG itself."""
    from pyautoattack.autopgd_base import APGDAttack

    model, x, y = trained
    torch.manual_seed(123)
    state = torch.get_rng_state()
    APGDAttack(model, n_iter=2, eps=0.1, seed=4, device=x.device).perturb(x, y)
    assert not torch.equal(torch.get_rng_state(), state)


def test_dlr_needs_three_classes():
    x, y = batch(4)
    model = tiny_cnn(classes=2)
    with pytest.raises(ParameterError, match="3 classes"):
        make_attack(AttackSpec(name="apgd-dlr", eps=0.1, steps=2))(model, x, y % 2)


@pytest.mark.parametrize("params, name", [
    (dict(name="pgd", eps=0.1), "step_size"),
    (dict(name="pgd", eps=-0.1, step_size=0.01), "eps"),
    (dict(name="fgsm", eps=0.1, step_size=0.01), "step_size"),
    (dict(name="cw", eps=0.1), "name"),
    (dict(name="pgd", eps=0.1, step_size=0.01, norm="l1"), "norm"),
    (dict(name="pgd", eps=0.1, step_size=0.01, restarts=0), "restarts"),
    (dict(name="apgd-ce", eps=0.1, rho=1.5), "rho"),
    (dict(name="square", eps=0.1, p_init=0.0), "p_init"),
])
def test_attack_spec_validation(params, name):
    with pytest.raises(ParameterError) as err:
        AttackSpec(**params)
    assert err.value.name == name


def test_pgd_argument_errors():
    x, y = batch(4)
    model = tiny_cnn()
    with pytest.raises(ParameterError):
        pgd(model, x, y, 0.1, steps=2)                                     # no step
    with pytest.raises(ParameterError):
        pgd(model, x, y, 0.1, steps=2, step_size=0.1, step_ratio=0.5)      # both
    with pytest.raises(ParameterError):
        pgd(model, x, y, torch.tensor([0.1, 0.2]), steps=2, step_size=0.1)  # wrong eps shape
    with pytest.raises(ParameterError):
        pgd(model, x, y, -0.1, steps=2, step_size=0.1)
    with pytest.raises(ParameterError):
        pgd(model, x, y, 0.1, steps=2, step_size=0.1, random_start="gauss")


def test_project_onto_balls():
    d = torch.tensor([[3.0, -4.0], [0.3, 0.1]])
    assert torch.allclose(project(d, 1.0, "l2"), torch.tensor([[0.6, -0.8], [0.3, 0.1]]))
    assert torch.allclose(project(d, torch.tensor([0.5, 0.2]), "linf"), torch.tensor([[0.5, -0.5], [0.2, 0.1]]))


def test_robust_predictions_batches_and_mode(trained):
    model, x, y = trained
    model.train()
    spec = AttackSpec(name="pgd", eps=0.1, steps=5, step_size=0.025, random_start="none")
    x1, w1 = robust_predictions(model, x, y, spec, batch_size=64)
    x2, w2 = robust_predictions(model, x, y, make_attack(spec), batch_size=10)   # PGD: batch-independent
    assert model.training
    model.eval()
    assert x1.shape == x.shape and w1.dtype == torch.bool and w1.shape == y.shape
    assert torch.allclose(x1, x2, atol=1e-5) and torch.equal(w1, w2)
    with torch.no_grad():
        assert torch.equal(w1, model(x1).argmax(1) != y)
