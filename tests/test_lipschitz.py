"""The second source's pieces: class separation, the local Lipschitz estimate, TRADES (loss, attack,
training with a warm-up) and the multi-targeted attack."""
import hashlib
import itertools
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from landscape_core.analysis.lipschitz import local_lipschitz, separation, separation_summary
from landscape_core.attacks import AttackSpec, make_attack, multi_targeted, pgd, trades_perturb
from landscape_core.core.spec import ParameterError
from landscape_core.data import DatasetSpec, load_data
from landscape_core.models import ModelSpec
from landscape_core.training import TrainSpec, load_probes, train
from landscape_core.training.loop import trades_loss


def test_separation_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(40, 1, 3, 3, generator=g), torch.randint(0, 3, (40,), generator=g)
    xq, yq = torch.rand(15, 1, 3, 3, generator=g), torch.randint(0, 3, (15,), generator=g)
    for q, yy, chunk in ((x, y, 7), (xq, yq, 4)):
        want = torch.tensor([min((q[i] - x[j]).abs().max().item() for j in range(len(x)) if y[j] != yy[i])
                             for i in range(len(q))])
        assert torch.allclose(separation(q, yy, x, y, chunk=chunk), want, atol=1e-6)
    s = separation_summary("toy", separation(x, y, x, y))
    assert s.r == pytest.approx(s.min / 2) and s.row([0.1])["2eps=0.2 <= min"] == (0.2 <= s.min)


def _linear(w):
    lin = nn.Linear(w.shape[1], w.shape[0], bias=False)
    lin.weight.data = w
    return nn.Sequential(nn.Flatten(), lin)


@pytest.mark.parametrize("outputs, reach", [(1, 0.9), (3, 0.7)])
def test_local_lipschitz_of_a_linear_map_approaches_its_closed_form_from_below(outputs, reach):
    """f(x) = Wx: the ratio's maximum over the ball is max over the cube's vertices s of ||W s||_1.  With
    one output sign ascent climbs to within a step of it (the denominator's gradient keeps the largest
    coordinate oscillating); with several it may stop at a local maximum
    (another vertex), never above; the released update (descending) stays lower."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(outputs, 5, generator=g)
    exact = max(float((w @ torch.tensor(s, dtype=torch.float32)).abs().sum())
                for s in itertools.product((-1.0, 1.0), repeat=5))
    model = _linear(w)
    x = 0.3 + 0.4 * torch.rand(64, 5, generator=g)                      # inside [0, 1] with room for the ball
    ascent = local_lipschitz(model, x, 0.1, steps=20, step_size=0.02, generator=torch.Generator().manual_seed(0))
    released = local_lipschitz(model, x, 0.1, steps=20, step_size=0.02, variant="released",
                               generator=torch.Generator().manual_seed(0))
    assert (ascent <= exact * (1 + 1e-4)).all()
    assert ascent.mean() >= reach * exact
    assert released.mean() < ascent.mean()
    with pytest.raises(ParameterError, match="variant"):
        local_lipschitz(model, x, 0.1, variant="descent")


def test_local_lipschitz_keeps_the_best_step_not_the_last():
    """The estimate is a lower bound of a maximum: any step's ratio is one, so the ascent reports the
    largest met, at least the ratio after any shorter ascent from the same start (the last step of a
    sign ascent oscillates about the maximum and may be below an earlier one)."""
    g = torch.Generator().manual_seed(1)
    model = _linear(torch.randn(1, 5, generator=g))
    x = 0.3 + 0.4 * torch.rand(64, 5, generator=g)
    runs = {k: local_lipschitz(model, x, 0.1, steps=k, step_size=0.02, generator=torch.Generator().manual_seed(0))
            for k in range(0, 21)}
    best_prefix = torch.stack([runs[k] for k in range(0, 21)]).amax(0)
    assert torch.allclose(runs[20], best_prefix)
    for k in range(1, 21):                        # so a longer ascent never reports less
        assert (runs[k] >= runs[k - 1] - 1e-6).all()


def test_trades_loss_is_ce_at_the_clean_point_and_larger_elsewhere():
    g = torch.Generator().manual_seed(2)
    clean, y = torch.randn(8, 10, generator=g), torch.randint(0, 10, (8,), generator=g)
    assert torch.allclose(trades_loss(clean, clean, y, 6.0), F.cross_entropy(clean, y))
    other = clean + torch.randn(8, 10, generator=g)
    assert trades_loss(clean, other, y, 1.0) > F.cross_entropy(clean, y)


def _small_model():
    spec = TrainSpec(data=DatasetSpec(name="mnist5k", n_train=500), model=ModelSpec(arch="lenet", width=2),
                     attack=AttackSpec(name="none", eps=0.0), lr=1e-3, epochs=2)
    return spec


def test_trades_attack_stays_in_the_ball_and_raises_the_kl(tmp_path):
    spec = _small_model()
    train(spec, tmp_path)
    from landscape_core.training import Run
    model = Run(spec, tmp_path, False).model()
    x = load_data(spec.data)[1].x[:50]
    x_adv = trades_perturb(model, x, 0.1, steps=5, step_size=0.025, generator=torch.Generator().manual_seed(0))
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        p = F.softmax(model(x), 1)
        kl = F.kl_div(F.log_softmax(model(x_adv), 1), p, reduction="batchmean")
        kl0 = F.kl_div(F.log_softmax(model(x + 0.001 * torch.randn_like(x)), 1), p, reduction="batchmean")
    assert kl > 10 * kl0


def test_multi_targeted_is_at_least_as_strong_as_pgd(tmp_path):
    spec = _small_model()
    train(spec, tmp_path)
    from landscape_core.training import Run
    model = Run(spec, tmp_path, False).model().eval()
    test = load_data(spec.data)[1]
    x, y = test.x[:100], test.y[:100]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        wrong_pgd = (model(pgd(model, x, y, 0.1, steps=10, step_size=0.01, generator=gen)).argmax(1) != y)
        x_mt = make_attack(AttackSpec(name="multi-targeted", eps=0.1, steps=10, step_size=0.01))(model, x, y, gen)
        wrong_mt = model(x_mt).argmax(1) != y
    assert (x_mt - x).abs().max() <= 0.1 + 1e-6
    assert wrong_mt.float().mean() >= wrong_pgd.float().mean()


def test_trades_trains_with_a_cosine_warm_up_and_resumes_exactly(tmp_path):
    spec = TrainSpec(data=DatasetSpec(name="mnist5k", n_train=300), model=ModelSpec(arch="lenet", width=2),
                     attack=AttackSpec(name="trades-kl", eps=0.1, steps=3, step_size=0.025), objective="trades",
                     beta=6.0, eps_schedule="cosine", eps_max=0.15, lr=1e-3, epochs=2)
    train(spec, tmp_path / "a")
    train(spec, tmp_path / "b", stop_after_epochs=1)
    train(spec, tmp_path / "b")
    pa, pb = load_probes(tmp_path / "a"), load_probes(tmp_path / "b")
    assert (pa["loss"] == pb["loss"]).all() and pa["eps"][0] < pa["eps"][-1]
    with pytest.raises(ParameterError, match="objective"):
        TrainSpec(attack=AttackSpec(name="pgd", eps=0.1, steps=3, step_size=0.025), objective="trades")
    with pytest.raises(ParameterError, match="objective"):
        TrainSpec(attack=AttackSpec(name="trades-kl", eps=0.1, steps=3, step_size=0.025))


def test_parameters_added_later_keep_old_run_keys():
    spec = _small_model()
    old = {k: v for k, v in spec.to_dict().items() if k not in ("precision", "objective", "beta", "lr_max")}
    text = json.dumps({"type": "TrainSpec", **old}, sort_keys=True)
    assert spec.digest() == hashlib.sha256(text.encode()).hexdigest()[:12]
    assert spec.replace(precision="bf16").digest() != spec.digest()
