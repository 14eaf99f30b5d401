"""Claims: what the sources say, what we measured, and whether it holds at this scale.

Every notebook ends with a :class:`Claims` table. Each claim applies a rule of the catalogue
(:mod:`~landscape_core.report.catalogue`: the sentence quoted with its source, the regime its models
must be in, the calibration on the paper's published numbers). Its verdict is "holds", "fails", or
"untestable at this scale" when the models miss the regime: a constant classifier, or a model still
escaping the plateau where the sentence is about minima, says nothing about the paper. Paper claims
and our evaluation checks are counted apart. Verdicts are printed (rounded, stable text for nbval)
and written to ``outputs/<profile>/claims/<notebook>.json`` so that a whole study can be summarised.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from ..core.io import DamagedFile, load_json, output_parts, save_json
from ..core.machine import mixed
from ..training import stored_results
from .catalogue import CATALOGUE, fmt, fmt_list  # noqa: F401  (fmt, fmt_list: the one rounding of printed numbers)


VERDICTS = ("holds", "fails", "untestable")
_TAGS = {"holds": "holds", "fails": "FAILS", "untestable": "untestable"}


@dataclass
class Claim:
    claim: str          # what the source states (with its figure/section)
    measured: str       # the numbers behind the verdict, rounded
    verdict: str        # holds / fails / untestable
    rule: str = ""      # the test applied to the numbers
    regime: str = ""    # what the models must be for the verdict to say something
    reason: str = ""    # why the regime is not met (untestable), with numbers
    key: str = ""       # the catalogue rule (landscape_core.report.catalogue)
    kind: str = "paper"  # "paper": a source's sentence; "check": ours (evaluation, implementation)
    source: str = ""    # where the sentence is
    sentence: str = ""  # the source's words

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"


def count(verdicts: Sequence[str]) -> str:
    """"3 hold, 1 fails, 2 untestable at this scale" (the three counted apart)."""
    n = {v: sum(x == v for x in verdicts) for v in VERDICTS}
    return (f"{n['holds']} {'holds' if n['holds'] == 1 else 'hold'}, {n['fails']} {'fails' if n['fails'] == 1 else 'fail'}"
            f", {n['untestable']} untestable at this scale")


def count_kinds(claims: Sequence[dict | Claim]) -> str:
    """"paper claims: 3 hold, ...; evaluation checks: 2 hold, ..." (paper claims and our checks apart)."""
    def get(c, k, default=""):
        return c.get(k, default) if isinstance(c, dict) else getattr(c, k)
    parts = []
    for kind, name in (("paper", "paper claims"), ("check", "evaluation checks")):
        vs = [get(c, "verdict") for c in claims if (get(c, "kind") or "paper") == kind]
        if vs:
            parts.append(f"{len(vs)} {name}: {count(vs)}")
    return "; ".join(parts) or "no claims"


@dataclass
class Claims:
    notebook: str
    profile: str
    items: list[Claim] = field(default_factory=list)

    def test(self, key: str, *args, label: str = "", **kwargs) -> Claim:
        """Apply the catalogue's rule ``key`` (:mod:`~landscape_core.report.catalogue`) to the measured
        numbers and record its verdict: "untestable" when the premise of its regime fails, else "holds" or
        "fails". ``label`` tells apart repeated claims (e.g. a task's name)."""
        rule = CATALOGUE.get(key)
        if rule is None:
            raise KeyError(f"no claim rule {key!r}; known: {', '.join(CATALOGUE)}")
        out = rule(*args, **kwargs)
        verdict = "untestable" if not out.premise else ("holds" if out.holds else "fails")
        claim = Claim(rule.claim + (f" ({label})" if label else ""), out.measured, verdict, rule.test,
                      rule.regime, "" if out.premise else out.why, rule.key, rule.kind, rule.source, rule.sentence)
        self.items.append(claim)
        return claim

    def table(self) -> str:
        """A plain-text table: one block per claim (stable for nbval), paper claims first, then our checks."""
        lines = [f"Claims of {self.notebook} ({self.profile} profile): {count_kinds(self.items)}"]
        for kind, head in (("paper", "What the sources say"), ("check", "Evaluation checks (ours)")):
            items = [c for c in self.items if c.kind == kind]
            if not items:
                continue
            lines.append(f"-- {head}")
            for i, c in enumerate(items, 1):
                lines.append(f"[{_TAGS[c.verdict]}] {'P' if kind == 'paper' else 'C'}{i}. {c.claim}")
                if c.source:
                    lines.append(f"        source:   {c.source}")
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


def provenance_note(root: Path, store: Path | None = None) -> str:
    """``""`` when every notebook run of ``root`` (``params/*.json``) and every run of ``store`` (its
    ``result.json``) recorded one numerical provenance (:mod:`landscape_core.core.machine`); else a
    paragraph that says which numbers come from where, so a reader knows why a 3rd digit differs."""
    records = []
    for task, part in output_parts(Path(root)).items():
        for path in sorted((part / "params").glob("*.json")):
            try:
                records.append((f"notebook {part_label(path.stem, task)}", json.loads(path.read_text()).get("numerics")))
            except (OSError, ValueError):
                continue
    records += [(f"run {name}", r.get("numerics")) for name, r in stored_results(store).items()]
    groups = mixed(records)
    if not groups:
        return ""
    return ("[!] mixed numerical provenance: these numbers come from runs on different torch versions, devices, "
            "kernels or thread counts, which move the 2nd-3rd printed digit of trained models (not the "
            "verdicts' meaning):\n" + groups)


def part_label(notebook: str, task: str = "") -> str:
    """How a notebook's run is named in summaries and reports: ``03_hessian``, or ``03_hessian [task]`` for
    its run on the zoo of 02's task ``task``."""
    return f"{notebook} [{task}]" if task else notebook


def summarise(directory: Path, profile: str = "", expected: dict[str, str] | None = None,
              store: Path | None = None) -> str:
    """One line per notebook run and claim from every ``claims/*.json`` in ``directory`` and in the task
    folders beside it (``tasks/<task>/claims``: 03, 04 and 06 on 02's other tasks), and the totals.

    ``expected``: the parameter digest (:func:`~landscape_core.report.notebook.provenance`) each
    notebook's params file gives now, by :func:`part_label`; a run whose outputs record another digest
    (params edited since, a hand-run in JupyterLab, an older run) is flagged, so a mixed folder does not
    pass unseen."""
    lines, everything, foreign = [], [], []
    folders = {"": Path(directory), **{t: part / "claims" for t, part in output_parts(Path(directory).parent).items() if t}}
    for task, claims_dir in folders.items():
        for path in sorted(claims_dir.glob("*.json")):
            data = load_claims(path)
            label = part_label(data["notebook"], task)
            vs = [c["verdict"] for c in data["claims"]]
            everything += data["claims"]
            note = ""
            if expected is not None and label in expected:
                record = claims_dir.parent / "params" / f"{data['notebook']}.json"
                made = json.loads(record.read_text())["digest"] if record.exists() else None
                if made != expected[label]:
                    foreign.append(label)
                    note = ("  [!] NOT made by params/{p}/{n}.yaml as it is now ({why})".format(
                        p=profile, n=data["notebook"],
                        why="no record of its parameters" if made is None else f"made with parameters {made}"))
            lines.append(f"{label}: {count_kinds(data['claims'])}{note}")
            lines += [f"  [{_TAGS[v]}] {'' if c.get('kind', 'paper') == 'paper' else '(check) '}{c['claim']}"
                      + (f"  ({c['reason']})" if c.get("reason") else "") for v, c in zip(vs, data["claims"])]
    if not lines:
        return f"no claims in {directory}"
    lines.append(f"all notebooks: {count_kinds(everything)}")
    if foreign:
        lines.append(f"[!] {len(foreign)} notebook run(s) in this folder were made with other parameters than "
                     f"the profile's files: {', '.join(foreign)}; `make reproduce PROFILE={profile}` re-runs them")
    note = provenance_note(Path(directory).parent, store)
    if note:
        lines.append(note)
    if profile == "smoke":
        lines.append("(smoke profile: tiny models for seconds; its verdicts test the plumbing, not the paper)")
    return "\n".join(lines)


def load_claims(path: Path) -> dict:
    """A notebook's claims file (``claims/<notebook>.json``) as :meth:`Claims.save` writes it, every claim
    with its ``verdict`` and ``kind`` (files written before verdicts had three values hold only ``holds``,
    before checks were told apart no ``kind``); a damaged file raises :class:`DamagedFile` naming it."""
    data = load_json(path)
    try:
        data["claims"] = [{**c, "verdict": c.get("verdict") or ("holds" if c["holds"] else "fails"),
                           "kind": c.get("kind") or "paper"} for c in data["claims"]]
        data["notebook"]
    except (KeyError, TypeError) as err:
        raise DamagedFile(path, err) from err
    return data
