"""The papermill glue: parameter files are validated before any kernel starts, failures leave no
notebook behind, and a reference notebook out of step with its .py source is reported."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from landscape_core.cli import runner as nbk
from landscape_core.core.spec import Spec
from landscape_core.report.notebook import interact_or_draw
from landscape_core.studies import NOTEBOOKS
from landscape_core.core.io import repo_root

ROOT = repo_root()


def _sandbox(tmp_path: Path, params_text: str) -> Path:
    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "01_linear_theory.py", tmp_path / "notebooks")
    (tmp_path / "params" / "quick").mkdir(parents=True)
    (tmp_path / "params" / "quick" / "01_linear_theory.yaml").write_text(params_text)
    return tmp_path


def _run(root: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LANDSCAPE_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "landscape_core", "run",
                           str(root / "notebooks" / "01_linear_theory.py"), "--profile", "quick", *extra],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("text, name, fragment", [
    ("eps: -1\n", "eps", "must be >= 0.0"),
    ("n_per_clas: 10\n", "n_per_clas", "did you mean 'n_per_class'"),
    ("train_lr: 1e-3\n", "train_lr", "write 1.0e-3"),
    ("profile: smoke\n", "profile", "must be 'quick'"),
])
def test_bad_params_fail_before_compute_and_leave_nothing(tmp_path, text, name, fragment):
    root = _sandbox(tmp_path, text)
    res = _run(root)
    assert res.returncode != 0
    assert f"'{name}'" in res.stderr and fragment in res.stderr, res.stderr
    assert not (root / "outputs" / "quick" / "01_linear_theory.ipynb").exists()


@pytest.mark.parametrize("override, name, fragment", [
    ("device=gpu", "device", "must be one of"),
    ("eps=-2", "eps", "must be >= 0.0"),
    ("epsilon=0.1", "epsilon", "did you mean"),
    ("profile=paper", "profile", "chosen with --profile"),
    ("device", "--set", "NAME=VALUE"),
])
def test_bad_overrides_fail_before_compute(tmp_path, override, name, fragment):
    root = _sandbox(tmp_path, "eps: 0.5\n")
    res = _run(root, "--set", override)
    assert res.returncode == 2
    assert f"'{name}'" in res.stderr and fragment in res.stderr, res.stderr
    assert not (root / "outputs" / "quick" / "01_linear_theory.ipynb").exists()


def test_overrides_are_read_as_yaml_and_win_over_the_file(tmp_path):
    assert nbk.parse_overrides(["device=cuda", "seed=3", "eps_list=[0.0, 0.1]", "n_train="]) == \
        {"device": "cuda", "seed": 3, "eps_list": [0.0, 0.1], "n_train": None}
    params = nbk.load_params("01_linear_theory", "quick", {"seed": 5})
    assert params["seed"] == 5 and params["profile"] == "quick"


def test_committed_params_are_valid():
    for profile in ("smoke", "quick", "paper"):
        for name in NOTEBOOKS:
            nbk.load_params(name, profile)


def test_every_notebook_has_a_spec_and_params():
    names = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    assert names == sorted(NOTEBOOKS)


def test_reference_notebooks_are_fresh():
    stale = nbk.stale_notebooks()
    assert not stale, "\n".join(stale)


def test_staleness_is_detected(tmp_path):
    shutil.copy(ROOT / "notebooks" / "01_linear_theory.py", tmp_path)
    shutil.copy(ROOT / "notebooks" / "01_linear_theory.ipynb", tmp_path)
    assert nbk.stale_notebooks(tmp_path) == []
    py = tmp_path / "01_linear_theory.py"
    py.write_text(py.read_text().replace("seed = 0", "seed = 1", 1))
    stale = nbk.stale_notebooks(tmp_path)
    assert len(stale) == 1 and "01_linear_theory.ipynb is stale" in stale[0]


def test_reference_notebooks_have_outputs_and_counts():
    for ipynb in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"):
        nb = nbformat.read(ipynb, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code), f"{ipynb.name}: unexecuted cell (run make notebooks)"
        assert "papermill" not in nb.metadata, f"{ipynb.name}: volatile metadata left in"


def _parameters_cell(py: Path) -> dict:
    import jupytext
    nb = jupytext.read(py)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    ns: dict = {}
    exec(cell.source, {}, ns)
    return ns


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_parameters_cell_holds_the_spec_defaults(name):
    """The smoke defaults live in one place: the cell lists every parameter with exactly the spec
    class's default (papermill then knows every name, params/smoke/*.yaml is empty, and other
    notebooks can rebuild this one's training specs from the class)."""
    cell = _parameters_cell(ROOT / "notebooks" / f"{name}.py")
    cls = nbk.spec_class(name)
    spec = cls()
    for key, value in cell.items():
        assert key in spec.names(), f"{name}: '{key}' is not a parameter"
        want = getattr(spec, key)
        got = type(want).from_params(value) if isinstance(want, Spec) else \
            (tuple(value) if isinstance(value, list) else value)
        assert got == want, f"{name}: parameters cell has {key} = {value!r}, the spec default is {want!r}"
        if isinstance(want, Spec):        # a section lists every one of its parameters too
            assert sorted(value) == sorted(want.names()), f"{name}: section '{key}' must list all its parameters"
    assert sorted(cell) == sorted(spec.names()), f"{name}: the parameters cell must list every parameter"
    assert cell["profile"] == "smoke"


def test_zoo_comes_from_notebook_02_and_cannot_be_set_elsewhere():
    """Notebooks 03, 04 and 06 analyse the models 02 trains on the same profile: the runner hands them
    02's training section, budgets and seed; a params file of theirs that sets a zoo is an error."""
    from landscape_core.core.spec import ParameterError
    from landscape_core.studies import GradientDynamicsParams
    for profile in ("smoke", "quick", "paper"):
        source = GradientDynamicsParams.from_params(nbk.load_params("02_gradient_dynamics", profile))
        for name in ("03_hessian", "04_cosine_similarity", "06_connectivity"):
            params = nbk.load_params(name, profile)
            assert NOTEBOOKS[name].from_params(params).zoo == source.zoo()
    assert source.zoo().training.width == 16 and source.zoo().eps_list[-1] == 0.4      # paper: LeNet-16
    with pytest.raises(ParameterError, match="02_gradient_dynamics.yaml"):
        nbk.load_params("03_hessian", "quick", {"zoo": {"eps_list": [0.0, 0.1]}})


def test_interactive_mode_builds_widgets_and_static_mode_draws_once():
    calls = []

    def draw(eps, kind):
        calls.append((eps, kind))

    interact_or_draw(draw, False, {"eps": (0.0, 1.0, 0.1, 0.3), "kind": (("a", "b"), "b")})
    assert calls == [(0.3, "b")]
    widget = interact_or_draw(draw, True, {"eps": (0.0, 1.0, 0.1, 0.3), "kind": (("a", "b"), "b")})
    import ipywidgets
    assert isinstance(widget.widget, ipywidgets.interactive)
    sliders = {c.description: c for c in widget.widget.children if hasattr(c, "description")}
    assert sliders["eps"].value == 0.3 and sliders["kind"].options == ("a", "b")
    sliders["eps"].value = 0.7                           # moving the slider redraws
    assert calls[-1] == (0.7, "b")
