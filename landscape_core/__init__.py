"""landscape_core: the library behind the notebooks of the adversarial loss-landscape study.

One concept per module: ``spec`` (validated parameters), ``io`` (paths, atomic writes), ``data``,
``models``, ``attacks``, ``schedules``, ``train`` (with its per-batch probes), ``runs`` (the run store),
``evaluate``, ``hessian``, ``landscape`` (directions, scans, perturbation similarity), ``curves``
(mode connectivity), ``linear_theory``, ``plots``, ``claims`` and ``notebook`` (papermill glue).
Import the submodule you need; this package imports nothing heavy at import time.
"""
__version__ = "0.1.0"
