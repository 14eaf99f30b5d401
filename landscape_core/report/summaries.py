"""The printed summaries of the notebooks: plain-text tables of the studies' results, rounded so that
nbval compares stable text."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..analysis.robustness import TABLE1_COLUMNS
from .claims import fmt
from .paper import PAPER_TABLE1, compare_with_paper, paper_format, paper_task
from .tables import format_table, relabel, results_table

__all__ = ["health", "zoo_table", "spectra_table", "landscape_summary", "fig5_table", "table1", "paper_comparison",
           "task_table1"]


def health(runs: Mapping[Any, Any]) -> str:
    """How each training run ended (a label or ε -> :class:`~landscape_core.analysis.dynamics.Health`): on the
    plateau, a constant classifier, trained and still converging, or converged (with its learning curve's end)."""
    return "\n".join(f"{f'eps={k:g}' if isinstance(k, float) else k}: {h.final_stage()}" for k, h in runs.items())


def zoo_table(zoo) -> str:
    """02: the Fig 2 windows of each model of the zoo (a :class:`~landscape_core.studies.gradient_dynamics.ZooRuns`)."""
    lines = [" eps  | early grad | early err | dist@first_n | late grad | late err | diverged | end of training"]
    lines += [f"{w.eps:5.2f} | {fmt(w.early_grad):>10} | {w.early_err:9.3f} | {fmt(w.dist_at_n):>12} |"
              f" {fmt(w.late_grad):>9} | {w.late_err:8.3f} | {zoo.runs[w.eps].diverged!s:8} | {zoo.health[w.eps].final_stage()}"
              for w in zoo.windows]
    return "\n".join(lines)


def spectra_table(spectra: Mapping) -> str:
    """03: losses, HVP passes and the top eigenvalue (raw and normalised) per ε."""
    lines = [" eps  | adv loss | random-param loss | HVP passes | top eigenvalue raw | normalised"]
    lines += [f"{s.eps:5.2f} | {s.adv_loss:8.4f} | {s.scale:17.4f} | {s.n_hvp:10d} | {fmt(s.values[0]):>18} |"
              f" {fmt(s.normalised[0]):>10}" for s in spectra.values()]
    return "\n".join(lines)


def landscape_summary(scans: Mapping) -> str:
    """03: the adversarial loss at the centre of each Fig 12 grid and its largest rise."""
    lines = []
    for eps, sc in scans.items():
        c = len(sc.alphas) // 2
        centre = sc.adv_loss[c, c]
        lines.append(f"eps={eps:g}: adversarial loss at the centre {centre:.4f},"
                     f" largest rise over the grid {sc.adv_loss.max() - centre:.4f}")
    return "\n".join(lines)


def fig5_table(result) -> str:
    """05: robust error under the training PGD per learning rate and scheduler, mean(std) over seeds."""
    schedulers = list(result.fig5)
    lines = ["robust test error (%) under the training PGD, mean(std) over seeds",
             "lr        " + "".join(f"{s:>14}" for s in schedulers)]
    lines += [f"{lr:<10g}" + "".join(f"{paper_format(*result.fig5[s][lr]):>14}" for s in schedulers)
              for lr in result.lrs]
    return "\n".join(lines)


def table1(table: Sequence[Mapping[str, Any]], labels: Mapping[str, str] | None = None) -> str:
    """05: our Table 1 (a :func:`~landscape_core.report.tables.results_table`), mean(std) cells, the
    attack columns named by ``labels`` (what ran)."""
    labels = dict(labels or {})
    formatted = format_table(relabel(table, labels))
    names = [labels.get(c, c) for c in TABLE1_COLUMNS]
    cols = [c for c in ("periodic", "scheduler", "model", *names, "Worst") if c in formatted[0]]
    lines = [" | ".join(f"{c:>11}" for c in cols)]
    lines += [" | ".join(f"{str(row[c]):>11}" for c in cols) for row in formatted]
    return "\n".join(lines)


def paper_comparison(table: Sequence[Mapping[str, Any]], dataset: str, arch: str, label: str,
                     labels: Mapping[str, str] | None = None) -> str:
    """05: our rows above the paper's row of the same task, scheduler and periodic setting (the paper's
    periodic rows are ensembles: our ensemble row is compared with them, the final member is not)."""
    task = paper_task(dataset, arch)
    if task is None:
        return f"Table 1 has no row for {dataset} / {arch}"
    keys = [(row, row["periodic"] == "Yes") for row in table if row["model"] != "final member"]
    text = "\n".join(compare_with_paper(row, task, periodic, row["scheduler"], label=label)
                     for row, periodic in keys if (task, periodic, row["scheduler"]) in PAPER_TABLE1)
    ran = {c: n for c, n in (labels or {}).items() if c != n}
    if ran:
        text += "\n(columns by the paper's names; ours ran " + ", ".join(f"{n} for {c}" for c, n in ran.items()) + ")"
    return text


def task_table1(result, labels: Mapping[str, str] | None = None, label: str = "ours") -> str:
    """05: one task's Table 1 rows (a :class:`~landscape_core.studies.pas.TaskResult`) and, below, the
    paper's rows of the same task beside ours."""
    T = result.task.training
    table = results_table(result.rows)
    head = (f"{result.task.name}: {T.dataset} {T.arch}-{T.width}, eps {result.task.eps:.4g}, {T.epochs} epochs, "
            f"{T.optimizer} lr {T.lr:g} ({result.task.lr_schedule}), resets at "
            + ", ".join(f"{r:g}" for r in result.task.resets))
    return "\n".join([head, table1(table, labels), paper_comparison(table, T.dataset, T.arch, label, labels)])
