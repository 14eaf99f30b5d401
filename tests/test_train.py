"""Training loop, probes and run store: resume is bitwise, divergence is a state, the store locks."""
import multiprocessing as mp

import numpy as np
import pytest
import torch

from landscape_core.attacks import AttackSpec
from landscape_core.data import DatasetSpec, load_data
from landscape_core.models import ModelSpec
from landscape_core.training.store import get_or_train, is_complete
from landscape_core.core.spec import ParameterError
from landscape_core.training.loop import PROBES, TrainSpec, load_probes, load_result, train


def tiny(**kw) -> TrainSpec:
    base = dict(data=DatasetSpec(name="mnist5k", n_train=120, n_test=50), model=ModelSpec(arch="lenet", width=1),
                attack=AttackSpec(name="pgd", eps=0.2, steps=2, step_size=0.1), lr=1e-2, epochs=3, batch_size=40,
                snapshots=(2,), seed=3)
    base.update(kw)
    return TrainSpec(**base)


@pytest.fixture(scope="module")
def data():
    return load_data(tiny().data)


def test_resume_equals_uninterrupted_bitwise(tmp_path, data):
    spec = tiny(eps_schedule="cosine", eps_max=0.3)
    train(spec, tmp_path / "a", data=data)
    part = train(spec, tmp_path / "b", data=data, stop_after_epochs=1)
    assert part.epochs_done == 1 and not (tmp_path / "b" / "result.json").exists()
    train(spec, tmp_path / "b", data=data)           # resumes from epoch 1
    a = torch.load(tmp_path / "a" / "final.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "final.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    pa, pb = load_probes(tmp_path / "a"), load_probes(tmp_path / "b")
    assert all(np.array_equal(pa[k], pb[k]) for k in PROBES)
    assert (tmp_path / "b" / "epoch_2.pt").exists()


def test_probes_are_recorded_per_batch(tmp_path, data):
    spec = tiny(eps_schedule="linear", eps_max=0.4)
    train(spec, tmp_path, data=data)
    p = load_probes(tmp_path)
    n = 3 * 3                                           # 3 epochs x ceil(120 / 40) batches
    assert all(len(p[k]) == n for k in PROBES)
    assert p["eps"][0] == 0.0 and p["eps"][-1] == pytest.approx(min(0.2, 0.4 * 8 / 9))
    assert (p["lr"] == 1e-2).all()
    # the first batch by hand (eps = 0 there: clean inputs): the initial weights, the first batch of the
    # seeded shuffle, loss, error and gradient norm before the step
    from landscape_core.data import batches
    from landscape_core.training.loop import initial_model
    model = initial_model(spec)
    init = torch.load(tmp_path / "init.pt", weights_only=True)["model"]
    assert all(torch.equal(v, init[k]) for k, v in model.state_dict().items())   # init.pt is the seeded init
    xb, yb = next(batches(data[0].x, data[0].y, 40, generator=torch.Generator().manual_seed(spec.seed)))
    logits = model.train()(xb)
    loss = torch.nn.functional.cross_entropy(logits, yb)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    assert p["loss"][0] == pytest.approx(loss.item(), rel=1e-5)
    assert p["robust_err"][0] == pytest.approx((logits.argmax(1) != yb).float().mean().item())
    assert p["grad_norm"][0] == pytest.approx(torch.sqrt(sum((g ** 2).sum() for g in grads)).item(), rel=1e-4)
    # the last distance is that of the saved final weights from the initial ones
    final = torch.load(tmp_path / "final.pt", weights_only=True)["model"]
    dist = torch.sqrt(sum(((final[k] - init[k]) ** 2).sum() for k, _ in model.named_parameters()))
    assert p["dist"][-1] == pytest.approx(dist.item(), rel=1e-5)


def test_dead_layer_probe_sees_a_dead_network(tmp_path, data):
    spec = tiny(attack=AttackSpec(name="none", eps=0.0), epochs=1, snapshots=())
    from landscape_core.training.loop import DeadLayerProbe, initial_model
    model = initial_model(spec)
    with torch.no_grad():
        model.fc1.bias.fill_(-1e3)                     # every pre-activation of relu3 negative
    probe = DeadLayerProbe(model)
    with probe:
        model(data[0].x[:10])
    assert probe.dead_count() == 1
    probe.remove()


def test_divergence_is_marked_not_raised(tmp_path, data):
    spec = tiny(attack=AttackSpec(name="none", eps=0.0), optimizer="sgd", lr=1e12, momentum=0.0, snapshots=())
    res = train(spec, tmp_path, data=data)
    assert res.diverged
    result = load_result(tmp_path)
    assert result["diverged"] and result["epochs_done"] < spec.epochs


def test_bad_spec_fails_before_training():
    with pytest.raises(ParameterError, match="periodic"):
        tiny(periodic=(5,))
    with pytest.raises(ParameterError, match="lr"):
        tiny(lr=-1.0)


def _worker(store, queue):
    torch.set_num_threads(1)
    run = get_or_train(tiny(epochs=1, snapshots=()), store)
    queue.put(run.trained)


def test_store_trains_once_under_concurrency(tmp_path):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(tmp_path, q)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    spec = tiny(epochs=1, snapshots=())
    assert is_complete(spec, tmp_path)
    trained = sorted(q.get(timeout=5) for _ in procs)
    assert trained == [False, True]                    # one trained, the other waited and loaded
    runs = [d for d in tmp_path.iterdir() if d.is_dir()]
    assert len(runs) == 1
    model = get_or_train(spec, tmp_path).model()
    assert not model.training
