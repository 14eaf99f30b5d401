"""The run store: anything trained once and shared between notebooks, keyed by the hash of its spec.

:func:`get_or_run` is generic over any :class:`~landscape_core.core.spec.Spec`: the run of ``spec``
lives in ``<store>/v<STORE_VERSION>-<spec digest>/`` (the digest includes the spec's class name, so
two kinds of run never share a folder); ``result.json`` is written last and marks a complete run.
When it is absent, ``work(path)`` trains the run there (resuming from whatever checkpoint an earlier,
interrupted call left), under an exclusive file lock, so two processes asking for the same run do
not both train it: the second waits, then finds it complete.

:func:`get_or_train` is that for a :class:`~landscape_core.training.loop.TrainSpec`, returning a
:class:`Run` whose models, probes and result load on demand.  Bezier curves between two runs use
:func:`get_or_run` the same way (:mod:`landscape_core.analysis.curves`).
"""
from __future__ import annotations

import fcntl
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from torch import nn

from ..core.io import DamagedFile, load_checkpoint, load_json, save_json
from ..core.spec import Spec
from .batched import train_batched
from .loop import TrainSpec, initial_model, load_probes, load_result, train

__all__ = ["STORE_VERSION", "Run", "run_key", "run_path", "is_complete", "get_or_run", "get_or_train", "damaged",
           "stored_results", "get_or_train_group"]

# Part of every run's key: bump it when a change to the training code changes what a spec produces,
# so that stores written by older code are not silently reused.
STORE_VERSION = 1


def run_key(spec: Spec) -> str:
    return f"v{STORE_VERSION}-{spec.digest()}"


def run_path(spec: Spec, store: Path) -> Path:
    return Path(store) / run_key(spec)


def is_complete(spec: Spec, store: Path) -> bool:
    return (run_path(spec, store) / "result.json").exists()


def stored_results(store: Path | None) -> dict[str, dict]:
    """Every complete run's ``result.json`` in ``store`` (training runs and curves), by folder name; a
    damaged one is left out with a warning naming it (the report still builds)."""
    out = {}
    for path in sorted(Path(store).glob("*/result.json")) if store is not None else ():
        try:
            out[path.parent.name] = load_json(path)
        except DamagedFile as err:
            warnings.warn(str(damaged(path.parent, err)), stacklevel=2)
    return out


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def damaged(run: Path, err: DamagedFile) -> DamagedFile:
    """``err`` with what to do about it: the run's folder is to be deleted and trained again."""
    return DamagedFile(err.path, err.__cause__ or err,
                       f"The run in {run} is damaged: delete that folder and run again to retrain it")


def get_or_run(spec: Spec, store: Path, work: Callable[[Path], object]) -> tuple[Path, bool]:
    """The folder of ``spec``'s complete run, running ``work(folder)`` first when it is not complete.

    ``work`` must resume from the folder's checkpoints and write ``result.json`` last.  Returns the
    folder and whether this call ran ``work``.  A complete run whose ``result.json`` cannot be read
    stops with :class:`DamagedFile`, naming the folder and what to do."""
    path = run_path(spec, store)
    if (path / "result.json").exists():
        try:
            load_json(path / "result.json")
        except DamagedFile as err:
            raise damaged(path, err) from None
    ran = False
    if not (path / "result.json").exists():
        with _locked(Path(store) / f".{run_key(spec)}.lock"):
            if not (path / "result.json").exists():       # another process may have finished it
                path.mkdir(parents=True, exist_ok=True)
                save_json(path / "spec.json", spec.to_dict())
                work(path)
                ran = True
    return path, ran


@dataclass
class Run:
    """A finished training run: its spec, folder, result and probes; models load on demand."""

    spec: TrainSpec
    path: Path
    trained: bool = False     # whether this call trained (or resumed) it rather than loading it

    @property
    def result(self) -> dict:
        return self._read(load_result, self.path)

    @property
    def diverged(self) -> bool:
        return bool(self.result["diverged"])

    @property
    def probes(self) -> dict:
        return self._read(load_probes, self.path)

    def _read(self, fn, *args):
        try:
            return fn(*args)
        except DamagedFile as err:
            raise damaged(self.path, err) from None

    def model(self, which: str = "final", device="cpu") -> nn.Module:
        """The trained model (``"final"``, ``"init"`` or ``"epoch_<k>"``) in eval mode."""
        model = initial_model(self.spec, device)
        model.load_state_dict(self._read(load_checkpoint, self.path / f"{which}.pt", device)["model"])
        return model.eval()

    def snapshots(self, device="cpu") -> list[nn.Module]:
        """The models kept at ``spec.snapshots`` (the PAS ensemble members), in epoch order."""
        return [self.model(f"epoch_{k}", device) for k in sorted(self.spec.snapshots)]


def get_or_train(spec: TrainSpec, store: Path, *, device="cpu", progress: bool = False, data=None) -> Run:
    """Load the complete run of ``spec`` from ``store``, else train (or resume) it first."""
    path, trained = get_or_run(spec, store, lambda folder: train(spec, folder, device=device, progress=progress,
                                                                 data=data))
    return Run(spec, path, trained)


def get_or_train_group(specs: list[TrainSpec], store: Path, *, device="cpu", progress: bool = False,
                       data=None) -> list[Run]:
    """:func:`get_or_train` for compatible ``specs`` (:func:`~.batched.compatible`): the members not yet
    complete train together as one stack (:func:`~.batched.train_batched`), under every member's lock
    (taken in key order); a lone missing member trains as :func:`~.loop.train` would.  A member complete
    in the store is loaded, not trained again."""
    store = Path(store)
    with ExitStack() as locks:
        for key in sorted({run_key(s) for s in specs if not is_complete(s, store)}):
            locks.enter_context(_locked(store / f".{key}.lock"))
        todo = [s for s in dict.fromkeys(specs) if not is_complete(s, store)]      # re-read under the locks
        for s in todo:
            run_path(s, store).mkdir(parents=True, exist_ok=True)
            save_json(run_path(s, store) / "spec.json", s.to_dict())
        if len(todo) > 1:
            train_batched(todo, [run_path(s, store) for s in todo], device=device, progress=progress, data=data)
        elif todo:
            train(todo[0], run_path(todo[0], store), device=device, progress=progress, data=data)
    return [Run(s, run_path(s, store), s in todo) for s in specs]
