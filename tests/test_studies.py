"""The per-section studies: typed training parameters and the zoo, probe windows, stall detection, PAS
specs, the curvature experiments and curve connection through the run store, on tiny models."""
import numpy as np
import pytest
import torch

from landscape_core.analysis.curve_training import CurveRunSpec, CurveTrainSpec
from landscape_core.analysis.curves import BezierCurve, PathScan
from landscape_core.analysis.dynamics import health, windows
from landscape_core.analysis.stats import rank_correlation
from landscape_core.attacks import AttackSpec
from landscape_core.core.spec import ParameterError
from landscape_core.data import DatasetSpec, Split, load_data
from landscape_core.models import ModelSpec, build_model
from landscape_core.studies import GradientDynamicsParams, PASParams, TrainingParams, ZooParams
from landscape_core.studies import connectivity, cosine, curvature, pas
from landscape_core.training.schedules import ScheduleSpec, schedule_value
from landscape_core.training.store import get_or_train, run_key


def test_zoo_specs_share_everything_but_the_budget():
    Z = GradientDynamicsParams().zoo()
    specs = Z.specs()
    assert list(specs) == list(Z.eps_list)
    assert specs[0.0].attack.name == "none"
    s = specs[0.4]
    assert s.attack.name == "pgd" and s.attack.step_size == pytest.approx(Z.training.step_ratio * 0.4)
    assert s.replace(attack=specs[0.2].attack) == specs[0.2]
    assert len({sp.digest() for sp in specs.values()}) == len(specs)


def test_one_typed_way_from_parameters_to_runs():
    """02's zoo and 05's constant-ε run come from the same TrainingParams.spec: with equal settings they
    are the same run (one digest), and CIFAR10 augmentation is on in both (it once differed)."""
    T = TrainingParams(dataset="cifar10", arch="resnet18", width=1, lr=1.0e-3)
    zoo = ZooParams(training=T, eps_list=(0.0, 0.4), seed=3)
    P = PASParams(training=T, eps=0.4, lrs=(1.0e-3,), seed=3)
    assert pas.run_spec(P, "constant", 1.0e-3, 3).digest() == zoo.spec(0.4).digest()
    assert zoo.spec(0.4).augment and pas.run_spec(P, "cosine", 1.0e-3, 3).augment


def test_a_section_overrides_only_what_it_names():
    """A params file's ``training:`` mapping overrides the notebook's own defaults of that section."""
    P = PASParams.from_params({"training": {"width": 4}})
    assert P.training.width == 4 and P.training.n_train == PASParams().training.n_train == 400
    with pytest.raises(ParameterError, match="'widht'.*did you mean 'width'"):
        PASParams.from_params({"training": {"widht": 4}})


def test_windows_and_rank_correlation():
    probes = {"grad_norm": np.arange(10.0), "robust_err": np.linspace(1, 0, 10), "dist": np.arange(1.0, 11.0)}
    w = windows(0.1, probes, first_n=4, last_n=2)
    assert w.early_grad == pytest.approx(1.5) and w.late_grad == pytest.approx(8.5)
    assert w.dist_at_n == 4.0 and w.final_dist == 10.0
    assert rank_correlation([0, 1, 2], [3, 2, 1]) == pytest.approx(-1.0)


def test_pas_specs_follow_the_paper():
    P = PASParams(training=TrainingParams(epochs=10, lr=1.0e-3), periods=2, lrs=(1.0e-3,))
    cos = pas.run_spec(P, "cosine", 1e-3, 0)
    lin = pas.run_spec(P, "linear", 1e-3, 0)
    assert cos.eps_max == pytest.approx(0.6) and lin.eps_max == pytest.approx(0.8)   # MNIST settings
    assert schedule_value(cos.eps_spec, 0.0) == 0.0 and schedule_value(cos.eps_spec, 9.9) == pytest.approx(0.4)
    assert schedule_value(lin.eps_spec, 2.5) == pytest.approx(0.8 * 2.5 / 10)
    per = pas.run_spec(P, "cosine", 1e-3, 0, periodic=True)
    assert per.periodic == (5.0,) and per.snapshots == (5, 10)
    assert schedule_value(per.eps_spec, 5.0) == 0.0                                # ε restarts
    assert len(pas.grid(P)) == 4 * P.seeds                          # constant, cosine, linear, lr warm-up
    lrw = pas.run_spec(P, pas.LR_WARMUP, 1e-3, 0)                   # App C.2.3: constant eps, lr from 0 to 1e-3
    assert lrw.eps_schedule == "constant" and lrw.attack.eps == pytest.approx(0.4)
    assert schedule_value(lrw.lr_spec, 0.0) == 0.0 and schedule_value(lrw.lr_spec, 2.5) == pytest.approx(5e-4)
    assert schedule_value(lrw.lr_spec, 5.0) == pytest.approx(1e-3) == schedule_value(lrw.lr_spec, 9.9)
    assert len(pas.grid(P.replace(lr_warmup=0.0))) == 3 * P.seeds
    with pytest.raises(ParameterError, match="training.lr"):
        PASParams(lrs=(1.0e-3,), training=TrainingParams(lr=1.0e-2))


def test_table1_tasks_train_the_paper_rows():
    """05's CIFAR10 rows: each scheduler without and with resets (lr and eps restart, 3 period ends kept),
    the lr decaying at the milestones of the run or of each period, warm-ups to 2 x eps (16/255)."""
    P = PASParams(n_test=100, tasks=({"name": "cifar10_vgg", "training": {"arch": "vgg16"}}, {}))
    vgg, res = P.tasks
    assert (vgg.training.dataset, vgg.training.arch, vgg.training.width, vgg.training.optimizer) == \
        ("cifar10", "vgg16", 8, "sgd")
    assert res.name == "cifar10_resnet18" and res.training.arch == "resnet18" and res.eps == pytest.approx(8 / 255)
    plain, periodic = pas.task_spec(res, "cosine", 0, False), pas.task_spec(res, "cosine", 0, True)
    assert plain.augment and plain.optimizer == "sgd" and plain.attack.steps == 10
    assert plain.attack.step_size == pytest.approx(2 / 255)
    assert plain.eps_max == pytest.approx(16 / 255) and pas.task_spec(res, "constant", 0, False).eps_max is None
    assert plain.periodic == () and plain.snapshots == ()
    assert periodic.periodic == (100.0, 150.0) and periodic.snapshots == (100, 150, 200)
    lr = periodic.lr_spec
    assert schedule_value(plain.lr_spec, 99.9) == pytest.approx(0.1)
    assert schedule_value(plain.lr_spec, 100.0) == pytest.approx(0.01)       # lr / 10 at 100 and 150 of 200
    assert schedule_value(plain.lr_spec, 150.0) == pytest.approx(0.001)
    assert schedule_value(lr, 50.0) == pytest.approx(0.01) and schedule_value(lr, 100.0) == pytest.approx(0.1)
    assert schedule_value(lr, 125.0) == pytest.approx(0.01)                  # within the second period
    assert schedule_value(periodic.eps_spec, 100.0) == 0.0                   # eps restarts with the period
    specs = P.training_specs()
    assert sum(s.data.name == "cifar10" for s in specs) == 2 * 2 * 3 * P.seeds
    assert len({run_key(s) for s in specs}) == len(specs)


@pytest.mark.parametrize("change, fragment", [
    (dict(tasks=({"name": "a b"},)), "letters, digits"),
    (dict(tasks=({"name": "a"}, {"name": "a"})), "its own name"),
    (dict(tasks=({"resets": [150, 100]},)), "strictly increasing"),
    (dict(tasks=({"resets": [100, 200]},)), "< training.epochs = 200"),
    (dict(tasks=({"periodic_lr": [True, True]},)), "repeat"),
    (dict(tasks=({"traning": {}},)), "did you mean 'training'"),
    (dict(tasks=({"name": "small", "training": {"dataset": "mnist5k", "arch": "lenet"}},), n_test=5000,
          training={"dataset": "mnist", "n_train": None}), "the test set of task small"),
])
def test_table1_tasks_are_validated(change, fragment):
    with pytest.raises(ParameterError, match=fragment):
        PASParams(**{"n_test": 100, **change})


def test_fig2_tasks_train_a_zoo_each():
    G = GradientDynamicsParams(tasks=({"training": {"n_train": 600, "epochs": 3, "width": 1}},))
    task = G.tasks[0]
    assert task.eps_list[-1] == pytest.approx(8 / 255) and task.training.dataset == "cifar10"
    cifar = [s for s in G.training_specs() if s.data.name == "cifar10"]
    assert [s.attack.eps for s in cifar] == pytest.approx(list(task.eps_list))
    assert all(s.model.arch == "resnet18" and s.seed == G.seed for s in cifar)
    with pytest.raises(ParameterError, match="updates of each run of task cifar10_resnet18"):
        GradientDynamicsParams(first_n=6, tasks=({"training": {"n_train": 100, "epochs": 3}},))


def test_a_list_of_tasks_round_trips_and_leaves_old_digests_alone():
    P = PASParams(n_test=100, tasks=({"name": "cifar10_vgg", "training": {"arch": "vgg16"}},))
    plain = P.to_dict()
    assert plain["tasks"][0]["training"]["arch"] == "vgg16"                   # plain data, not specs
    assert PASParams.from_params(plain) == P and PASParams.from_params(plain).digest() == P.digest()
    assert "tasks" not in PASParams()._digest_dict()                          # added at its default: old keys kept
    assert P.digest() != P.replace(tasks=()).digest()


class _StubRun:
    """What :func:`health` reads of a run: its model, probes, width, batch size and data set."""

    def __init__(self, model, dead_layers, robust_err=0.5, schedule="constant"):
        err = robust_err if np.ndim(robust_err) else np.full(len(dead_layers), robust_err)
        self._model, self.probes = model, {"dead_layers": np.asarray(dead_layers, float),
                                           "robust_err": np.asarray(err, float)}
        epochs = len(dead_layers) // 2
        self.spec = type("S", (), {"model": ModelSpec(arch="lenet", width=1), "batch_size": 25,
                                   "data": DatasetSpec(name="mnist5k"), "epochs": epochs,
                                   "attack": AttackSpec(eps=0.3, step_size=0.075),
                                   "eps_spec": ScheduleSpec(kind=schedule, value=0.3, v_max=0.6 if schedule != "constant"
                                                            else None, epochs=epochs)})()

    def model(self, device="cpu"):
        return self._model


def test_health_flags_a_constant_classifier_dead_layers_and_the_plateau():
    x = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    train = Split(x, torch.arange(50) % 10)                  # 50 images, batch 25: 2 updates an epoch
    torch.manual_seed(0)
    lively = build_model("linear", 1).eval()
    assert len(set(lively(x).argmax(1).tolist())) > 1
    constant = build_model("lenet", 1).eval()
    with torch.no_grad():
        for p in constant.parameters():
            p.zero_()
        constant.fc2.bias[3] = 1.0                     # every input: class 3
    h = health(_StubRun(constant, [0, 0, 2, 1], robust_err=0.3), train)
    assert h.constant and h.dead_fraction == 1.0 and h.stalled and not h.trained   # constant: never trained
    h = health(_StubRun(lively, [2, 0, 0, 0]), train)
    assert not h.constant and h.dead_fraction == 0.0 and not h.stalled and h.trained
    assert health(_StubRun(lively, [0, 0, 1, 1]), train).stalled                     # dead layer, not constant
    assert h.chance_err == pytest.approx(0.9)
    assert not health(_StubRun(lively, [0, 0, 0, 0], robust_err=0.75), train).trained  # 0.75 > 0.8 x 0.9
    assert health(_StubRun(lively, [0, 0, 0, 0], robust_err=0.70), train).trained


def test_health_reads_convergence_where_the_budget_is_at_its_target():
    x = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    train = Split(x, torch.arange(50) % 10)                  # 2 updates an epoch, 20 epochs
    torch.manual_seed(0)
    lively = build_model("linear", 1).eval()
    flat = np.r_[np.linspace(0.9, 0.2, 20), np.full(20, 0.2)]
    h = health(_StubRun(lively, [0] * 40, robust_err=flat), train)
    assert h.converged and h.late_fall == pytest.approx(0.0) and h.total_fall == pytest.approx(0.7)
    falling = np.linspace(0.9, 0.3, 40)
    assert not health(_StubRun(lively, [0] * 40, robust_err=falling), train).converged
    # a linear warm-up to 2 x 0.3 reaches 0.3 half-way: its error rises until then, and is read after it
    warm = np.r_[np.linspace(0.2, 0.6, 20), np.full(20, 0.5)]
    hw = health(_StubRun(lively, [0] * 40, robust_err=warm, schedule="linear"), train)
    assert hw.converged and hw.late_fall == pytest.approx(0.0)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    Z = ZooParams(training=TrainingParams(n_train=100, width=1, epochs=1, pgd_steps=2), eps_list=(0.0, 0.2))
    data = load_data(Z.training.data_spec())
    store = tmp_path_factory.mktemp("store")
    run = get_or_train(Z.spec(0.2), store, data=data)
    return Z, run, data, store


def test_spectrum_is_that_of_the_fixed_adversarial_set(tiny_run):
    Z, run, data, _ = tiny_run
    x, y = data[0].x[:40], data[0].y[:40]
    model = run.model()
    s = curvature.spectrum(model, x, y, 0.2, Z.attack(0.2), k=3, n_random=2, seed=0)
    assert s.values.shape == (3,) and np.all(np.diff(s.values) <= 1e-9)
    # the pairs are eigenpairs of the Hessian at the FIXED adversarial examples (the zoo's PGD at eps 0.2,
    # generator seeded with the seed), and not of the clean loss's Hessian
    from landscape_core.analysis.hessian import fixed_adversarial_set, hvp
    from landscape_core.attacks import make_attack
    x_adv = fixed_adversarial_set(model, x, y, make_attack(Z.training.attack(0.2)),
                                  generator=torch.Generator().manual_seed(0))
    assert (x_adv - x).abs().max() <= 0.2 + 1e-6 and not torch.equal(x_adv, x)
    for lam, v in zip(s.values, s.vectors):
        v = torch.from_numpy(np.ascontiguousarray(v))
        assert (hvp(model, x_adv, y, v) - lam * v).norm() < 1e-2 * abs(lam)
        assert (hvp(model, x, y, v) - lam * v).norm() > 0.1 * abs(lam)
    with torch.no_grad():
        assert s.adv_loss == pytest.approx(torch.nn.functional.cross_entropy(model(x_adv), y).item(), rel=1e-5)
    again = curvature.spectrum(run.model(), x, y, 0.2, Z.attack(0.2), k=3, n_random=2, seed=0)
    assert np.allclose(s.values, again.values, rtol=1e-6)                         # deterministic


def test_similarity_compares_eigenvector_and_random(tiny_run):
    Z, run, data, _ = tiny_run
    x, y = data[0].x[:30], data[0].y[:30]
    model = run.model()
    res = cosine.similarity(model, x, y, x, y, Z.attack(0.2), a_values=(0.0, 0.5), repeats=1, seed=0)
    assert set(res) == set(cosine.DIRECTIONS)
    # a = 0 by hand: two runs of the zoo's PGD at eps 0.2 on the model itself with the recorded seeds
    from landscape_core.analysis.similarity import perturbation_cosine
    from landscape_core.attacks import adversarial_examples, make_attack
    attack = make_attack(Z.training.attack(0.2))
    for r in res.values():
        d1, d2 = (adversarial_examples(model, x, y, attack, torch.Generator().manual_seed(int(s))) - x
                  for s in r.seeds[0])
        assert r.cosine_mean[0] == pytest.approx(perturbation_cosine(d1, d2).mean().item(), abs=1e-9)
    assert res["Eigenvector"].cosine_mean[1] != res["Random"].cosine_mean[1]      # two different directions


def test_connect_returns_the_trained_curve_and_resumes_from_the_store(tiny_run):
    """The typed result keeps the trained Bezier curve (a dict once let the scan overwrite it), the
    end points of both paths are exact, and a second call loads the same curve from the run store."""
    Z, run, data, store = tiny_run
    start = run
    end = get_or_train(Z.spec(0.2, seed=1), store, data=data)
    x, y = data[0].x[:60], data[0].y[:60]
    spec = CurveRunSpec(start=run_key(start.spec), end=run_key(end.spec),
                        training=CurveTrainSpec(epochs=1, batch_size=30, lr=1e-2, optimizer="adam"),
                        attack=AttackSpec(name="none", eps=0.0), seed=0)
    res = connectivity.connect(start, end, x, y, x, y, spec, store, ts=(0.0, 0.5, 1.0))
    assert isinstance(res.curve, BezierCurve) and isinstance(res.bezier, PathScan)
    straight = res.curve.start + 0.5 * (res.curve.end - res.curve.start)
    assert not torch.allclose(res.curve.controls[0], straight)                  # the control point was trained
    assert res.line.clean_loss.shape == (3,) and res.line.adv_loss is None
    assert res.line.clean_loss[0] == pytest.approx(res.bezier.clean_loss[0])
    assert res.line.clean_loss[-1] == pytest.approx(res.bezier.clean_loss[-1])
    again = connectivity.connect(start, end, x, y, x, y, spec, store, ts=(0.0, 0.5, 1.0))
    assert torch.equal(again.curve.controls, res.curve.controls) and again.history == res.history
    assert np.array_equal(again.bezier.clean_loss, res.bezier.clean_loss)
