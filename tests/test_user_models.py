"""Issue 27 (part): any model from the command line - a factory, its weights, its normalisation - checked on
one clean batch before any attack; bad input stops with a clear error and writes nothing."""
from __future__ import annotations

import textwrap

import pytest
import torch
from torch import nn

from landscape_core.cli.main import main
from landscape_core.core.spec import ParameterError
from landscape_core.studies.user_models import (check_model, factory_model, load_weights, parse_normalization,
                                                with_normalization)

FACTORIES = textwrap.dedent('''
    import torch
    from torch import nn

    class Net(nn.Module):                      # a small WideResNet-style stem, its own normalisation outside
        def __init__(self, classes=10, softmax=False, noise=0.0):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 28 * 28, classes)
            self.softmax, self.noise = softmax, noise
        def forward(self, x):
            z = self.fc(torch.relu(self.conv(x)).flatten(1))
            z = z + self.noise * torch.randn_like(z)
            return z.softmax(1) if self.softmax else z

    def net(): torch.manual_seed(0); return Net()
    def probabilities(): return Net(softmax=True)
    def three_classes(): return Net(classes=3)
    def randomised(): return Net(noise=1.0)
    def broken(): raise RuntimeError("no such checkpoint")
    def not_a_module(): return 3
''')


@pytest.fixture
def factories(tmp_path, monkeypatch):
    (tmp_path / "user_nets.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _x(n=8):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def test_a_factory_its_weights_with_dataparallel_prefixes_and_its_normalisation(factories):
    model = factory_model("user_nets:net")
    trained = factory_model("user_nets:net")
    with torch.no_grad():
        trained.fc.bias.fill_(0.5)
    path = factories / "w.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()}}, path)
    load_weights(model, path)
    assert torch.equal(model.fc.bias, trained.fc.bias)
    mean, std = parse_normalization("0.1307,0.3081", 1)
    wrapped = with_normalization(model, mean, std)
    x = _x()
    assert torch.allclose(wrapped(x), model((x - 0.1307) / 0.3081))
    assert parse_normalization("cifar10", 3)[0] == pytest.approx([0.4914, 0.4822, 0.4465], abs=1e-3)
    assert parse_normalization("0.5/0.4/0.3,0.2/0.2/0.2", 3) == ([0.5, 0.4, 0.3], [0.2, 0.2, 0.2])
    check = check_model(wrapped, x, 10)
    assert check.num_classes == 10 and not check.randomised


@pytest.mark.parametrize("target, fragment", [
    ("user_nets:broken", "the factory raised RuntimeError: no such checkpoint"),
    ("user_nets:not_a_module", "not a torch.nn.Module"),
    ("user_nets:nope", "cannot be imported"),
    ("user_nets", "package.module:factory"),
])
def test_a_factory_that_fails_is_named(factories, target, fragment):
    with pytest.raises(ParameterError, match=fragment):
        factory_model(target)


def test_weights_that_do_not_fit_are_named(factories):
    path = factories / "other.pt"
    torch.save(nn.Linear(3, 3).state_dict(), path)
    with pytest.raises(ParameterError, match="other.pt.*does not fit"):
        load_weights(factory_model("user_nets:net"), path)


@pytest.mark.parametrize("target, fragment", [
    ("user_nets:probabilities", "drop the final softmax"),
    ("user_nets:three_classes", r"\[8, 10\]"),
])
def test_outputs_that_are_not_the_data_sets_logits_are_refused(factories, target, fragment):
    with pytest.raises(ParameterError, match=fragment):
        check_model(factory_model(target), _x(), 10)


def test_nan_logits_and_inputs_outside_the_box_are_refused(factories):
    model = factory_model("user_nets:net")
    with torch.no_grad():
        model.fc.bias.fill_(float("nan"))
    with pytest.raises(ParameterError, match="finite"):
        check_model(model, _x(), 10)
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        check_model(factory_model("user_nets:net"), _x() * 255, 10)


def test_a_randomised_model_is_flagged(factories):
    check = check_model(factory_model("user_nets:randomised"), _x(), 10)
    assert check.randomised and check.logit_change > 0.1


def test_a_bad_model_from_the_command_line_writes_nothing(factories, capsys):
    out = factories / "page"
    assert main(["diagnose", "--model", "user_nets:broken", "--out", str(out)]) == 2
    assert "no such checkpoint" in capsys.readouterr().err and not out.exists()
    assert main(["diagnose", "--model", "user_nets:probabilities", "--out", str(out),
                 "--set", "n_test=10", "--set", "masking.n_examples=10"]) == 2
    assert "softmax" in capsys.readouterr().err and not out.exists()
    assert main(["diagnose", "--weights", "w.pt", "--run", "x", "--out", str(out)]) == 2
    assert "go with --model" in capsys.readouterr().err and not out.exists()


def test_a_randomised_model_is_diagnosed_through_eot(factories):
    """fra31/auto-attack #15, #56: a randomised defence is attacked through the mean probability of its draws."""
    from landscape_core.report.diagnosis import checks, diagnose
    from landscape_core.studies.diagnose import DiagnoseParams
    small = {"eps": 0.1, "n_test": 20, "pgd_steps": 2, "pgd100_steps": 2, "apgd_steps": 2, "square_queries": 5,
             "attack_grid": {"steps": 2, "restarts": 2, "l2_eps": [1.0], "l2_steps": 2},
             "masking": {"n_examples": 10, "iterations": [2, 3, 4], "sweep_steps": 2, "square_queries": 5},
             "hessian_examples": 10, "hessian_batches": 1, "k": 1, "n_random": 1, "trace_samples": 2, "slq_steps": 3,
             "layer_steps": 2, "cosine_examples": 10, "repeats": 1, "lipschitz_steps": 1, "eot_draws": 4}
    d, _ = diagnose(factory_model("user_nets:randomised"), DiagnoseParams.from_params(small), factories / "eot")
    first = checks(d)[0]
    assert d.eot_draws == 4 and first.key == "deterministic" and first.verdict == "fails"
    assert "EOT over 4 draws" in first.measured
    d, _ = diagnose(factory_model("user_nets:net"), DiagnoseParams.from_params(small), factories / "plain")
    assert d.eot_draws == 1 and checks(d)[0].verdict == "holds"


def test_the_page_sets_the_model_beside_the_studys_models_at_its_budget(factories):
    """Issue 27, item 4: the store's runs on the same data set and budget are measured beside the model."""
    from landscape_core.report.diagnosis import diagnose
    from landscape_core.studies.diagnose import DiagnoseParams
    from landscape_core.studies.base import TrainingParams
    from landscape_core.training import get_or_train
    T = TrainingParams(n_train=100, width=1, epochs=1, pgd_steps=2)
    store = factories / "runs"
    for eps in (0.1, 0.2):                                   # only the 0.1 run is at the diagnosed budget
        get_or_train(T.spec(eps, seed=0), store)
    small = {"eps": 0.1, "n_test": 20, "pgd_steps": 2, "pgd100_steps": 2, "apgd_steps": 2, "square_queries": 5,
             "attack_grid": {"steps": 2, "restarts": 2, "l2_eps": [1.0], "l2_steps": 2},
             "masking": {"n_examples": 10, "iterations": [2, 3, 4], "sweep_steps": 2, "square_queries": 5},
             "hessian_examples": 10, "hessian_batches": 2, "k": 1, "n_random": 1, "trace_samples": 2, "slq_steps": 3,
             "layer_steps": 2, "cosine_examples": 10, "repeats": 1, "lipschitz_steps": 1}
    d, page = diagnose(factory_model("user_nets:net"), DiagnoseParams.from_params(small), factories / "beside",
                       store=store)
    assert [r["model"] for r in d.comparison][0] == "this model" and len(d.comparison) == 2
    assert "eps 0.1" in d.comparison[1]["model"] and d.comparison[1]["top eigenvalue (normalised)"] > 0
    text = page.read_text()
    assert "beside the study" in text and text.count("data:image/png;base64,") == 3
    d, _ = diagnose(factory_model("user_nets:net"), DiagnoseParams.from_params({**small, "compare": 0}),
                    factories / "alone", store=store)
    assert d.comparison is None
    # the diagnosed model's row is read from its diagnosis; the store's copy of the same weights, measured
    # by compare_row, must read alike (same measures, same generators)
    from landscape_core.studies.diagnose import study_runs
    run = study_runs(store, DiagnoseParams.from_params(small))[0]
    d, _ = diagnose(run.model(), DiagnoseParams.from_params(small), factories / "itself", store=store)
    mine, stored = d.comparison[0], d.comparison[1]
    assert {k: v for k, v in mine.items() if k != "model"} == pytest.approx(
        {k: v for k, v in stored.items() if k != "model"}, rel=1e-6)


def test_too_many_hessian_batches_fail_before_any_attack(factories):
    from landscape_core.report.diagnosis import diagnose
    from landscape_core.studies.diagnose import DiagnoseParams
    with pytest.raises(ParameterError, match="hessian_batches"):
        diagnose(factory_model("user_nets:net"), DiagnoseParams(hessian_examples=100, hessian_batches=100),
                 factories / "none")
    assert not (factories / "none").exists()


# --- RobustBench checkpoints, offline ----------------------------------------------------------------
def _robustbench():
    import importlib.util
    if importlib.util.find_spec("robustbench") is None:
        pytest.skip("the robustbench extra is not installed (pip install -e '.[robustbench]'; make test installs it)")
    from landscape_core.studies.user_models import _robustbench_zoo
    return _robustbench_zoo()


def test_a_robustbench_checkpoint_in_its_format_is_built_and_loaded_offline(tmp_path):
    from landscape_core.studies.user_models import robustbench_model
    zoo, Dataset, Threat = _robustbench()
    entry = zoo[Dataset("cifar10")][Threat("Linf")]["Wong2020Fast"]         # PreActResNet-18, 11 M parameters
    torch.manual_seed(0)
    reference = entry["model"]().eval()
    # RobustBench's format: a state dict under "state_dict", DataParallel's module. prefixes, and (as the
    # entry's own checkpoint) without the normalisation buffers mu and sigma that its constructor sets
    state = {f"module.{k}": v for k, v in reference.state_dict().items() if k not in ("mu", "sigma")}
    path = tmp_path / "cifar10" / "Linf" / "Wong2020Fast.pt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": state, "epoch": 30}, path)
    model = robustbench_model("Wong2020Fast", "Linf", "cifar10", tmp_path)
    assert not model.training
    for k, v in reference.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert torch.equal(model(x), reference(x))
    assert check_model(model, x, 10).randomised is False
    # a file that lacks a parameter does not fit, and says so
    del state["module.linear.weight"]
    torch.save({"state_dict": state}, path)
    with pytest.raises(ParameterError, match="does not fit the model"):
        robustbench_model("Wong2020Fast", "Linf", "cifar10", tmp_path)


def test_a_missing_robustbench_checkpoint_names_its_path_and_nothing_is_downloaded(tmp_path, capsys):
    from landscape_core.studies.user_models import robustbench_model
    _robustbench()
    with pytest.raises(ParameterError, match=r"cifar10/Linf/Wong2020Fast\.pt.*nothing is downloaded"):
        robustbench_model("Wong2020Fast", "Linf", "cifar10", tmp_path / "models")
    with pytest.raises(ParameterError, match="did you mean Wong2020Fast"):
        robustbench_model("Wong2020Fst", "Linf", "cifar10", tmp_path / "models")
    with pytest.raises(ParameterError, match="--threat-model"):
        robustbench_model("Wong2020Fast", "Linfinity", "cifar10", tmp_path / "models")
    out = tmp_path / "page"
    assert main(["diagnose", "--robustbench", "Wong2020Fast", "--model-dir", str(tmp_path / "models"),
                 "--out", str(out)]) == 2
    assert "Wong2020Fast.pt" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "models").exists()


def test_the_transfer_column_attacks_through_the_surrogate(factories, capsys):
    """The transfer column (reviewer 1's, in 05): the training attack computed on ``--surrogate``, the model
    only queried.  A surrogate that is the model itself makes it the white-box PGD column; a constant
    surrogate (no gradient) cannot beat the clean error by much."""
    from landscape_core.report.diagnosis import checks
    from landscape_core.studies.diagnose import DiagnoseParams, diagnose_model
    small = {"eps": 0.1, "n_test": 20, "pgd_steps": 2, "pgd100_steps": 2, "apgd_steps": 2, "square_queries": 5,
             "attack_grid": {"steps": 2, "restarts": 2, "l2_eps": [1.0], "l2_steps": 2},
             "masking": {"n_examples": 10, "iterations": [2, 3, 4], "sweep_steps": 2, "square_queries": 5},
             "hessian_examples": 10, "hessian_batches": 1, "k": 1, "n_random": 1, "trace_samples": 2, "slq_steps": 3,
             "layer_steps": 2, "cosine_examples": 10, "repeats": 1, "lipschitz_steps": 1}
    P = DiagnoseParams.from_params(small)
    d = diagnose_model(factory_model("user_nets:net"), P, surrogate=factory_model("user_nets:net"))
    assert "transfer" in d.grid and d.grid["transfer"] == pytest.approx(d.suite["PGD"], abs=10.0)
    assert {c.key: c.verdict for c in checks(d)}["transfer_vs_white"] != "untestable"
    flat = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    nn.init.zeros_(flat[1].weight)
    nn.init.zeros_(flat[1].bias)
    d0 = diagnose_model(factory_model("user_nets:net"), P, surrogate=flat)
    assert d0.grid["transfer"] <= d.grid["transfer"]
    out = factories / "page"
    assert main(["diagnose", "--model", "user_nets:net", "--surrogate", "user_nets:broken", "--out", str(out)]) == 2
    assert "--surrogate" in capsys.readouterr().err and not out.exists()
    assert main(["diagnose", "--model", "user_nets:net", "--surrogate-weights", "w.pt", "--out", str(out)]) == 2
    assert "goes with --surrogate" in capsys.readouterr().err and not out.exists()


def test_a_constant_classifier_makes_the_one_model_checks_untestable(factories):
    """A model that predicts one class is outside every rule's regime (untestable), as the study's own
    constant classifiers are; its determinism is still checked."""
    from landscape_core.report.diagnosis import checks
    from landscape_core.studies.diagnose import DiagnoseParams, diagnose_model
    small = {"eps": 0.1, "n_test": 20, "pgd_steps": 2, "pgd100_steps": 2, "apgd_steps": 2, "square_queries": 5,
             "attack_grid": {"steps": 2, "restarts": 2, "l2_eps": [1.0], "l2_steps": 2},
             "masking": {"n_examples": 10, "iterations": [2, 3, 4], "sweep_steps": 2, "square_queries": 5},
             "hessian_examples": 10, "hessian_batches": 1, "k": 1, "n_random": 1, "trace_samples": 2, "slq_steps": 3,
             "layer_steps": 2, "cosine_examples": 10, "repeats": 1, "lipschitz_steps": 1}
    flat = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    nn.init.zeros_(flat[1].weight)
    with torch.no_grad():
        flat[1].bias.copy_(torch.arange(10.0))                     # always class 9
    d = diagnose_model(flat, DiagnoseParams.from_params(small))
    verdicts = {c.key: c.verdict for c in checks(d)}
    assert d.model_check.constant and verdicts.pop("deterministic") == "holds"
    assert set(verdicts.values()) == {"untestable"}
    d = diagnose_model(factory_model("user_nets:net"), DiagnoseParams.from_params(small))
    assert not d.model_check.constant
