"""The run store and the files it writes: damaged files are named with what to do, an interrupted run
with a damaged checkpoint starts over, and files get the mode the umask asks for."""
import os
import stat

import pytest
import torch

from landscape_core.attacks import AttackSpec
from landscape_core.core.io import DamagedFile, load_checkpoint, load_json, save_checkpoint, save_json
from landscape_core.data import DatasetSpec, load_data
from landscape_core.models import ModelSpec
from landscape_core.training import TrainSpec, get_or_train, run_path, train

SPEC = TrainSpec(data=DatasetSpec(name="mnist5k", n_train=100), model=ModelSpec(arch="lenet", width=1),
                 attack=AttackSpec(name="pgd", eps=0.1, steps=1, step_size=0.05), epochs=2, lr=1e-3)


@pytest.fixture(scope="module")
def data():
    return load_data(SPEC.data)


@pytest.fixture()
def store(tmp_path, data):
    get_or_train(SPEC, tmp_path, data=data)
    return tmp_path


@pytest.mark.parametrize("name, content", [("result.json", b'{"spec": {'), ("final.pt", b"PK\x03\x04trunc"),
                                           ("probes.pt", b""), ("result.json", b"")])
def test_a_damaged_file_of_a_complete_run_is_named_with_what_to_do(store, data, name, content):
    folder = run_path(SPEC, store)
    (folder / name).write_bytes(content)
    with pytest.raises(DamagedFile) as err:
        run = get_or_train(SPEC, store, data=data)
        run.model(), run.probes                     # final.pt / probes.pt are read when used
    text = str(err.value)
    assert str(folder / name) in text and "delete that folder" in text and str(folder) in text


def test_an_interrupted_run_with_a_damaged_last_checkpoint_retrains_from_the_start(tmp_path, data):
    folder = tmp_path / "run"
    train(SPEC, folder, data=data, stop_after_epochs=1)
    (folder / "last.pt").write_bytes((folder / "last.pt").read_bytes()[:100])      # truncated
    with pytest.warns(UserWarning, match="last.pt.*restarts from its first epoch"):
        res = train(SPEC, folder, data=data)
    whole = tmp_path / "whole"
    train(SPEC, whole, data=data)
    assert res.epochs_done == 2
    a, b = load_checkpoint(folder / "final.pt")["model"], load_checkpoint(whole / "final.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)                 # the same as a run never interrupted


def test_a_refused_pickle_names_its_file(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"f": os.getcwd}, path)           # a function: weights_only refuses it
    with pytest.raises(DamagedFile, match="evil.pt"):
        load_checkpoint(path)
    (tmp_path / "x.json").write_text("[1, 2")
    with pytest.raises(DamagedFile, match="x.json"):
        load_json(tmp_path / "x.json")


def test_files_get_the_mode_of_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        save_json(tmp_path / "a.json", {"a": 1})
        save_checkpoint(tmp_path / "b.pt", {"x": torch.zeros(1)})
        os.umask(0o077)
        save_json(tmp_path / "c.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.pt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "c.json").stat().st_mode) == 0o600


@pytest.mark.parametrize("name, content", [("final.pt", b"PK\x03\x04trunc"), ("result.json", b'{"history": [')])
def test_a_damaged_file_of_a_stored_curve_is_named_with_what_to_do(tmp_path, data, name, content):
    from landscape_core.analysis.curve_training import CurveRunSpec, CurveTrainSpec, get_or_train_curve
    a = get_or_train(SPEC, tmp_path, data=data)
    b = get_or_train(SPEC.replace(seed=1), tmp_path, data=data)
    x, y = data[0].x[:64], data[0].y[:64]
    spec = CurveRunSpec(start=a.path.name, end=b.path.name, training=CurveTrainSpec(epochs=1, batch_size=32))
    curve = get_or_train_curve(spec, tmp_path, a.model(), b.model(), x, y)
    (curve.path / name).write_bytes(content)
    with pytest.raises(DamagedFile) as err:
        get_or_train_curve(spec, tmp_path, a.model(), b.model(), x, y)
    text = str(err.value)
    assert str(curve.path / name) in text and "delete that folder" in text and str(curve.path) in text
