"""make lab's configuration: the default viewer, the Lab-only interactive switch and the save hook that
keeps the committed references byte for byte when nothing was edited."""
import copy
import json

import nbformat
import pytest

from landscape_core.cli import lab
from landscape_core.core.io import repo_root
from landscape_core.report.notebook import INTERACTIVE_ENV, start
from landscape_core.studies.linear_model import LinearTheoryParams

REFERENCE = repo_root() / "notebooks" / "04_cosine_similarity.ipynb"


def test_python_files_open_as_jupytext_notebooks_and_other_settings_are_kept(tmp_path):
    settings = tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "x"}},
                                    "other": {"a": 1}}))
    lab.write_overrides(tmp_path)
    got = json.loads(settings.read_text())
    assert got["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"] == {"markdown": "x",
                                                                               "python": "Jupytext Notebook"}
    assert got["other"] == {"a": 1}


def test_lab_serves_the_repository_and_opens_on_the_notebooks():
    cmd = lab.lab_command(["--port=1"])
    assert f"--ServerApp.root_dir={repo_root()}" in cmd and "--ServerApp.default_url=/lab/tree/notebooks" in cmd
    assert "--ContentsManager.pre_save_hook=landscape_core.cli.lab.pre_save" in cmd and cmd[-1] == "--port=1"
    assert (repo_root() / "jupytext.toml").exists()     # found from notebooks/ up to the served root


def _session(reference: dict) -> dict:
    """What Lab sends after opening, running and not editing: new outputs, counts and metadata."""
    nb = copy.deepcopy(reference)
    nb["metadata"]["language_info"] = {"name": "python", "version": "3.99"}
    nb["metadata"]["widgets"] = {"state": {}}
    for cell in nb["cells"]:
        cell["metadata"]["execution"] = {"iopub.status.busy": "2026-12-04"}
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "a session's output\n"}]
            cell["execution_count"] = 99
    return nb


def test_a_save_without_an_edit_writes_the_reference_byte_for_byte(tmp_path):
    reference = json.loads(REFERENCE.read_text())
    model = {"type": "notebook", "content": _session(reference)}
    target = tmp_path / "notebooks" / REFERENCE.name
    target.parent.mkdir()
    target.write_text(REFERENCE.read_text())

    class Manager:
        root_dir = str(tmp_path)
    lab.pre_save(model, f"notebooks/{REFERENCE.name}", Manager())
    written = nbformat.writes(nbformat.from_dict(model["content"])) + "\n"
    assert written == REFERENCE.read_text()


def test_an_edited_cell_keeps_the_sessions_outputs_and_other_files_are_untouched():
    reference = json.loads(REFERENCE.read_text())
    session = _session(reference)
    i = next(k for k, c in enumerate(session["cells"]) if c["cell_type"] == "code")
    session["cells"][i]["source"] += "\nprint('edited')"
    out = lab.normalise_reference(session, reference)
    assert out["cells"][i]["outputs"][0]["text"] == "a session's output\n"
    assert "language_info" not in out["metadata"] and "execution" not in out["cells"][i]["metadata"]
    other = {"type": "notebook", "content": _session(reference)}
    lab.pre_save(other, "outputs/smoke/02_gradient_dynamics.ipynb")
    assert other["content"]["metadata"]["language_info"]["version"] == "3.99"


@pytest.mark.parametrize("env, want", [(None, False), ("1", True)])
def test_interactive_views_are_on_in_labs_kernels_only(monkeypatch, tmp_path, env, want):
    monkeypatch.setenv("LANDSCAPE_ROOT", str(tmp_path))
    if env is None:
        monkeypatch.delenv(INTERACTIVE_ENV, raising=False)
    else:
        monkeypatch.setenv(INTERACTIVE_ENV, env)
    namespace = {"profile": "smoke"}
    P, _ = start(LinearTheoryParams, namespace, set(), notebook="01_linear_theory")
    assert P.interactive is want
