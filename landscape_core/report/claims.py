"""Claims: what the paper says, what we measured, and whether it holds at this scale.

Every notebook ends with a :class:`Claims` table.  A claim is checked by a rule stated in code next
to the measurement (never tuned to pass); its verdict is printed (rounded, stable text for nbval) and
written to ``outputs/<profile>/claims/<notebook>.json`` so that a whole study can be summarised.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..analysis.stats import rank_correlation
from ..core.io import save_json


@dataclass
class Claim:
    claim: str          # what the paper states (with its figure/section)
    measured: str       # the numbers behind the verdict, rounded
    holds: bool
    rule: str = ""      # the test applied to the numbers


@dataclass
class Claims:
    notebook: str
    profile: str
    items: list[Claim] = field(default_factory=list)

    def check(self, claim: str, holds: bool, measured: str, rule: str = "") -> None:
        self.items.append(Claim(claim, measured, bool(holds), rule))

    def trend(self, claim: str, x, values, direction: int, measured: str, name: str) -> None:
        """A monotone trend of ``values`` over ``x`` (e.g. ε): Spearman's rho >= 0.9 (rising,
        ``direction`` +1) or <= -0.9 (falling, -1); with five points at most one adjacent swap."""
        r = rank_correlation(x, values)
        self.check(claim, r >= 0.9 if direction > 0 else r <= -0.9, f"{measured} {fmt_list(values)}; rho {r:.2f}",
                   f"Spearman rho(eps, {name}) {'>= 0.9' if direction > 0 else '<= -0.9'}")

    def table(self) -> str:
        """A plain-text table: one block per claim (stable for nbval)."""
        lines = [f"Claims of {self.notebook} ({self.profile} profile): "
                 f"{sum(c.holds for c in self.items)}/{len(self.items)} hold"]
        for i, c in enumerate(self.items, 1):
            lines.append(f"[{'yes' if c.holds else 'NO '}] {i}. {c.claim}")
            lines.append(f"        measured: {c.measured}")
            if c.rule:
                lines.append(f"        rule:     {c.rule}")
        return "\n".join(lines)

    def save(self, directory: Path) -> None:
        save_json(Path(directory) / f"{self.notebook}.json",
                         {"notebook": self.notebook, "profile": self.profile,
                          "claims": [asdict(c) for c in self.items]})

    def report(self, directory: Path) -> None:
        """Print the table and save the JSON."""
        print(self.table())
        self.save(directory)


def fmt(value: float, digits: int = 3) -> str:
    """Round for printing: fixed significant digits, no numpy reprs (nbval compares text)."""
    if value is None:
        return "n/a"
    value = float(value)
    if value != value:
        return "nan"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.{digits}g}" if abs(value) >= 1 else f"{value:.{digits}f}"
    return f"{value:.{max(digits - 1, 1)}e}"


def fmt_list(values, digits: int = 3) -> str:
    return "[" + ", ".join(fmt(v, digits) for v in values) + "]"


def summarise(directory: Path) -> str:
    """One line per notebook and claim from every ``claims/*.json`` in ``directory``."""
    lines = []
    for path in sorted(Path(directory).glob("*.json")):
        data = json.loads(path.read_text())
        held = sum(c["holds"] for c in data["claims"])
        lines.append(f"{data['notebook']}: {held}/{len(data['claims'])} claims hold")
        lines += [f"  [{'yes' if c['holds'] else 'NO '}] {c['claim']}" for c in data["claims"]]
    return "\n".join(lines) if lines else f"no claims in {directory}"
