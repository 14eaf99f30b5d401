"""pytest plugin for ``make nbval``: after nbval has compared a cell's outputs with every number masked
(``tests/sanitize.cfg``), compare the numbers themselves within their quantity's tolerance
(:mod:`landscape_core.report.regression`).  A number out of tolerance fails the cell, naming the notebook,
the cell, the quantity, the reference value, the new value and the tolerance.

Loaded with ``-p tests.nbval_numbers`` (the Makefile's ``nbval`` target)."""
from __future__ import annotations

import copy

import pytest

from landscape_core.report.regression import MASK, compare_outputs


def _sanitizer(item):
    """nbval's own sanitizers (addresses, progress bars, paths), but not the number mask."""
    import re
    patterns = [(r, s) for r, s in item.parent.sanitize_patterns.items() if s != MASK]

    def clean(text: str) -> str:
        for regex, replace in patterns:
            text = re.sub(regex, replace, text)
        return text
    return clean


def _cleaned(outputs, clean):
    out = []
    for o in outputs:
        o = dict(o)
        if "text" in o:
            o["text"] = clean("".join(o["text"]) if isinstance(o["text"], list) else o["text"])
        if "data" in o:
            o["data"] = {k: clean("".join(v) if isinstance(v, list) else v) if isinstance(v, (str, list)) else v
                         for k, v in o["data"].items()}
        out.append(o)
    return out


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    cell = getattr(item, "cell", None)
    # a copy taken before nbval runs the cell: its comparison merges stream outputs in place
    reference = copy.deepcopy(list(cell.get("outputs", []))) if cell is not None else []
    result = yield
    outputs = getattr(item, "test_outputs", None)
    if outputs is None or not reference or item.options.get("check") is False:
        return result
    clean = _sanitizer(item)
    where = f"{item.fspath.basename} cell {item.cell_num}"
    bad = compare_outputs(_cleaned(reference, clean), _cleaned(outputs, clean), where)
    if bad:
        item.raise_cell_error("numbers out of tolerance:\n  " + "\n  ".join(str(m) for m in bad))
    return result
