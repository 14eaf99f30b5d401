"""Paths and atomic file writes.

Everything the study writes goes through these helpers: a temporary file in the target folder,
flushed and fsync'ed, then renamed over the target, so a killed process never leaves a half-written
checkpoint, table or figure behind.  Checkpoints load with ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from .spec import ParameterError

PROFILES = ("smoke", "quick", "paper")


def repo_root() -> Path:
    """The project root (the folder holding ``landscape_core``), whatever the working directory.

    nbval starts kernels in the notebook's folder and papermill in the caller's, so no path in the
    study is relative to the working directory.  ``LANDSCAPE_ROOT`` overrides (installed copies).
    """
    env = os.environ.get("LANDSCAPE_ROOT")
    return Path(env).resolve() if env else Path(__file__).resolve().parents[2]


def outputs_dir(profile: str, *parts: str, create: bool = True) -> Path:
    """``outputs/<profile>/<parts...>`` under the repository root."""
    if profile not in PROFILES:
        raise ParameterError("profile", profile, f"must be one of {list(PROFILES)}")
    path = repo_root().joinpath("outputs", profile, *parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


VARIANT_PATTERN = r"[A-Za-z0-9.=_-]*"


def outputs_root(profile: str, variant: str = "", create: bool = True, task: str = "") -> Path:
    """Where a notebook of ``profile`` writes its notebook, figures, tables and claims:
    ``outputs/<profile>/``, or ``outputs/<profile>/variants/<variant>/`` for a run with overrides
    (named by them; the run store ``outputs/<profile>/runs`` is shared, runs are keyed by their spec);
    ``.../tasks/<task>/`` below either for a notebook that analyses the zoo of 02's task ``task``."""
    for name, value in (("variant", variant), ("task", task)):
        if not re.fullmatch(VARIANT_PATTERN, value):
            raise ParameterError(name, value, "may hold letters, digits and . = _ - only")
    parts = ("variants", variant) if variant else ()
    return outputs_dir(profile, *parts, *(("tasks", task) if task else ()), create=create)


def output_parts(root: Path) -> dict[str, Path]:
    """The folders of one outputs root: ``{"": root}`` and ``{task: root/tasks/<task>}`` for every task
    whose zoo notebooks 03, 04 and 06 analysed (see :func:`outputs_root`)."""
    root = Path(root)
    return {"": root, **{p.name: p for p in sorted((root / "tasks").glob("*")) if p.is_dir()}}


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())      # mkstemp makes 0600: give the file the mode open() would
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_json(path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")


class DamagedFile(RuntimeError):
    """A file of the study exists but cannot be read (truncated, empty, not what it should be)."""

    def __init__(self, path, err: Exception, advice: str = ""):
        self.path = Path(path)
        what = f"{type(err).__name__}: {err}".strip().rstrip(":")
        super().__init__(f"damaged file {self.path}: {what or type(err).__name__}"
                         + (f". {advice}" if advice else ""))


def load_json(path) -> Any:
    """Read a JSON file; an unreadable one raises :class:`DamagedFile` naming it."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as err:
        raise DamagedFile(path, err) from err


def _jsonable(obj):
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def save_checkpoint(path, obj: Any) -> Path:
    """``torch.save`` atomically.  Keep to tensors, numbers, strings, lists and dicts (weights_only)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_checkpoint(path, map_location="cpu") -> Any:
    """``torch.load(..., weights_only=True)``; an unreadable file (truncated, empty, or holding objects
    that are not plain tensors and containers) raises :class:`DamagedFile` naming it."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:        # torch raises RuntimeError, EOFError, pickle.UnpicklingError, OSError
        raise DamagedFile(path, err) from err


def save_figure(fig, path_stem) -> None:
    """Save a matplotlib figure as PNG and PDF (``path_stem`` without suffix), atomically.

    Returns nothing, so that a notebook cell ending with it shows no (machine-specific) path."""
    for ext in ("png", "pdf"):
        target = Path(f"{path_stem}.{ext}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext, dpi=150 if ext == "png" else None, bbox_inches="tight",
                        metadata={"CreationDate": None} if ext == "pdf" else None)
