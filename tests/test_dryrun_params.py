"""The dry run's parameters: the paper profile's files with only the sizes of params/paper/dry_run.yaml
changed, downloads off, and still valid."""
from __future__ import annotations

import re

import pytest
import yaml

from landscape_core.cli.dryrun import apply_override, dry_params
from landscape_core.cli.params import load_params, read_yaml
from landscape_core.core.io import repo_root
from landscape_core.core.spec import ParameterError
from landscape_core.studies import NOTEBOOKS


def test_an_override_reaches_sections_and_every_task():
    p = {"training": {"epochs": 100, "width": 16}, "tasks": [{"training": {"epochs": 200}}, {"name": "b"}]}
    apply_override(p, "training.epochs", 2, "here")
    apply_override(p, "tasks.training.epochs", 3, "here")
    apply_override(p, "n_test", 20, "here")
    assert p == {"training": {"epochs": 2, "width": 16}, "n_test": 20,
                 "tasks": [{"training": {"epochs": 3}}, {"name": "b", "training": {"epochs": 3}}]}
    with pytest.raises(ParameterError, match="not a section"):
        apply_override({"n_test": 5}, "n_test.x", 1, "here")


def _leaves(node, prefix=""):
    """``{dotted path: value}``; list entries that are sections get ``[i]`` in the path."""
    out = {}
    if isinstance(node, dict):
        for k, v in node.items():
            out |= _leaves(v, f"{prefix}{k}.")
    elif isinstance(node, list) and node and isinstance(node[0], dict):
        for i, v in enumerate(node):
            out |= _leaves(v, f"{prefix[:-1]}[{i}].")
    else:
        out[prefix[:-1]] = node
    return out


def test_dry_params_change_only_the_listed_sizes_and_downloads(tmp_path, monkeypatch):
    sizes = read_yaml((repo_root() / "params/paper/dry_run.yaml").read_text(), "dry_run.yaml")
    dry = dry_params("paper")
    for name in NOTEBOOKS:
        paper = _leaves(yaml.safe_load((repo_root() / f"params/paper/{name}.yaml").read_text()))
        now = _leaves(dry[name])
        changed = {re.sub(r"\[\d+\]", "", k) for k in set(paper) | set(now) if paper.get(k, now.get(k)) != now.get(k)
                   or (k in paper) != (k in now)}
        if isinstance(dry[name].get("tasks"), dict):        # 03, 04, 06's per-task settings: the same sizes
            changed = {re.sub(r"^tasks\.[^.]+\.", "", k) for k in changed}
        assert changed - set(sizes.get(name) or {}) <= {k for k in changed if k.endswith("download")}, name
        assert all(v is False for k, v in now.items() if k.endswith("download")), name
    assert dry["05_pas_table1"]["apgd_restarts"] == 5 and dry["05_pas_table1"]["seeds"] >= 2
    assert [t["training"]["epochs"] for t in dry["05_pas_table1"]["tasks"]] == [3, 3]
    # valid through the runner's own loader (the zoo of 03, 04 and 06 from the shrunk 02)
    (tmp_path / "params" / "paper").mkdir(parents=True)
    for name, p in dry.items():
        (tmp_path / "params" / "paper" / f"{name}.yaml").write_text(yaml.safe_dump(p))
    monkeypatch.setenv("LANDSCAPE_ROOT", str(tmp_path))
    for name in NOTEBOOKS:
        load_params(name, "paper")
    assert load_params("03_hessian", "paper")["zoo"]["training"]["epochs"] == 3


def test_a_sizes_file_naming_no_notebook_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "params" / "paper"
    folder.mkdir(parents=True)
    (folder / "dry_run.yaml").write_text("05_pas_tabel1:\n  n_test: 5\n")
    with pytest.raises(ParameterError, match="05_pas_tabel1"):
        dry_params("paper", source=tmp_path)


@pytest.mark.parametrize("argv, fragment", [(["--notebooks", "05_pas_tabel1"], "--notebooks"),
                                             (["--profile", "quick"], "dry_run.yaml")])
def test_a_rejected_dry_run_writes_nothing(tmp_path, argv, fragment, capsys):
    from landscape_core.cli.main import main
    keep = tmp_path / "scratch"
    assert main(["dry-run", "--keep", str(keep), *argv]) == 2
    assert fragment in capsys.readouterr().err and not keep.exists()
