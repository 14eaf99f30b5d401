"""The study's HTML report: ``outputs/<profile>/report/index.html`` and every executed notebook as HTML.

:func:`build` reads what the notebooks left in an outputs folder and writes one self-contained page
(figures embedded as PNG data, styles inline, no script, no network): the claims of every notebook
(verdict, rule, regime, numbers) each linking to the cell of the notebook's HTML that checks it, every
figure, every table (Table 1 beside the paper's), and the run store's inventory (runs, devices, times).
The notebooks are converted by ``nbconvert`` (lab template, images embedded) into ``report/notebooks/``.
:func:`model_report` writes the same kind of page for one diagnosed model (``diagnose``).
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..core.io import atomic_write_text, output_parts
from ..training import stored_results
from .catalogue import table as catalogue_table
from .claims import count_kinds, load_claims, part_label, provenance_note
from .paper import PAPER_TABLE1, PAPER_TASKS, paper_format
from .tables import format_table, read_table
from ..analysis.robustness import TABLE1_COLUMNS

__all__ = ["build", "model_report", "notebook_html", "claim_cells", "run_inventory", "page"]

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1180px;padding:0 18px 40px;color:#222}
h1{margin:18px 0 4px}h2{border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:30px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:12.5px}td,th{border:1px solid #ddd;padding:3px 7px;
text-align:right;vertical-align:top}th{background:#f4f4f4}td.l,th.l{text-align:left}
.holds{background:#e3f4e3}.fails{background:#fbe1e1}.untestable{background:#f1f1f1;color:#555}
.v{font-weight:600;text-transform:uppercase;font-size:11px}figure{display:inline-block;margin:6px 10px 12px 0}
figure img{max-width:560px;border:1px solid #eee}figcaption{font-size:12px;color:#555}
nav a{margin-right:12px}.small{font-size:12px;color:#555}.warn{background:#fff4d6;padding:6px 9px}
"""


def _esc(value) -> str:
    return html.escape(str(value))


def page(title: str, body: str) -> str:
    """A complete HTML document with the report's inline style."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_esc(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n")


def table_html(rows: Sequence[Mapping], decimals: int = 2) -> str:
    """Rows (dicts) as an HTML table, formatted as the Markdown tables are (:func:`.tables.format_table`);
    text cells left-aligned."""
    if not rows:
        return "<p class=small>(empty)</p>"
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]

    def cell(v) -> str:
        text = "" if v is None else str(v)
        try:
            float(text)
            return f"<td>{_esc(text)}</td>"
        except ValueError:
            return f"<td class=l>{_esc(text)}</td>" if text and not isinstance(v, bool) else f"<td>{_esc(text)}</td>"

    head = "".join(f"<th>{_esc(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(cell(r.get(c, "")) for c in cols) + "</tr>"
                   for r in format_table(rows, decimals))
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (f"<figure><img alt=\"{_esc(path.stem)}\" src=\"data:image/png;base64,{data}\">"
            f"<figcaption>{_esc(path.stem)}</figcaption></figure>")


def notebook_html(notebook: Path, target: Path) -> None:
    """One executed notebook as HTML (nbconvert's lab template, images embedded), written atomically."""
    import nbformat
    from nbconvert import HTMLExporter
    nb = nbformat.read(str(notebook), as_version=4)
    body, _ = HTMLExporter(template_name="lab", embed_images=True).from_notebook_node(nb)
    atomic_write_text(target, body)


def claim_cells(notebook: Path, claims: Iterable[str | dict]) -> dict[str, str]:
    """Each claim (its text, or its stored dict) -> the id of the notebook cell that tests it: the first code
    cell whose source names its catalogue rule (``"key"``) or contains the claim's opening words, else the
    cell whose output prints it (the claims table)."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    out = {}
    for item in claims:
        claim = item["claim"] if isinstance(item, dict) else item
        rule = item.get("key") if isinstance(item, dict) else None
        key = claim[:40]
        found = None
        for c in cells:
            source = "".join(c["source"])
            if c["cell_type"] == "code" and ((rule and f'"{rule}"' in source) or key in source):
                found = c.get("id")
                break
        if found is None:
            for c in cells:
                text = "".join("".join(o.get("text", "")) for o in c.get("outputs", []))
                if c["cell_type"] == "code" and key in text:
                    found = c.get("id")
                    break
        if found:
            out[claim] = found
    return out


def _trainer(t: dict | None) -> str:
    """How a run was trained: alone, or as member m of a stack of M (``training.batched``)."""
    return "alone" if not t else f"{t['kind']}: member {t['member'] + 1} of {t['members']}"


def run_inventory(store: Path) -> list[dict]:
    """One row per completed run of the store: what it is, where and how long it ran."""
    rows = []
    for name, r in stored_results(store).items():
        s = r.get("spec", {})
        attack = s.get("attack", {})
        numerics = r.get("numerics") or {}
        rows.append({"run": r.get("digest", name), "data": s.get("data", {}).get("name", ""),
                     "model": f"{s.get('model', {}).get('arch', '')}-{s.get('model', {}).get('width', '')}",
                     "eps": attack.get("eps", ""), "schedule": s.get("eps_schedule", ""),
                     "objective": s.get("objective", "ce"), "lr": s.get("lr", ""), "seed": s.get("seed", ""),
                     "epochs": r.get("epochs_done", ""), "device": r.get("device", ""),
                     "precision": r.get("precision", ""), "torch": r.get("torch", ""),
                     "hardware": f"{numerics.get('device_name', '?')} ({numerics.get('cpu_capability', '?')})",
                     "threads": numerics.get("threads", ""), "seconds": r.get("seconds", ""),
                     "trainer": _trainer(r.get("trainer"))})
    return rows


def _paper_table1() -> list[dict]:
    return [{"task": PAPER_TASKS[t], "periodic lr": "Yes" if p else "No", "scheduler": s,
             **{c: paper_format(*v[c]) for c in TABLE1_COLUMNS}} for (t, p, s), v in PAPER_TABLE1.items()]



def build(root: Path, store: Path, title: str, notebooks_dir: Path | None = None,
          setup: Sequence[Mapping] = ()) -> Path:
    """Write ``<root>/report/index.html`` (and ``report/notebooks/*.html``) from the outputs in ``root``;
    the executed notebooks are read from ``notebooks_dir`` (default ``root``)."""
    root, report = Path(root), Path(root) / "report"
    (report / "notebooks").mkdir(parents=True, exist_ok=True)
    parts = output_parts(root)            # 02's zoo and, for 03, 04 and 06, each task of 02 (tasks/<task>/)
    nb_dirs = {task: (Path(notebooks_dir) if notebooks_dir and not task else part) for task, part in parts.items()}
    notebooks = []                        # (label, executed notebook, its page under report/notebooks/)
    for task in parts:
        for nb in sorted(nb_dirs[task].glob("[0-9][0-9]_*.ipynb")):
            page_name = f"{task}__{nb.stem}.html" if task else f"{nb.stem}.html"
            notebook_html(nb, report / "notebooks" / page_name)
            notebooks.append((part_label(nb.stem, task), nb, page_name))
    pages = {label: (nb, page_name) for label, nb, page_name in notebooks}
    all_claims, sections, figures, tables = [], [], [], []
    for task, part in parts.items():
        for path in sorted((part / "claims").glob("*.json")):
            data = load_claims(path)
            label = part_label(data["notebook"], task)
            nb, page_name = pages.get(label, (None, ""))
            ids = claim_cells(nb, data["claims"]) if nb else {}
            all_claims += data["claims"]
            rows = []
            for i, c in enumerate(data["claims"], 1):
                link = (f" <a href=\"notebooks/{page_name}#cell-id={_esc(ids[c['claim']])}\">cell</a>"
                        if c["claim"] in ids else "")
                kind = c["kind"]
                source = (f"<details><summary>{_esc(c['source'])}</summary><q>{_esc(c.get('sentence', ''))}</q>"
                          f"</details>") if c.get("source") else ""
                v = c["verdict"]
                rows.append(f"<tr class=\"{v}\"><td>{i}</td><td class=\"l v\">{_esc(v)}</td>"
                            f"<td class=l>{'paper' if kind == 'paper' else 'check (ours)'}</td>"
                            f"<td class=l>{_esc(c['claim'])}{link}{source}</td><td class=l>{_esc(c['measured'])}</td>"
                            f"<td class=l>{_esc(c.get('rule', ''))}</td><td class=l>{_esc(c.get('regime', ''))}"
                            f"{('<br><b>not met:</b> ' + _esc(c['reason'])) if c.get('reason') else ''}</td></tr>")
            link = f" (<a href=\"notebooks/{page_name}\">notebook</a>)" if nb else ""
            anchor = label.replace(" [", "-").rstrip("]")
            sections.append(f"<h3 id=\"claims-{_esc(anchor)}\">{_esc(label)}: {_esc(count_kinds(data['claims']))}{link}</h3>"
                            "<table><tr><th>#</th><th>verdict</th><th class=l>kind</th><th class=l>claim (source: "
                            "click)</th><th class=l>measured</th>"
                            f"<th class=l>rule</th><th class=l>regime</th></tr>{''.join(rows)}</table>")
        shown = "".join(_img(p) for p in sorted((part / "figures").glob("*.png")))
        figures.append((f"<h3>task {_esc(task)} (03, 04, 06 on 02's zoo of this task)</h3>" if task and shown else "")
                       + shown)
        for path in sorted((part / "tables").glob("*.csv")):
            tables.append(f"<h3>{_esc(part_label(path.stem, task))}</h3>{table_html(read_table(path))}")
            if path.stem.endswith("table1"):
                tables.append("<h3>the paper's Table 1 (mean(std) over 3 runs, %)</h3>" + table_html(_paper_table1()))
    figures = "".join(figures)
    inventory = run_inventory(store)
    seconds = sum(float(r["seconds"] or 0) for r in inventory)
    devices = sorted({f"{r['device']} ({r['precision']})" for r in inventory})
    note = provenance_note(root, store)
    note = f"<p class=warn>{_esc(note).replace(chr(10), '<br>')}</p>" if note else ""
    body = (f"<h1>{_esc(title)}</h1><p>{_esc(count_kinds(all_claims))}</p>"
            "<nav><a href=\"#claims\">claims</a><a href=\"#figures\">figures</a><a href=\"#tables\">tables</a>"
            "<a href=\"#runs\">run store</a><a href=\"#notebooks\">notebooks</a><a href=\"#setup\">setup</a><a href=\"#catalogue\">catalogue</a>"
            "</nav>"
            f"<h2 id=\"claims\">Claims</h2>{''.join(sections) or '<p>no claims yet</p>'}"
            f"<h2 id=\"figures\">Figures</h2>{figures or '<p>no figures</p>'}"
            f"<h2 id=\"tables\">Tables</h2>{''.join(tables) or '<p>no tables</p>'}"
            f"<h2 id=\"runs\">Run store</h2><p>{len(inventory)} runs, {seconds / 60:.1f} min of training, on "
            f"{_esc(', '.join(devices) or '-')}</p>{note}{table_html(inventory, 3)}"
            "<h2 id=\"notebooks\">Executed notebooks</h2><ul>"
            + "".join(f"<li><a href=\"notebooks/{page_name}\">{_esc(label)}</a></li>" for label, _, page_name in notebooks)
            + "</ul>"
            + ("<h2 id=\"setup\">The setup: the sources' settings and each profile's</h2>" + table_html(setup)
               if setup else "")
            + "<h2 id=\"catalogue\">The catalogue of claims</h2><p>Every rule the notebooks apply: the sentence "
            "it tests, the rule, the regime its models must be in and how it was calibrated on the sources' "
            "published numbers (landscape_core/report/catalogue/, tests/test_catalogue.py).</p>"
            + table_html(catalogue_table()))
    index = report / "index.html"
    atomic_write_text(index, page(title, body))
    return index


def model_report(path: Path, title: str, sections: Mapping[str, str | Sequence[Mapping]],
                 figures: Sequence[Path] = (), verdicts: Sequence[Mapping] = ()) -> Path:
    """One page for one diagnosed model: ``sections`` maps a heading to rows (a table) or text."""
    parts = [f"<h1>{_esc(title)}</h1>"]
    if verdicts:
        parts.append("<h2>Checks</h2><table><tr><th>verdict</th><th class=l>check</th><th class=l>measured</th></tr>"
                     + "".join(f"<tr class=\"{v['verdict']}\"><td class=\"l v\">{_esc(v['verdict'])}</td>"
                               f"<td class=l>{_esc(v['claim'])}</td><td class=l>{_esc(v['measured'])}</td></tr>"
                               for v in verdicts) + "</table>")
    for head, content in sections.items():
        parts.append(f"<h2>{_esc(head)}</h2>")
        parts.append(f"<pre>{_esc(content)}</pre>" if isinstance(content, str) else table_html(content, 3))
    if figures:
        parts.append("<h2>Figures</h2>" + "".join(_img(Path(f)) for f in figures))
    atomic_write_text(path, page(title, "".join(parts)))
    return Path(path)

