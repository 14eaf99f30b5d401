"""The house rules a layer contract cannot state (the floors themselves: ``make lint``, import-linter):
no import circle anywhere in the package, function-level imports included; no ``_private`` name imported
from another module; no function over 60 lines in ``training/``, ``attacks/``, ``analysis/``."""
import ast
from pathlib import Path

import grimp

PACKAGE = Path(__file__).resolve().parents[1] / "landscape_core"
MAX_LINES = 60
SHORT_FLOORS = ("training", "attacks", "analysis")


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter[0]; counter[0] += 1; stack.append(root); on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1; stack.append(w); on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop(); on.discard(w); comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_the_package_function_level_imports_included():
    graph = grimp.build_graph("landscape_core", cache_dir=None)     # every import statement, in functions too
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert circles(edges) == []


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def test_no_private_name_is_imported_from_another_module():
    found = [f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {alias.name} from {node.module}"
             for path, tree in _sources() for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             and (node.level > 0 or (node.module or "").startswith("landscape_core"))      # ours, not torch's
             for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert found == []


def test_no_function_over_60_lines_in_training_attacks_analysis():
    long = []
    for path, tree in _sources():
        if path.relative_to(PACKAGE).parts[0] not in SHORT_FLOORS:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                n = node.end_lineno - first + 1
                if n > MAX_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}: {n} lines")
    assert long == []
