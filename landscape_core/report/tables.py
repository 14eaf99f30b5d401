"""The one table writer (CSV + Markdown, atomically) and the tables' layouts.

Rows are dicts, one per line of the table.  :func:`results_table` aggregates one row per run into
mean and std over seeds; :func:`format_table` collapses them into the paper's "mean(std)" cells;
:func:`markdown` renders rows; :func:`write_table` writes ``<stem>.csv`` and ``<stem>.md``;
:func:`show` prints the Markdown and writes both.  :func:`similarity_rows` lays out the slides'
cosine tables.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..analysis.similarity import SimilarityResult
from ..analysis.stats import mean_std
from ..core.io import atomic_write_text
from ..core.spec import ParameterError
from .paper import paper_format

__all__ = ["results_table", "format_table", "markdown", "write_table", "read_table", "show", "similarity_rows",
           "relabel"]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def results_table(rows: Sequence[Mapping[str, Any]], seed_key: str = "seed") -> list[dict[str, Any]]:
    """Aggregate one row per run into one row per setting: mean and std (ddof 1) over the runs.

    Non-numeric values (strings, booleans, None) name the setting and group the rows (groups keep
    their first appearance's order); numeric values are metrics; ``seed_key`` is neither.  Each output
    row holds the setting, ``runs`` and ``<metric>_mean`` / ``<metric>_std`` for every metric.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        key = tuple((k, v) for k, v in row.items() if k != seed_key and not _is_number(v))
        groups.setdefault(key, []).append(row)
    out = []
    for key, members in groups.items():
        metrics = [k for k, v in members[0].items() if k != seed_key and _is_number(v)]
        agg: dict[str, Any] = dict(key)
        agg["runs"] = len(members)
        for m in metrics:
            agg[f"{m}_mean"], agg[f"{m}_std"] = mean_std([r[m] for r in members])
        out.append(agg)
    return out


def format_table(rows: Sequence[Mapping[str, Any]], decimals: int = 2,
                 formats: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Collapse each ``<m>_mean`` / ``<m>_std`` pair into one ``<m>`` cell "mean(std)"; numbers in a
    column of ``formats`` use its format spec (e.g. ".4f", "g"), other floats ``decimals`` decimals."""
    formats = formats or {}
    out = []
    for row in rows:
        new: dict[str, Any] = {}
        for k, v in row.items():
            if k.endswith("_std") and f"{k[:-4]}_mean" in row:
                continue
            if k.endswith("_mean") and f"{k[:-5]}_std" in row:
                new[k[:-5]] = paper_format(v, row[f"{k[:-5]}_std"], decimals)
            elif k in formats and _is_number(v):
                new[k] = format(v, formats[k])
            elif isinstance(v, float):
                new[k] = f"{v:.{decimals}f}"
            else:
                new[k] = v
        out.append(new)
    return out


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: dict[str, None] = {}
    for row in rows:
        cols.update(dict.fromkeys(row))
    return list(cols)


def markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    cols = _columns(rows)

    def cell(v):
        return "" if v is None else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, cols)) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(rows: Sequence[Mapping[str, Any]], path_stem: str | Path, decimals: int = 2,
                formats: Mapping[str, str] | None = None) -> None:
    """Write ``<path_stem>.csv`` (values as given, full precision) and ``<path_stem>.md`` (formatted by
    :func:`format_table`), each atomically.  Returns nothing, so a notebook cell shows no path."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(f"{path_stem}.csv", buf.getvalue())
    atomic_write_text(f"{path_stem}.md", markdown(format_table(rows, decimals, formats)))


def relabel(rows: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """The rows with columns renamed (``<col>``, ``<col>_mean``, ``<col>_std`` alike) by ``labels``."""
    def name(key: str) -> str:
        for suffix in ("_mean", "_std", ""):
            if key.endswith(suffix) and key[:len(key) - len(suffix)] in labels:
                return labels[key[:len(key) - len(suffix)]] + suffix
        return key
    return [{name(k): v for k, v in row.items()} for row in rows]


def _parse_cell(text: str) -> Any:
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """Read a CSV written by :func:`write_table` back (numbers, booleans and empty cells restored)."""
    with open(path, newline="") as fh:
        return [{k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def show(rows: Sequence[Mapping[str, Any]], path_stem: str | Path, decimals: int = 2,
         formats: Mapping[str, str] | None = None) -> None:
    """Print the rows as Markdown (as :func:`write_table` writes them) and write the table."""
    print(markdown(format_table(rows, decimals, formats)), end="")
    write_table(rows, path_stem, decimals, formats)


def similarity_rows(results: Mapping[str, Mapping[str, SimilarityResult]], *, digits: int = 3,
                    error: str = "mean") -> list[dict[str, str]]:
    """Rows in the slides' layout: row groups (e.g. "Eigenvector", "Random") x ``a``; for each column
    group (e.g. "eps = 0.1") the mean cosine and the robust error in percent (headed "Test(%)" when
    every result measured it on a test set, "Train(%)" when none did).

    ``results`` maps row-group label -> column-group label -> result; all results must share their
    ``a_values`` within a row group.  ``error`` picks the error column: "mean" of the two points
    (default), "plus" (``theta + a v``), "minus" or "max".
    """
    if error not in ("mean", "plus", "minus", "max"):
        raise ParameterError("error", error, "must be one of ['mean', 'plus', 'minus', 'max']")
    columns = list(dict.fromkeys(c for group in results.values() for c in group))
    sets = {res.error_set for group in results.values() for res in group.values()}
    err_label = {frozenset({"test"}): "Test(%)", frozenset({"train"}): "Train(%)"}.get(
        frozenset(sets), "Error(%)")
    rows = []
    for label, group in results.items():
        if not group:          # no model analysed (every one a constant classifier)
            continue
        first = next(iter(group.values()))
        for i, a in enumerate(first.a_values):
            row = {"v": label if i == 0 else "", "a": f"{a:g}"}
            for c in columns:
                res = group.get(c)
                cos = err = ""
                if res is not None:
                    err = {"mean": res.error_mean, "plus": res.error_plus, "minus": res.error_minus,
                           "max": np.maximum(res.error_plus, res.error_minus)}[error][i]
                    cos, err = f"{res.cosine_mean[i]:.{digits}f}", f"{100 * err:.1f}"
                row[f"{c} Cosine"], row[f"{c} {err_label}"] = cos, err
            rows.append(row)
    return rows
