"""The papermill glue: parameter files are validated before any kernel starts, failures leave no
notebook behind, and a reference notebook out of step with its .py source is reported."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from landscape_core.cli import params as cli_params
from landscape_core.cli import runner as nbk
from landscape_core.cli.watch import ProgressWatcher
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


def _run(root: Path, *extra: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "LANDSCAPE_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "landscape_core", "run",
                           str(root / "notebooks" / "01_linear_theory.py"), "--profile", "quick", *extra],
                          capture_output=True, text=True, env=env, timeout=timeout)


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
    assert cli_params.parse_overrides(["device=cuda", "seed=3", "eps_list=[0.0, 0.1]", "n_train="]) == \
        {"device": "cuda", "seed": 3, "eps_list": [0.0, 0.1], "n_train": None}
    params = cli_params.load_params("01_linear_theory", "quick", {"seed": 5})
    assert params["seed"] == 5 and params["profile"] == "quick"


def test_committed_params_are_valid():
    for profile in ("smoke", "quick", "paper"):
        for name in NOTEBOOKS:
            cli_params.load_params(name, profile)


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
    cls = cli_params.spec_class(name)
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
        source = GradientDynamicsParams.from_params(cli_params.load_params("02_gradient_dynamics", profile))
        for name in ("03_hessian", "04_cosine_similarity", "06_connectivity"):
            params = cli_params.load_params(name, profile)
            assert NOTEBOOKS[name].from_params(params).zoo == source.zoo()
    assert source.zoo().training.width == 16 and source.zoo().eps_list[-1] == 0.4      # paper: LeNet-16
    with pytest.raises(ParameterError, match="02_gradient_dynamics.yaml"):
        cli_params.load_params("03_hessian", "quick", {"zoo": {"eps_list": [0.0, 0.1]}})


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


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_rejected_override_changes_nothing_on_disk(tmp_path):
    root = _sandbox(tmp_path, "eps: 0.5\n")
    out = root / "outputs" / "quick"
    (out / "claims").mkdir(parents=True)
    (out / "01_linear_theory.ipynb").write_text("{}")           # a finished result
    (out / "claims" / "01_linear_theory.json").write_text("{}")
    before = _snapshot(root)
    res = _run(root, "--set", "epz=0.1")
    assert res.returncode == 2 and "did you mean 'eps'" in res.stderr
    assert _snapshot(root) == before


@pytest.mark.parametrize("text, override, fragment", [
    ("eps_grid: [0.0, 0.1\n", None, "params/quick/01_linear_theory.yaml: not valid YAML at line 2"),
    ("eps: 0.3\n  x: 1\n", None, "params/quick/01_linear_theory.yaml: not valid YAML at line 2"),
    ("eps: 0.3\neps: 0.4\n", None, "the key 'eps' is given twice"),
    ("eps: 0.3\n", "eps_grid=[0.1", "--set eps_grid=[0.1: not valid YAML"),
])
def test_invalid_yaml_is_named_in_one_line(tmp_path, text, override, fragment):
    root = _sandbox(tmp_path, text)
    res = _run(root, *(["--set", override] if override else []))
    assert res.returncode == 2 and fragment in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_the_yaml_hint_is_only_for_numbers():
    from landscape_core.core.spec import ParameterError as PE
    from landscape_core.studies import LinearTheoryParams
    with pytest.raises(PE, match="write 1.0e-3"):
        LinearTheoryParams(train_lr="1e-3")
    with pytest.raises(PE) as err:
        LinearTheoryParams(train_lr="abc")
    assert "1.0e-3" not in str(err.value)


def test_constraints_between_parameters_and_the_device_are_checked_before_any_kernel():
    from landscape_core.core.spec import ParameterError as PE
    with pytest.raises(PE, match="'first_n' = 100000.*must be <= 12"):       # 600 images / 100, 2 epochs
        cli_params.load_params("02_gradient_dynamics", "smoke", {"first_n": 100000})
    with pytest.raises(PE, match="'n_train' = 5000.*<= 4000"):
        cli_params.load_params("02_gradient_dynamics", "smoke", {"training": {"n_train": 5000}})
    with pytest.raises(PE, match="'landscape_examples'"):
        cli_params.load_params("03_hessian", "smoke", {"landscape_examples": 200})
    import torch
    if not torch.cuda.is_available():
        with pytest.raises(PE, match="'device' = 'cuda'.*CUDA is not available"):
            cli_params.load_params("01_linear_theory", "smoke", {"device": "cuda"})


def test_invalid_params_remove_everything_their_notebook_made(tmp_path):
    root = _sandbox(tmp_path, "eps: -1\n")
    out = root / "outputs" / "quick"
    made = [out / "01_linear_theory.ipynb", out / "claims" / "01_linear_theory.json",
            out / "figures" / "01_linear_theory_fig1.png", out / "tables" / "01_linear_theory.md"]
    kept = [out / "figures" / "notes.png", out / "runs" / "v1-abc" / "result.json"]   # no notebook's
    for p in made + kept:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    env = {**os.environ, "LANDSCAPE_ROOT": str(root)}
    res = subprocess.run([sys.executable, "-m", "landscape_core", "check-params", "--profile", "quick"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 1
    assert not any(p.exists() for p in made) and all(p.exists() for p in kept)


TINY_01 = ("fig1_grid: 11\nn_per_class: 4\nn_directions: 10\nn_checks: 1\ntrain_steps: 2\n"
           "collapse_eps: [0.0, 1.0]\nsgd_eps: [0.0, 0.2]\nsgd_iterations: 10\n")


def test_a_killed_runs_scratch_file_is_removed_by_the_next_run(tmp_path):
    """Also: an override run goes to its own folder and leaves the profile's outputs byte-identical;
    every output records its parameters, and the summary flags a folder mixed by a hand-run."""
    root = _sandbox(tmp_path, TINY_01)
    out = root / "outputs" / "quick"
    out.mkdir(parents=True)
    scratch = out / ".01_linear_theory.abc123.tmp.ipynb"         # what SIGKILL leaves behind
    scratch.write_text("{}")
    res = _run(root, timeout=900)                          # executes the (tiny) notebook
    assert res.returncode == 0, res.stderr
    assert not scratch.exists() and (out / "01_linear_theory.ipynb").exists()
    assert not list(out.glob(".*.tmp.*"))
    record = json.loads((out / "params" / "01_linear_theory.json").read_text())
    assert record["params"]["n_directions"] == 10 and record["params"]["profile"] == "quick"
    main_files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".timings.json"}

    res = _run(root, "--set", "n_checks=2", timeout=900)
    assert res.returncode == 0, res.stderr
    variant = out / "variants" / "n_checks=2"
    assert (variant / "01_linear_theory.ipynb").exists() and (variant / "claims" / "01_linear_theory.json").exists()
    assert json.loads((variant / "params" / "01_linear_theory.json").read_text())["params"]["n_checks"] == 2
    assert {p: p.read_bytes() for p in main_files} == main_files        # the profile's outputs untouched

    env = {**os.environ, "LANDSCAPE_ROOT": str(root)}
    summary = subprocess.run([sys.executable, "-m", "landscape_core", "summary", "--profile", "quick"],
                             capture_output=True, text=True, env=env, timeout=120).stdout
    assert "[!]" not in summary and "variants/: n_checks=2" in summary
    (root / "params" / "quick" / "01_linear_theory.yaml").write_text(TINY_01.replace("n_checks: 1", "n_checks: 3"))
    summary = subprocess.run([sys.executable, "-m", "landscape_core", "summary", "--profile", "quick"],
                             capture_output=True, text=True, env=env, timeout=120).stdout
    assert "NOT made by params/quick/01_linear_theory.yaml" in summary, summary


def test_variant_names_follow_the_overrides_as_make_does():
    assert nbk.variant_name(["device=cuda", "progress=true"]) == ""
    assert nbk.variant_name(["interactive=true"]) == ""                  # the one list: NotebookParams.NOT_RESULTS
    from landscape_core.report.notebook import NOT_PROVENANCE
    assert {n.split("=")[0] for n in ("device=x", "progress=x", "interactive=x")} <= set(NOT_PROVENANCE)
    assert nbk.variant_name(["seed=1", "eps_list=[0.1,0.2]"]) == "seed=1_eps_list=_0.1_0.2_"
    make = subprocess.run(["make", "-n", "-C", str(ROOT), "reproduce", "PROFILE=smoke",
                           "SET=device=cpu interactive=true seed=1 eps_list=[0.1,0.2]"], capture_output=True, text=True,
                          timeout=60)
    assert "--variant seed=1_eps_list=_0.1_0.2_" in make.stdout, make.stdout + make.stderr
    # the Makefile's filter is the same list, word for word
    from landscape_core.studies import NotebookParams
    line = next(l for l in (ROOT / "Makefile").read_text().splitlines() if l.startswith("VARIANT_SET :="))
    filtered = re.search(r"filter-out ([^,]*),", line).group(1).split()
    assert [f.removesuffix("=%") for f in filtered] == list(NotebookParams.NOT_RESULTS)


def test_progress_events_reach_the_console_not_the_notebook(tmp_path, capsys):
    from landscape_core.core import progress
    timings = tmp_path / ".timings.json"
    timings.write_text(json.dumps({"nb": 100.0}))
    with ProgressWatcher("[quick] nb", timings, "nb", min_interval=0.0):
        progress.report("train lenet-4 eps 0.3: started")
        progress.report("train lenet-4 eps 0.3: epoch 1/10, 3 s per epoch, ~27 s left in this run")
        import time
        time.sleep(1.5)
    printed = capsys.readouterr().out
    assert "epoch 1/10" in printed and "left (last run: 1 min 40 s)" in printed
    assert json.loads(timings.read_text())["nb"] < 100          # this run's duration replaces the last
    progress.report("nobody listens")                           # no file, no error


def test_overrides_target_one_notebook_or_a_section():
    items = ["01.sgd_lr=0.2", "seed=3", "02.training.width=8", "02_gradient_dynamics.first_n=10"]
    assert cli_params.parse_overrides(items, "01_linear_theory") == {"sgd_lr": 0.2, "seed": 3}
    assert cli_params.parse_overrides(items, "02_gradient_dynamics") == {"seed": 3, "training": {"width": 8}, "first_n": 10}
    assert cli_params.parse_overrides(items, "05_pas_table1") == {"seed": 3}
    from landscape_core.core.spec import ParameterError as PE
    with pytest.raises(PE, match="names no notebook"):
        cli_params.parse_overrides(["09.seed=1"])
    params = cli_params.load_params("02_gradient_dynamics", "quick", {"training": {"width": 8}})
    assert params["training"]["width"] == 8 and params["training"]["epochs"] == 10      # the file's section kept


def test_make_dry_run_lists_only_what_would_run(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".set").write_text("\n")
    names = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    for name in names:
        (out / f"{name}.ipynb").write_text("{}")          # newer than every source: all up to date
    os.utime(out / ".set", (1, 1))                         # .set older than the notebooks it made
    res = subprocess.run(["make", "-n", "-C", str(ROOT), "reproduce", f"OUT={out}"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert " run notebooks/" not in res.stdout
    os.utime(out / f"{names[0]}.ipynb", (1, 1))              # one stale result
    res = subprocess.run(["make", "-n", "-C", str(ROOT), "reproduce", f"OUT={out}"], capture_output=True,
                         text=True, timeout=60)
    assert res.stdout.count(" run notebooks/") == 1 and f"run notebooks/{names[0]}.py" in res.stdout


def test_make_lab_runs_as_root_and_passes_options():
    res = subprocess.run(["make", "-n", "-C", str(ROOT), "lab", "LAB_ARGS=--no-browser --port 8899"],
                         capture_output=True, text=True, timeout=60)
    line = next(x for x in res.stdout.splitlines() if "-m landscape_core lab" in x)
    assert line.endswith("--no-browser --port 8899")
    from landscape_core.cli.lab import lab_command          # what `python -m landscape_core lab` runs
    assert ("--allow-root" in lab_command()) == (os.geteuid() == 0)


def test_saving_a_reference_in_jupyterlab_without_an_edit_changes_nothing(tmp_path):
    """What JupyterLab does on save (jupytext's contents manager writes both files, the kernel adds
    language_info and its display name), on a git clone of the notebooks with `make setup`'s filter."""
    from jupytext import TextFileContentsManager
    for name in ("jupytext.toml", ".gitattributes", ".gitignore"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints", ".*.tmp.ipynb"))
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    assert nbk.install_git_filter(tmp_path)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "references"], check=True)
    cm = TextFileContentsManager(root_dir=str(tmp_path))
    for path in sorted((tmp_path / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        rel = str(path.relative_to(tmp_path))
        model = cm.get(rel)
        model["content"]["metadata"]["language_info"] = {"name": "python", "version": "3.99.0",
                                                         "mimetype": "text/x-python", "file_extension": ".py"}
        model["content"]["metadata"]["kernelspec"] = dict(nbk.KERNELSPEC)
        cm.save(model, rel)
    diff = subprocess.run([*git, "diff", "--stat"], capture_output=True, text=True, check=True).stdout
    assert diff == "", diff                                   # git diff runs the clean filter: no change
    subprocess.run([*git, "add", "-A"], check=True)           # (git status lists a file whose size changed
    staged = subprocess.run([*git, "diff", "--cached", "--stat"], capture_output=True, text=True, check=True).stdout
    assert staged == "", staged                                # until `git add`, which then records nothing)
