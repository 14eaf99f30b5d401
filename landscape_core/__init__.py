"""landscape_core: the library behind the notebooks of the adversarial loss-landscape study.

Floors, each importing only the floors below it (enforced by import-linter, ``[tool.importlinter]`` in pyproject.toml):
``core`` (validated specs, paths and atomic writes, seeds, precision, progress), ``data``, ``models``,
``attacks`` (a registry of attacks and their steps), ``training`` (the loop with its per-batch probes,
schedules, the run store), ``analysis`` (Hessian, landscapes, similarity, curves, dynamics, robustness,
Lipschitz, masking), ``studies`` (one module per paper section: a notebook's typed parameters and its
experiments), ``report`` (the catalogue of claims, plots, tables, the HTML report) and ``cli``
(``python -m landscape_core``: the runner, runs, dry run, lab, bench).  ARCHITECTURE.md draws the map.
Import the submodule you need; this package imports nothing heavy at import time.
"""
__version__ = "0.1.0"
