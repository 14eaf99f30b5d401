"""``python -m landscape_core dry-run`` (``make paper-dryrun``): a profile's every notebook, end to end, at tiny sizes.

The paper profile runs for GPU days; a mistake in its last notebook must not wait that long to show.  The
dry run executes every notebook of a profile with that profile's parameter files, except the sizes that
``params/<profile>/dry_run.yaml`` overrides (epochs, images, widths, attack steps, grid points; nothing
else), in a scratch copy of the project layout:

* ``<root>/params/<profile>/*.yaml`` - the profile's files with the overrides applied (and every
  ``download`` off), validated by the same runner as ``make reproduce``;
* ``<root>/data/`` - with ``--tiny-data``, small MNIST and CIFAR10 files in the real torchvision on-disk
  formats (:mod:`landscape_core.data.formats`; the kernels point torchvision's CIFAR10 checksums at
  them through an IPython startup file); otherwise a link to the project's ``data/`` (your real files);
* ``<root>/outputs/<profile>/`` - what the notebooks write (run store, tables, figures, claims).

Each notebook runs through ``python -m landscape_core run`` with ``LANDSCAPE_ROOT=<root>``, one after the
other as ``make reproduce`` orders them; the command fails naming the first notebook that fails.

An override ``a.b.c: value`` sets ``c`` in section ``b`` of section ``a`` of a notebook's parameters; a
section that is a list (``tasks``) receives the rest of the key in each of its entries
(``tasks.training.epochs: 3`` sets every task's epochs).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from ..core.io import PROFILES, repo_root
from ..core.spec import ParameterError
from ..studies import NOTEBOOKS

__all__ = ["SIZES_FILE", "apply_override", "dry_params", "write_tiny_data", "prepare", "dry_run"]

SIZES_FILE = "dry_run.yaml"
TINY = {"mnist_train": 100, "mnist_test": 50, "cifar_per_batch": 20}     # cifar10: 5 x 20 train, 20 test

_STARTUP = '''# written by landscape_core's dry run: torchvision checks CIFAR10 files against the real release's MD5
# sums; point them at the tiny files of this dry run (nothing else changes in the loader).
def _landscape_dry_run():
    import json, os
    from landscape_core.data.formats import point_cifar10_checksums
    point_cifar10_checksums(json.loads(os.environ["LANDSCAPE_TINY_CIFAR10_MD5"]))
_landscape_dry_run()
del _landscape_dry_run
'''


def apply_override(params: dict, key: str, value: Any, where: str) -> None:
    """Set the dotted ``key`` in ``params`` (sections created as needed; a list section receives the rest
    of the key in each entry)."""
    head, _, rest = key.partition(".")
    if not rest:
        params[head] = value
        return
    node = params.setdefault(head, {})
    entries = node if isinstance(node, list) else [node]
    for entry in entries:
        if not isinstance(entry, dict):
            raise ParameterError(key, value, f"'{head}' is not a section in this notebook's parameters", where)
        apply_override(entry, rest, value, where)


def _into_task_settings(params: dict, key: str, value: Any, where: str) -> None:
    """A size that a per-task setting of 03, 04 or 06 also sets (``tasks: {name: {...}}``, a mapping, not
    02's or 05's list of tasks) is overridden there too: the dry run's sizes win everywhere."""
    settings = params.get("tasks")
    if isinstance(settings, dict):
        for entry in settings.values():
            if isinstance(entry, dict) and key.partition(".")[0] in entry:
                apply_override(entry, key, value, where)


def _downloads_off(node: Any) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "download":
                node[k] = False
            else:
                _downloads_off(v)
    elif isinstance(node, list):
        for v in node:
            _downloads_off(v)


def dry_params(profile: str, source: Path | None = None) -> dict[str, dict]:
    """Every notebook's parameters of ``profile`` (from ``source``/params) with the dry run's size
    overrides applied and downloads off: ``{notebook: params}`` (raw, not yet validated)."""
    from .params import read_yaml
    source = source or repo_root()
    folder = source / "params" / profile
    sizes_path = folder / SIZES_FILE
    if not sizes_path.exists():
        raise ParameterError("--profile", profile, f"needs params/{profile}/{SIZES_FILE}, the sizes its dry run "
                             "overrides (the paper profile has one)")
    sizes = read_yaml(sizes_path.read_text(), str(sizes_path.relative_to(source))) or {}
    unknown = [n for n in sizes if n not in NOTEBOOKS]
    if unknown:
        raise ParameterError(unknown[0], "<unknown notebook>", f"must be one of {list(NOTEBOOKS)}", SIZES_FILE)
    out = {}
    for name in NOTEBOOKS:
        params = read_yaml((folder / f"{name}.yaml").read_text(), f"params/{profile}/{name}.yaml") or {}
        for key, value in (sizes.get(name) or {}).items():
            apply_override(params, key, value, f"params/{profile}/{SIZES_FILE} ({name})")
            _into_task_settings(params, key, value, f"params/{profile}/{SIZES_FILE} ({name})")
        _downloads_off(params)
        out[name] = params
    return out


def write_tiny_data(root: Path) -> dict[str, str]:
    """Tiny MNIST and CIFAR10 files in torchvision's formats under ``root``; the CIFAR10 MD5 sums."""
    from ..data.formats import write_cifar10, write_mnist
    write_mnist(root, TINY["mnist_train"], TINY["mnist_test"], seed=0)
    write_mnist(root, TINY["mnist_train"], TINY["mnist_test"], seed=1, folder="FashionMNIST")
    return write_cifar10(root, TINY["cifar_per_batch"], seed=2)[1]


def prepare(root: Path, profile: str = "paper", tiny_data: bool = True) -> dict[str, str]:
    """Lay out the scratch project under ``root`` (params, data, IPython startup); the environment the
    notebooks' processes need."""
    params = dry_params(profile)
    folder = root / "params" / profile
    folder.mkdir(parents=True, exist_ok=True)
    for name, p in params.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    env = {"LANDSCAPE_ROOT": str(root)}
    if tiny_data:
        md5 = write_tiny_data(root / "data")
        startup = root / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True, exist_ok=True)
        (startup / "00-landscape-dry-run.py").write_text(_STARTUP)
        env |= {"IPYTHONDIR": str(root / "ipython"), "LANDSCAPE_TINY_CIFAR10_MD5": json.dumps(md5)}
    elif not (root / "data").exists():
        (root / "data").symlink_to(repo_root() / "data", target_is_directory=True)
    return env


def _checked(profile: str, notebooks: list[str] | None) -> list[str]:
    if profile not in PROFILES:
        raise ParameterError("--profile", profile, f"must be one of {list(PROFILES)}")
    names = notebooks or list(NOTEBOOKS)
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        raise ParameterError("--notebooks", unknown, f"each must be one of {list(NOTEBOOKS)}")
    dry_params(profile)          # the sizes file and the overrides, checked before anything is written
    return names


def dry_run(root: Path, profile: str = "paper", *, tiny_data: bool = True, notebooks: list[str] | None = None,
            log=print) -> dict[str, float]:
    """Prepare ``root`` and run the notebooks there; ``{notebook: seconds}``.  Raises ``RuntimeError``
    naming the first notebook that fails (its executed copy is in ``<root>/outputs/<profile>/failed/``)."""
    names = _checked(profile, notebooks)
    source = repo_root()
    root = Path(root).resolve()
    env = {**os.environ, **prepare(root, profile, tiny_data)}
    seconds = {}
    for name in names:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "landscape_core", "run", str(source / "notebooks" / f"{name}.py"),
                               "--profile", profile], env=env, cwd=source, capture_output=True, text=True)
        seconds[name] = time.perf_counter() - start
        log(f"[dry run] {name}: {'ok' if proc.returncode == 0 else 'FAILED'} in {seconds[name]:.0f} s")
        if proc.returncode:
            raise RuntimeError(f"{name} failed in the dry run of '{profile}':\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    return seconds


def main(args) -> int:
    import tempfile
    try:
        _checked(args.profile, args.notebooks)       # a rejected command creates no folder
        root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix=f"landscape-dry-run-{args.profile}-"))
        seconds = dry_run(root, args.profile, tiny_data=args.tiny_data, notebooks=args.notebooks)
    except (ParameterError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1 if isinstance(err, RuntimeError) else 2
    from ..report.claims import summarise
    print(summarise(root / "outputs" / args.profile / "claims", args.profile))
    print(f"dry run of '{args.profile}': {len(seconds)} notebooks in {sum(seconds.values()):.0f} s; outputs in {root}")
    return 0
