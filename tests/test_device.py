"""The CUDA path: the same calls on a GPU give valid results that agree with the CPU.

Skipped where no CUDA device is present (CI has none).  On a GPU machine run
``python -m pytest tests/test_device.py -v``.  CUDA kernels are not bitwise equal to the CPU's, so
agreement is asserted with tolerances; validity (ε-ball, completion, resume, RNG) exactly.
"""
import numpy as np
import pytest
import torch

from landscape_core.analysis import hessian
from landscape_core.attacks import AttackSpec, make_attack, pgd
from landscape_core.analysis.curve_training import CurveTrainSpec, train_curve
from landscape_core.analysis.curves import BezierCurve
from landscape_core.data import DatasetSpec, augment_cifar, load_data
from landscape_core.analysis.robustness import evaluate
from landscape_core.models import ModelSpec, build_model
from landscape_core.training.store import get_or_train
from landscape_core.training.loop import TrainSpec, load_result, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
CUDA = "cuda"


def tiny(**kw) -> TrainSpec:
    base = dict(data=DatasetSpec(name="mnist5k", n_train=400, n_test=200), model=ModelSpec(arch="lenet", width=2),
                attack=AttackSpec(name="pgd", eps=0.2, steps=3, step_size=0.08), lr=1e-3, epochs=2, batch_size=50,
                snapshots=(1,), seed=1)
    base.update(kw)
    return TrainSpec(**base)


@pytest.fixture(scope="module")
def data():
    return load_data(tiny().data)


def _lenet(seed=0, width=2):
    torch.manual_seed(seed)
    return build_model("lenet", width, in_shape=(1, 28, 28), num_classes=10)


def test_pgd_on_cuda_stays_in_ball_and_raises_the_loss(data):
    model = _lenet().to(CUDA).eval()
    x, y = data[1].x[:100].to(CUDA), data[1].y[:100].to(CUDA)
    eps = torch.linspace(0.0, 0.3, 100, device=CUDA)
    gen = torch.Generator(device=CUDA).manual_seed(0)
    x_adv = pgd(model, x, y, eps, steps=10, step_ratio=0.25, generator=gen)
    assert x_adv.device.type == "cuda"
    assert ((x_adv - x).abs().amax(dim=(1, 2, 3)) <= eps + 1e-6).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert torch.equal(x_adv[0], x[0])                      # eps = 0 returns the input
    assert all(p.grad is None for p in model.parameters())  # no weight gradients
    ce = torch.nn.functional.cross_entropy
    assert ce(model(x_adv), y) > ce(model(x), y)


def test_pgd_cuda_matches_cpu_on_most_pixels(data):
    model = _lenet()
    x, y = data[1].x[:100], data[1].y[:100]
    cpu = pgd(model, x, y, 0.2, steps=5, step_ratio=0.25, random_start="none")
    gpu = pgd(model.to(CUDA), x.to(CUDA), y.to(CUDA), 0.2, steps=5, step_ratio=0.25, random_start="none").cpu()
    # sign(grad) can flip where a gradient entry is ~0; nearly every pixel must agree
    assert (cpu - gpu).abs().le(1e-5).float().mean() > 0.99


def test_training_on_cuda_completes_resumes_and_loads_on_cpu(tmp_path, data):
    spec = tiny()
    part = train(spec, tmp_path / "run", device=CUDA, data=data, stop_after_epochs=1)
    assert part.epochs_done == 1 and not (tmp_path / "run" / "result.json").exists()
    done = train(spec, tmp_path / "run", device=CUDA, data=data)        # resumes on the GPU
    assert done.epochs_done == spec.epochs and not done.diverged
    result = load_result(tmp_path / "run")
    assert result["device"] == "cuda" and result["n_updates"] == spec.epochs * 400 // 50
    store = tmp_path / "store"
    run = get_or_train(spec, store, device=CUDA, data=data)
    model = run.model(device="cpu")                                        # a GPU run read on a CPU
    assert next(model.parameters()).device.type == "cpu"
    probes = run.probes
    assert all(np.isfinite(v).all() for v in probes.values())
    # the CUDA run learns like the CPU run: same spec, close clean error after 2 epochs
    cpu_run = get_or_train(spec, tmp_path / "cpu_store", device="cpu", data=data)
    x, y = data[1].x, data[1].y
    with torch.no_grad():
        err = [float((m.eval()(x).argmax(1) != y).float().mean()) for m in (model, cpu_run.model())]
    assert abs(err[0] - err[1]) < 0.1, err


def test_augmentation_on_cuda_tensors():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 32, 32)
    cpu = augment_cifar(x, torch.Generator().manual_seed(0))
    gpu = augment_cifar(x.to(CUDA), gen).cpu()
    assert torch.equal(cpu, gpu)                 # same draws from the CPU generator, pure indexing


def test_hessian_top_eigenvalues_agree_with_cpu(data):
    model = _lenet(width=1)
    x, y = data[1].x[:200], data[1].y[:200]
    cpu = hessian.top_eigenpairs(model, x, y, k=3, tol=0.0, generator=torch.Generator().manual_seed(0))
    gpu = hessian.top_eigenpairs(model.to(CUDA), x.to(CUDA), y.to(CUDA), k=3, tol=0.0,
                                 generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(gpu.values, cpu.values, rtol=1e-3)
    overlap = np.abs((gpu.vectors * cpu.vectors).sum(axis=1))
    assert (overlap > 0.99).all(), overlap


def test_package_attacks_on_cuda_keep_the_callers_rng(data):
    model = _lenet().to(CUDA).eval()
    x, y = data[1].x[:50].to(CUDA), data[1].y[:50].to(CUDA)
    suite = {"pgd": AttackSpec(name="pgd", eps=0.2, steps=10, step_size=0.05),
             "apgd-ce": AttackSpec(name="apgd-ce", eps=0.2, steps=20),
             "square": AttackSpec(name="square", eps=0.2, n_queries=50)}
    state_cpu, state_gpu = torch.get_rng_state(), torch.cuda.get_rng_state()
    res = evaluate(model, x, y, suite, batch_size=25, seed=0)
    assert torch.equal(torch.get_rng_state(), state_cpu) and torch.equal(torch.cuda.get_rng_state(), state_gpu)
    for name in suite:
        assert res.worst_error >= res.robust_error[name] >= res.clean_error - 1e-9
    x_adv = make_attack(suite["apgd-ce"])(model, x, y, torch.Generator(device=CUDA).manual_seed(0))
    assert (x_adv - x).abs().max() <= 0.2 + 1e-6 and x_adv.device.type == "cuda"


def test_bezier_curve_on_cuda_keeps_its_end_points(data):
    a, b = _lenet(0).to(CUDA), _lenet(1).to(CUDA)
    curve = BezierCurve(a, a.state_dict(), b.state_dict()).to(CUDA)
    x, y = data[0].x[:200], data[0].y[:200]
    history = train_curve(curve, x, y, CurveTrainSpec(epochs=2, batch_size=50, lr=0.01))
    assert np.isfinite(history["loss"]).all()
    xt = x[:20].to(CUDA)
    with torch.no_grad():
        assert torch.allclose(curve(xt, 0.0), a.eval()(xt), atol=1e-5)
        assert torch.allclose(curve(xt, 1.0), b.eval()(xt), atol=1e-5)


def _eager_and_graphed(model, x, y, monkeypatch, **kw):
    from landscape_core.attacks import cuda_graphs as attacks
    monkeypatch.setenv("LANDSCAPE_CUDA_GRAPHS", "0")
    eager = pgd(model, x, y, 0.2, **kw)
    monkeypatch.setenv("LANDSCAPE_CUDA_GRAPHS", "1")
    pgd(model, x, y, 0.2, **kw)                        # first sighting: eager, remembered
    graphed = pgd(model, x, y, 0.2, **kw)              # second: captured and replayed
    assert any(isinstance(v, attacks._GraphedStep) for v in attacks._GRAPHS[model].values())
    return eager, graphed


@pytest.mark.parametrize("arch, shape, norm", [("lenet", (1, 28, 28), "linf"), ("resnet18", (3, 32, 32), "linf"),
                                               ("lenet", (1, 28, 28), "l2")])
def test_cuda_graph_pgd_equals_eager(arch, shape, norm, monkeypatch):
    torch.manual_seed(0)
    model = build_model(arch, 2, in_shape=shape, num_classes=10).to(CUDA).eval()   # BatchNorm in eval
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, *shape, generator=g).to(CUDA)
    y = torch.randint(0, 10, (64,), generator=g).to(CUDA)
    kw = dict(steps=10, step_ratio=0.25, norm=norm, generator=None)
    eager, graphed = _eager_and_graphed(model, x, y, monkeypatch, **kw)
    same = (eager - graphed).abs().le(1e-6).float().mean().item()
    assert same > 0.999, same


def test_cuda_graph_sees_optimizer_updates(monkeypatch, data):
    model = _lenet().to(CUDA)
    x, y = data[0].x[:100].to(CUDA), data[0].y[:100].to(CUDA)
    kw = dict(steps=5, step_ratio=0.25)
    _eager_and_graphed(model, x, y, monkeypatch, **kw)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(3):                                  # weights change in place
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    eager, graphed = _eager_and_graphed(model, x, y, monkeypatch, **kw)
    assert (eager - graphed).abs().le(1e-6).float().mean().item() > 0.999


def test_functional_models_stay_eager(data):
    from landscape_core.attacks import cuda_graphs as attacks
    from landscape_core.analysis.curves import PointModel
    base = _lenet().to(CUDA)
    point = PointModel(base, dict(base.named_parameters()), dict(base.named_buffers())).eval()
    x, y = data[0].x[:50].to(CUDA), data[0].y[:50].to(CUDA)
    for _ in range(3):
        pgd(point, x, y, 0.2, steps=3, step_ratio=0.25)
    assert point not in attacks._GRAPHS
