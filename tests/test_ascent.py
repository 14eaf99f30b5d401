"""The ascent step of each threat model (:class:`Step`) and the one ascent loop (:func:`ascend`)."""
import pytest
import torch
from torch import nn

from landscape_core.attacks import NORMS, L2Step, LinfStep, ascend, pgd, step_for
from landscape_core.attacks.steps import cross_entropy
from landscape_core.core.spec import ParameterError


def _dist(delta, norm):
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


def test_one_step_per_threat_model():
    assert NORMS == ("linf", "l2")
    assert step_for("linf") is LinfStep and step_for("l2") is L2Step
    with pytest.raises(ParameterError, match="norm"):
        step_for("l1")


@pytest.mark.parametrize("norm, eps", [("linf", 0.1), ("l2", 0.8)])
def test_starts_and_clips_stay_in_the_ball_and_box(norm, eps):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 1, 6, 6, generator=g)
    eps_v = torch.full((32,), eps)
    step = step_for(norm)(x, eps_v, eps / 4)
    for kind in ("ball", "step"):
        assert (_dist(step.start(kind, g), norm) <= eps * (1 + 1e-5)).all()
    assert torch.equal(step.start("none", g), torch.zeros_like(x))
    with pytest.raises(ParameterError, match="random_start"):
        step.start("gauss", g)
    far = step.clip(x + 10 * torch.randn(x.shape, generator=g))
    assert (_dist(far - x, norm) <= eps * (1 + 1e-5)).all() and far.min() >= 0 and far.max() <= 1


@pytest.mark.parametrize("norm", NORMS)
def test_directions_have_unit_norm(norm):
    grad = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    d = step_for(norm)(grad, torch.ones(8)).direction(grad)
    dual = d.flatten(1).abs().amax(1) if norm == "linf" else d.flatten(1).norm(dim=1)
    assert torch.allclose(dual, torch.ones(8))


def test_ascent_on_a_linear_objective_reaches_the_best_vertex():
    """``w·x`` over the L∞ ball: the maximiser is ``x + ε·sign(w)`` (inside the box here), reached in
    ceil(ε / step) steps; zero steps return the start."""
    g = torch.Generator().manual_seed(2)
    w = torch.randn(1, 1, 5, 5, generator=g)
    x = 0.3 + 0.4 * torch.rand(4, 1, 5, 5, generator=g)
    step = LinfStep(x, torch.full((4,), 0.1), 0.04)
    objective = lambda z: (z * w).flatten(1).sum(1)     # noqa: E731
    assert torch.allclose(ascend(objective, x, step, 3), x + 0.1 * w.sign())
    assert torch.equal(ascend(objective, x, step, 0), x)


@pytest.mark.parametrize("norm", NORMS)
def test_eager_pgd_is_the_ascent_on_the_cross_entropy(norm):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 3)).eval()
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(8, 1, 6, 6, generator=g), torch.randint(0, 3, (8,), generator=g)
    eps = 0.1 if norm == "linf" else 0.8
    step = step_for(norm)(x, torch.full((8,), eps), torch.full((8,), eps / 4))
    want = ascend(cross_entropy(model, y), x, step, 5)
    assert torch.equal(pgd(model, x, y, eps, steps=5, step_size=eps / 4, norm=norm, random_start="none"), want)


# ARCHITECTURE.md's example of a new attack, verbatim: it must stay true.
def margin(model, y):
    """The CW margin: the largest wrong logit minus the true one."""
    def objective(x):
        z = model(x)
        true = z.gather(1, y[:, None])[:, 0]
        return (z - 1e9 * nn.functional.one_hot(y, z.shape[1])).amax(1) - true
    return objective


def margin_pgd_class():
    from landscape_core.attacks.base import Attack, register
    from landscape_core.attacks.steps import per_sample

    @register
    class MarginPGD(Attack):
        """PGD on the CW margin instead of the cross-entropy."""
        name = "pgd-margin"

        def perturb(self, model, x, y, generator, eps):
            s = self.spec
            step = step_for(s.norm)(x, per_sample(s.eps if eps is None else eps, x, "eps"), s.step_size)
            x0 = step.clamp(x + step.start(s.random_start, generator or torch.Generator().manual_seed(s.seed)))
            return ascend(margin(model, y), x0, step, s.steps)
    return MarginPGD


def test_the_architecture_example_attack_registers_and_runs_everywhere_an_attack_does():
    from landscape_core.analysis.robustness import evaluate
    from landscape_core.attacks import ATTACKS, AttackSpec, make_attack
    margin_pgd_class()
    try:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(36, 10)).eval()
        x, y = torch.rand(16, 1, 6, 6), torch.randint(0, 10, (16,))
        spec = AttackSpec(name="pgd-margin", eps=0.1, steps=5, step_size=0.025)
        x_adv = make_attack(spec)(model, x, y, torch.Generator().manual_seed(1))
        assert (x_adv - x).abs().max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
        with torch.no_grad():
            assert (margin(model, y)(x_adv) >= margin(model, y)(x) - 1e-6).all()
        res = evaluate(model, x, y, {"margin": spec, "PGD": AttackSpec(eps=0.1, steps=5, step_size=0.025)}, seed=0)
        assert set(res.row()) == {"Clean", "margin", "PGD", "Worst"}
    finally:
        ATTACKS.pop("pgd-margin", None)
