"""Progress of a study on the console, outside the notebooks (nbval compares their text, so no
volatile line may enter a cell's output).

The runner (``python -m landscape_core run``) points ``$LANDSCAPE_PROGRESS`` at a file and prints what
is appended to it; the package appends one line per event with :func:`report` (a run starts, an epoch
ends with its time and the estimated time left).  Without the variable :func:`report` does nothing, so
a notebook opened in JupyterLab is unaffected.
"""
from __future__ import annotations

import os
import time

ENV = "LANDSCAPE_PROGRESS"


def report(message: str) -> None:
    """Append ``message`` to the progress file, if a runner is listening."""
    path = os.environ.get(ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{time.time():.1f}\t{message}\n")
    except OSError:          # progress is a courtesy: never fail a run for it
        pass


def duration(seconds: float) -> str:
    """``75`` -> ``"1 min 15 s"``; ``3700`` -> ``"1 h 2 min"``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
