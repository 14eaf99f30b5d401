"""Reading and validating a notebook's parameters file (``params/<profile>/<name>.yaml``): YAML without
repeated keys, ``--set`` overrides, 02's zoo injected into the notebooks that analyse it, and the per-task
runs of 03, 04 and 06; the training runs the notebooks ask for (:func:`collect`) and their cost in gradient
passes (:func:`passes`).

A notebook that analyses a zoo (:class:`~landscape_core.studies.base.ZooStudyParams`) runs once on 02's own
zoo and once per task of 02's file (the paper profile: CIFAR10 ResNet18-8).  Its params file may carry
``tasks:``, a mapping from 02's task names to settings of this notebook that differ for that task::

    tasks:
      cifar10_resnet18:
        a_values: [0.0, 0.1, 0.3, 0.5, 1.0]     # the CIFAR10 slide table's a

Every per-task set of parameters is validated like the file's own, before any kernel starts.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import yaml

from ..core.io import repo_root
from ..core.spec import ParameterError, Spec
from ..data import dataset_info
from ..studies import NOTEBOOKS, UsesZoo, ZooStudyParams
from ..training import TrainSpec, run_key

__all__ = ["spec_class", "ParamsError", "read_yaml", "parse_overrides", "load_params", "task_names", "per_task",
           "notebook_runs", "collect", "passes"]


def spec_class(name: str) -> type[Spec]:
    if name not in NOTEBOOKS:
        raise SystemExit(f"no parameter spec registered for notebook '{name}' "
                         f"(known: {', '.join(NOTEBOOKS)})")
    return NOTEBOOKS[name]


class ParamsError(ValueError):
    """A parameters file or an override that is not valid YAML, or not a mapping of parameters."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML itself keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"the key '{key}' is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(text: str, where: str) -> Any:
    """Parse YAML; a syntax error or a repeated key raises :class:`ParamsError` naming ``where``."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = " ".join(str(x) for x in (getattr(err, "context", None), getattr(err, "problem", None)) if x) \
            or str(err)
        raise ParamsError(f"{where}: not valid YAML{at}: {what}") from None


def parse_overrides(items: Sequence[str] | None, notebook: str | None = None) -> dict:
    """``["device=cuda", "training.width=8", "01.sgd_lr=0.2"]`` -> the overrides of ``notebook``.

    Values are read as YAML.  A dotted name sets a parameter of a section (``training.width``); a name
    that starts with a notebook's number or name (``01.``, ``01_linear_theory.``) applies to that
    notebook only, and is skipped for the others (with ``notebook=None`` every item applies)."""
    out: dict = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        parts = [x.strip() for x in name.split(".")]
        if not sep or not all(parts):
            raise ParameterError("--set", item, "must be NAME=VALUE, e.g. device=cuda or 01.sgd_lr=0.2")
        if re.fullmatch(r"\d\d(_\w+)?", parts[0]):
            target = parts.pop(0)
            known = [n for n in NOTEBOOKS if n == target or n.split("_")[0] == target]
            if not known:
                raise ParameterError("--set", item, f"names no notebook: known {', '.join(NOTEBOOKS)}")
            if not parts:
                raise ParameterError("--set", item, "must name a parameter after the notebook, e.g. 01.sgd_lr=0.2")
            if notebook is not None and notebook not in known:
                continue
        value = read_yaml(text, f"--set {item}") if text.strip() else None
        section = out
        for key in parts[:-1]:
            section = section.setdefault(key, {})
            if not isinstance(section, dict):
                raise ParameterError("--set", item, f"'{key}' is set as a value and as a section")
        section[parts[-1]] = value
    if "profile" in out:
        raise ParameterError("profile", out["profile"], "is chosen with --profile, not --set")
    return out


def per_task(name: str) -> bool:
    """Whether notebook ``name`` runs once per task of 02 (03, 04, 06)."""
    return issubclass(spec_class(name), ZooStudyParams)


def _zoo_source(profile: str):
    source = UsesZoo.ZOO_FROM
    return spec_class(source).from_params(load_params(source, profile), where=f"params/{profile}/{source}.yaml")


def task_names(name: str, profile: str) -> list[str]:
    """The tasks of 02 that notebook ``name`` runs on besides 02's own zoo (none unless it is per-task)."""
    return [t.name for t in _zoo_source(profile).tasks] if per_task(name) else []


def _merge(params: dict, changes: Mapping[str, Any]) -> dict:
    """``params`` with ``changes`` on top; a section's changes join the section."""
    out = dict(params)
    for key, value in changes.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = {**out[key], **value} if both else value
    return out


def load_params(name: str, profile: str, overrides: Mapping[str, Any] | None = None, task: str = "") -> dict:
    """Read and validate ``params/<profile>/<name>.yaml`` (profile injected, the settings of ``task`` and
    then ``overrides`` on top, e.g. from ``--set device=cuda``); returns the dict.  Everything a run needs
    is checked here, before any kernel starts: names, types, ranges, the constraints between parameters,
    and a device that this machine has.  Without ``task``, the settings of every task are checked too."""
    path = repo_root() / "params" / profile / f"{name}.yaml"
    if not path.exists():
        raise SystemExit(f"missing parameter file {path.relative_to(repo_root())}")
    where = f"{path.relative_to(repo_root())}"
    raw = read_yaml(path.read_text(), where) or {}
    if not isinstance(raw, dict):
        raise ParameterError(name, raw, "the parameter file must hold a mapping name: value", where)
    if raw.get("profile", profile) != profile:
        raise ParameterError("profile", raw["profile"], f"must be '{profile}' in params/{profile}/", where)
    cls = spec_class(name)
    settings = raw.pop("tasks", None) if issubclass(cls, ZooStudyParams) else None
    source = _zoo_source(profile) if issubclass(cls, UsesZoo) else None
    tasks = {t.name: t for t in source.tasks} if source is not None else {}
    settings = _task_settings(settings, tasks, where) if issubclass(cls, ZooStudyParams) else {}
    if task and not issubclass(cls, ZooStudyParams):
        raise ParameterError("--task", task, "is for notebooks that run once per task of 02 (03, 04, 06)", where)
    if task and task not in tasks:
        raise ParameterError("--task", task, f"must name a task of params/{profile}/{UsesZoo.ZOO_FROM}.yaml "
                             f"({', '.join(tasks) or 'it has none'})", where)
    params = _merge(raw, settings.get(task, {})) if task else dict(raw)
    params["profile"] = profile
    if task:
        params["task"] = task
        where += f", task {task}"
    if overrides:
        params = _merge(params, overrides)
        where += " with --set " + " ".join(f"{k}={v}" for k, v in overrides.items())
    if source is not None:
        if "zoo" in params:
            raise ParameterError("zoo", params["zoo"], f"comes from params/{profile}/{cls.ZOO_FROM}.yaml: "
                                 "set the models there", where)
        params["zoo"] = (tasks[task].zoo(source.seed) if task else source.zoo()).to_dict()
    try:
        spec = cls.from_params(params, where=where)      # raises ParameterError before any compute
    except ParameterError as err:
        if not task or err.where.startswith(where):
            raise
        raise ParameterError(err.name, err.value, err.allowed, f"{where}: {err.where}") from None   # file and task
    try:
        spec.torch_device()
    except ParameterError as err:
        raise ParameterError(err.name, err.value, err.allowed, where) from None
    if not task and issubclass(cls, ZooStudyParams):
        for other in tasks:                          # every task's parameters, before any compute
            load_params(name, profile, overrides, task=other)
    return params


def _task_settings(settings: Any, tasks: Mapping[str, Any], where: str) -> dict[str, dict]:
    """A params file's ``tasks:``: a mapping from 02's task names to this notebook's settings."""
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise ParameterError("tasks", settings, "must map a task of 02 to the settings that differ for it", where)
    for key, value in settings.items():
        if key not in tasks:
            raise ParameterError("tasks", key, f"must name a task of {UsesZoo.ZOO_FROM} "
                                 f"({', '.join(tasks) or 'it has none'})", where)
        if not isinstance(value, dict):
            raise ParameterError(f"tasks.{key}", value, "must be a mapping name: value", where)
        for fixed in ("zoo", "task", "profile"):
            if fixed in value:
                raise ParameterError(f"tasks.{key}.{fixed}", value[fixed], "is set by the runner", where)
    return {k: dict(v) for k, v in settings.items()}


def notebook_runs(name: str, profile: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Spec]:
    """Every run of notebook ``name`` on ``profile`` with its validated parameters, by its label: the
    notebook itself, and for 03, 04 and 06 each task of 02 (``"03_hessian [cifar10_resnet18]"``)."""
    from ..report.claims import part_label
    return {part_label(name, t): spec_class(name).from_params(load_params(name, profile, overrides, task=t))
            for t in ["", *task_names(name, profile)]}


def collect(params: dict[str, object]) -> dict[str, tuple[TrainSpec, list[str]]]:
    """``{run key: (spec, [notebooks that need it])}`` from each notebook's validated parameters
    (``{notebook: NotebookParams}``), in the order the notebooks ask for them."""
    out: dict[str, tuple[TrainSpec, list[str]]] = {}
    for name, P in params.items():
        for spec in P.training_specs():
            key = run_key(spec)
            if key in out:
                if name not in out[key][1]:
                    out[key][1].append(name)
            else:
                out[key] = (spec, [name])
    return out


def passes(spec: TrainSpec) -> int:
    """Gradient passes of a run: updates x (attack steps + 1) (TRADES: its KL steps + 2)."""
    n = spec.data.n_train or dataset_info(spec.data.name).n_train
    updates = spec.epochs * -(-n // spec.batch_size)
    steps = 0 if spec.attack.name == "none" else spec.attack.steps
    return updates * (steps + (2 if spec.objective == "trades" else 1))
