"""The console side of :mod:`landscape_core.core.progress`: a thread that prints a running notebook's
progress events, with the time elapsed and the time left estimated from its last complete run."""
from __future__ import annotations

import os
from pathlib import Path

from ..core.io import atomic_path
from ..core.progress import ENV, duration

__all__ = ["ProgressWatcher"]


class ProgressWatcher:
    """Prints the package's progress events (:mod:`landscape_core.core.progress`) on the console while
    a notebook runs, with the time elapsed and, from the last complete run of this notebook, an
    estimate of the time left.  Nothing of it enters the notebook."""

    def __init__(self, label: str, timings: Path, key: str, min_interval: float = 10.0):
        import tempfile
        import threading
        self.label, self.timings, self.key, self.min_interval = label, timings, key, min_interval
        fd, path = tempfile.mkstemp(prefix="landscape-progress-", suffix=".log")
        os.close(fd)
        self.path = Path(path)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.previous = self._load().get(key)

    def _load(self) -> dict:
        import json
        try:
            return json.loads(self.timings.read_text())
        except (OSError, ValueError):
            return {}

    def __enter__(self):
        import time
        self.t0 = time.time()
        os.environ[ENV] = str(self.path)
        self.thread.start()
        return self

    def _status(self) -> str:
        import time
        elapsed = time.time() - self.t0
        text = f"{duration(elapsed)} elapsed"
        if self.previous:
            left = self.previous - elapsed
            text += f", ~{duration(left)} left (last run: {duration(self.previous)})" if left > 0 else \
                f", longer than the last run ({duration(self.previous)})"
        return text

    def _watch(self):
        import time
        seen, last_print = 0, 0.0
        while not self.stop.wait(1.0):
            lines = self.path.read_text(encoding="utf-8").splitlines()
            new, seen = lines[seen:], len(lines)
            for line in new:
                message = line.partition("\t")[2]
                starts = message.endswith("started") or "resumed" in message
                if starts or time.time() - last_print >= self.min_interval:
                    print(f"  {self.label} ({self._status()}): {message}", flush=True)
                    last_print = time.time()

    def __exit__(self, exc_type, *exc):
        import json
        import time
        self.stop.set()
        self.thread.join()
        os.environ.pop(ENV, None)
        self.path.unlink(missing_ok=True)
        if exc_type is None:
            record = {**self._load(), self.key: round(time.time() - self.t0, 1)}
            try:
                with atomic_path(self.timings) as tmp:
                    tmp.write_text(json.dumps(record, indent=1) + "\n")
            except OSError:
                pass
