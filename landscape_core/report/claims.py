"""Claims: what the paper says, what we measured, and whether it holds at this scale.

Every notebook ends with a :class:`Claims` table.  A claim is checked by a rule stated in code next
to the measurement (never tuned to pass), and declares the :class:`Regime` its models must be in
(e.g. trained, not stuck on the initial plateau).  Its verdict is "holds", "fails", or "untestable at
this scale" when the models miss the regime: a constant classifier says nothing about the paper.
Verdicts are printed (rounded, stable text for nbval) and written to
``outputs/<profile>/claims/<notebook>.json`` so that a whole study can be summarised.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from ..analysis.dynamics import TRAINED_FRACTION_OF_CHANCE, Health
from ..analysis.stats import rank_correlation
from ..core.io import save_json
from ..core.machine import mixed


VERDICTS = ("holds", "fails", "untestable")
_TAGS = {"holds": "holds", "fails": "FAILS", "untestable": "untestable"}


@dataclass(frozen=True)
class Regime:
    """What the models behind a claim must be, declared with the claim before its numbers are read; a
    claim whose models miss it is "untestable at this scale", never "fails" or "holds"."""

    requirement: str
    met: bool
    reason: str = ""            # the numbers of the models that miss it

    @classmethod
    def trained(cls, health: Mapping[str, Health], what: str = "models", need: int | None = None) -> "Regime":
        """Every model of ``health`` (or at least ``need`` of them) left the initial plateau."""
        off = {k: h for k, h in health.items() if not h.trained}
        met = not off if need is None else len(health) - len(off) >= need
        many = f"every one of the {what}" if need is None else f"at least {need} of the {what}"
        return cls(f"{many} trained (not a constant classifier; robust train error over the last epoch "
                   f"<= {TRAINED_FRACTION_OF_CHANCE:g} x chance)", met,
                   "; ".join(f"{k}: {h.state()}" for k, h in off.items()))


@dataclass
class Claim:
    claim: str          # what the paper states (with its figure/section)
    measured: str       # the numbers behind the verdict, rounded
    verdict: str        # holds / fails / untestable
    rule: str = ""      # the test applied to the numbers
    regime: str = ""    # what the models must be for the verdict to say something
    reason: str = ""    # why the regime is not met (untestable), with numbers

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"


def count(verdicts: Sequence[str]) -> str:
    """"3 hold, 1 fails, 2 untestable at this scale" (the three counted apart)."""
    n = {v: sum(x == v for x in verdicts) for v in VERDICTS}
    return (f"{n['holds']} {'holds' if n['holds'] == 1 else 'hold'}, {n['fails']} {'fails' if n['fails'] == 1 else 'fail'}"
            f", {n['untestable']} untestable at this scale")


@dataclass
class Claims:
    notebook: str
    profile: str
    items: list[Claim] = field(default_factory=list)

    def check(self, claim: str, holds: bool, measured: str, rule: str = "", regime: Regime | None = None) -> None:
        """Record a claim: "untestable" when its models miss ``regime``, else "holds" or "fails" by ``holds``."""
        if regime is not None and not regime.met:
            verdict = "untestable"
        else:
            verdict = "holds" if holds else "fails"
        self.items.append(Claim(claim, measured, verdict, rule, regime.requirement if regime else "",
                                regime.reason if regime is not None and not regime.met else ""))

    def trend(self, claim: str, x, values, direction: int, measured: str, name: str,
              health: Mapping[float, Health] | None = None, min_points: int = 3) -> None:
        """A monotone trend of ``values`` over the budgets ``x``: Spearman's rho >= 0.9 (rising,
        ``direction`` +1) or <= -0.9 (falling, -1); with five points at most one adjacent swap.

        With ``health`` (budget -> :class:`Health`) the trend is about trained models: it is tested over
        the budgets whose models left the plateau, and is untestable with fewer than ``min_points``."""
        keep = [i for i, e in enumerate(x) if health is None or health[e].trained]
        xs, vs = [x[i] for i in keep], [values[i] for i in keep]
        regime = None
        if health is not None:
            regime = Regime.trained({f"eps={e:g}": health[e] for e in x}, f"{len(x)} models", need=min_points)
            regime = Regime(f"the trend over the budgets whose models trained: {regime.requirement}",
                            len(keep) >= min_points, regime.reason)
        if len(xs) >= 2:
            r = rank_correlation(xs, vs)
            text = f"{measured} {fmt_list(vs)}; rho {r:.2f}"
        else:
            r, text = float("nan"), f"{measured} {fmt_list(vs)}"
        if len(keep) < len(x):
            text += f" (over eps {fmt_list(xs, 2)} only)"
        self.check(claim, r >= 0.9 if direction > 0 else r <= -0.9, text,
                   f"Spearman rho(eps, {name}) {'>= 0.9' if direction > 0 else '<= -0.9'}", regime)

    def no_masking(self, flags: Sequence, what: str = "evaluated models") -> None:
        """AutoAttack's warning signs (:mod:`landscape_core.analysis.masking`): no trained model of
        ``flags`` (:class:`~landscape_core.analysis.masking.ModelFlags`) raises one; untrained models are
        reported but say nothing (a constant classifier raises flags by construction)."""
        trained = [f for f in flags if f.health.trained and f.report is not None]
        flagged = [f for f in trained if f.report.flagged]
        measured = "; ".join(f"{f.label}: {'; '.join(f.report.flags.values())}" for f in flagged) or \
            f"{len(trained)} trained models, none flagged"
        self.check("Evaluation: no model is flagged for gradient masking (so its robust errors can be trusted)",
                   not flagged, measured, "no trained model raises a flag: PGD iterations, Square vs white box, "
                   "error at the whole box, zero input gradients", Regime.trained({f.label: f.health for f in flags},
                                                                                   what, need=1))

    def table(self) -> str:
        """A plain-text table: one block per claim (stable for nbval)."""
        lines = [f"Claims of {self.notebook} ({self.profile} profile): {count([c.verdict for c in self.items])}"]
        for i, c in enumerate(self.items, 1):
            lines.append(f"[{_TAGS[c.verdict]}] {i}. {c.claim}")
            lines.append(f"        measured: {c.measured}")
            if c.rule:
                lines.append(f"        rule:     {c.rule}")
            if c.regime:
                lines.append(f"        regime:   {c.regime}")
            if c.reason:
                lines.append(f"        not met:  {c.reason}")
        return "\n".join(lines)

    def save(self, directory: Path) -> None:
        save_json(Path(directory) / f"{self.notebook}.json",
                  {"notebook": self.notebook, "profile": self.profile,
                   "claims": [{**asdict(c), "holds": c.holds} for c in self.items]})

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


def provenance_note(root: Path, store: Path | None = None) -> str:
    """``""`` when every notebook run of ``root`` (``params/*.json``) and every run of ``store`` (its
    ``result.json``) recorded one numerical provenance (:mod:`landscape_core.core.machine`); else a
    paragraph that says which numbers come from where, so a reader knows why a 3rd digit differs."""
    records = []
    for path in sorted((Path(root) / "params").glob("*.json")):
        try:
            records.append((f"notebook {path.stem}", json.loads(path.read_text()).get("numerics")))
        except (OSError, ValueError):
            continue
    for path in sorted(Path(store).glob("*/result.json")) if store is not None else ():
        try:
            records.append((f"run {path.parent.name}", json.loads(path.read_text()).get("numerics")))
        except (OSError, ValueError):
            continue
    groups = mixed(records)
    if not groups:
        return ""
    return ("[!] mixed numerical provenance: these numbers come from runs on different torch versions, devices, "
            "kernels or thread counts, which move the 2nd-3rd printed digit of trained models (not the "
            "verdicts' meaning):\n" + groups)


def summarise(directory: Path, profile: str = "", expected: dict[str, str] | None = None,
              store: Path | None = None) -> str:
    """One line per notebook and claim from every ``claims/*.json`` in ``directory``, and the totals.

    ``expected``: the parameter digest (:func:`~landscape_core.report.notebook.provenance`) each
    notebook's params file gives now; a notebook whose outputs record another digest (params edited
    since, a hand-run in JupyterLab, an older run) is flagged, so a mixed folder does not pass unseen."""
    lines, verdicts, foreign = [], [], []
    for path in sorted(Path(directory).glob("*.json")):
        data = json.loads(path.read_text())
        vs = [_verdict(c) for c in data["claims"]]
        verdicts += vs
        note = ""
        if expected is not None and data["notebook"] in expected:
            record = Path(directory).parent / "params" / f"{data['notebook']}.json"
            made = json.loads(record.read_text())["digest"] if record.exists() else None
            if made != expected[data["notebook"]]:
                foreign.append(data["notebook"])
                note = ("  [!] NOT made by params/{p}/{n}.yaml as it is now ({why})".format(
                    p=profile, n=data["notebook"],
                    why="no record of its parameters" if made is None else f"made with parameters {made}"))
        lines.append(f"{data['notebook']}: {count(vs)}{note}")
        lines += [f"  [{_TAGS[v]}] {c['claim']}" + (f"  ({c['reason']})" if c.get("reason") else "")
                  for v, c in zip(vs, data["claims"])]
    if not lines:
        return f"no claims in {directory}"
    lines.append(f"all notebooks: {len(verdicts)} claims: {count(verdicts)}")
    if foreign:
        lines.append(f"[!] {len(foreign)} notebook(s) in this folder were made with other parameters than "
                     f"the profile's files: {', '.join(foreign)}; `make reproduce PROFILE={profile}` re-runs them")
    note = provenance_note(Path(directory).parent, store)
    if note:
        lines.append(note)
    if profile == "smoke":
        lines.append("(smoke profile: tiny models for seconds; its verdicts test the plumbing, not the paper)")
    return "\n".join(lines)


def _verdict(claim: dict) -> str:
    """A stored claim's verdict (files written before verdicts had three values hold a boolean)."""
    return claim.get("verdict") or ("holds" if claim["holds"] else "fails")
