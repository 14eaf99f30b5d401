"""The run store: trained models shared between notebooks, keyed by the hash of their spec.

``get_or_train(spec, store)`` returns the complete run in ``<store>/<spec digest>/`` when there is one,
resumes an incomplete one from its last epoch, or trains it.  An exclusive file lock per run means two
processes asking for the same run do not both train it: the second waits and then loads the result.
All files are written atomically by :mod:`landscape_core.train`.
"""
from __future__ import annotations

import fcntl
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from .io import load_checkpoint, save_json
from .train import TrainSpec, build_model, load_probes, load_result, train


@dataclass
class Run:
    """A finished training run: its spec, folder, result and probes; models load on demand."""

    spec: TrainSpec
    path: Path
    trained: bool = False     # whether this call trained (or resumed) it rather than loading it

    @property
    def result(self) -> dict:
        return load_result(self.path)

    @property
    def diverged(self) -> bool:
        return bool(self.result["diverged"])

    @property
    def probes(self) -> dict:
        return load_probes(self.path)

    def model(self, which: str = "final", device="cpu") -> nn.Module:
        """The trained model (``"final"``, ``"init"`` or ``"epoch_<k>"``) in eval mode."""
        model = build_model(self.spec, device)
        model.load_state_dict(load_checkpoint(self.path / f"{which}.pt", map_location=device)["model"])
        return model.eval()

    def snapshots(self, device="cpu") -> list[nn.Module]:
        """The models kept at ``spec.snapshots`` (the PAS ensemble members), in epoch order."""
        return [self.model(f"epoch_{k}", device) for k in sorted(self.spec.snapshots)]


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# Part of every run's key: bump it when a change to the training code changes what a spec produces,
# so that stores written by older code are not silently reused.
STORE_VERSION = 1


def run_key(spec: TrainSpec) -> str:
    return f"v{STORE_VERSION}-{spec.digest()}"


def run_path(spec: TrainSpec, store: Path) -> Path:
    return Path(store) / run_key(spec)


def is_complete(spec: TrainSpec, store: Path) -> bool:
    return (run_path(spec, store) / "result.json").exists()


def get_or_train(spec: TrainSpec, store: Path, *, device="cpu", progress: bool = False, data=None) -> Run:
    """Load the complete run of ``spec`` from ``store``, else train (or resume) it first."""
    path = run_path(spec, store)
    trained = False
    if not (path / "result.json").exists():
        with _locked(Path(store) / f".{run_key(spec)}.lock"):
            if not (path / "result.json").exists():       # another process may have finished it
                path.mkdir(parents=True, exist_ok=True)
                save_json(path / "spec.json", spec.to_dict())
                train(spec, path, device=device, progress=progress, data=data)
                trained = True
    return Run(spec, path, trained)
