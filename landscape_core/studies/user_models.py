"""The models researchers bring to ``diagnose``: any ``nn.Module`` built by their own factory, their
normalisation wrapped inside it, and the checks every model passes on one batch before any attack runs.

* :func:`factory_model` imports ``package.module:factory``, calls it, and loads a weights file with
  ``torch.load(..., weights_only=True)`` (a plain state dict, or one under ``state_dict`` / ``model``;
  ``module.`` prefixes of ``DataParallel`` removed);
* :func:`robustbench_model` builds a RobustBench entry with the ``robustbench`` package's model zoo (the
  optional extra ``.[robustbench]``) and loads the checkpoint the user already has at RobustBench's path,
  never downloading;
* :func:`with_normalization` puts ``(x - mean) / std`` in front, so attacks work on inputs in [0, 1]
  (AutoAttack's recurring question: fra31/auto-attack #13, #46, #53, #55, #103);
* :func:`check_model` refuses, with the reason, a model whose output is not a batch of logits of the data
  set's classes (a wrong shape, NaN, probabilities instead of logits: AutoAttack's own check) or data
  outside [0, 1], and says whether the model is randomised (the same input twice gives different logits:
  a gradient attack then needs EOT, fra31/auto-attack #15, #56).

Every failure is a :class:`~landscape_core.core.spec.ParameterError` naming what was given: the command
line stops before anything is written.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..core.io import DamagedFile, load_checkpoint
from ..core.spec import ParameterError
from ..models.networks import Normalize

__all__ = ["USUAL_STATISTICS", "factory_model", "load_weights", "robustbench_model", "with_normalization",
           "parse_normalization", "ModelCheck", "check_model"]


def factory_model(target: str, what: str = "--model") -> nn.Module:
    """The module that ``package.module:factory`` returns (the factory called without arguments); errors name
    the option ``what``."""
    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", target or ""):
        raise ParameterError(what, target, "must be package.module:factory (a callable returning the model)")
    module_name, _, attr = target.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ParameterError(what, target, f"cannot be imported: {err}") from None
    if not callable(factory):
        raise ParameterError(what, target, f"{attr} is a {type(factory).__name__}, not a callable")
    try:
        model = factory()
    except Exception as err:  # the user's code: report whatever it raised
        raise ParameterError(what, target, f"the factory raised {type(err).__name__}: {err}") from None
    if not isinstance(model, nn.Module):
        raise ParameterError(what, target, f"the factory returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def load_weights(model: nn.Module, path: str | Path, what: str = "--weights") -> nn.Module:
    """Load a weights file into ``model`` (``weights_only=True``); a file that does not fit is named."""
    try:
        state = load_checkpoint(Path(path))
    except FileNotFoundError:
        raise ParameterError(what, str(path), "no such file") from None
    except DamagedFile as err:
        raise ParameterError(what, str(path), f"cannot be read as plain tensors: {err}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ParameterError(what, str(path), f"holds a {type(state).__name__}, not a state dict")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    own = model.state_dict()
    if not set(state) & set(own) and all(k.startswith("model.") for k in state):     # a wrapper's prefix
        state = {k[len("model."):]: v for k, v in state.items()}
    # buffers the model's constructor sets (a normalisation's mean and std) may be absent from the file;
    # parameters and BatchNorm statistics may not
    params = {k for k, _ in model.named_parameters()}
    absent = set(own) - set(state)
    strict = any(k in params or k.rsplit(".", 1)[-1].startswith(("running_", "num_batches")) for k in absent)
    try:
        missing, unexpected = model.load_state_dict(state, strict=strict)
        if unexpected:
            raise RuntimeError(f"unexpected keys {sorted(unexpected)[:3]}")
    except (RuntimeError, TypeError) as err:
        first = str(err).strip().splitlines()
        raise ParameterError(what, str(path), f"does not fit the model: {' '.join(first[:3])}") from None
    return model


ROBUSTBENCH_DATASETS = ("cifar10",)        # RobustBench's data sets that are also the study's


def _robustbench_zoo():
    """RobustBench's model zoo (``robustbench.model_zoo``: the entries and their architectures).

    Only the model zoo is imported: robustbench 1.1.1's top-level package imports ``pkg_resources``
    (gone from setuptools >= 81) and ``autoattack`` (not on the package index; pyautoattack installs
    ``pyautoattack``), neither of which building a model needs, so the package's ``__init__`` is
    bypassed (and a later ``import robustbench`` runs it as usual)."""
    if "robustbench.model_zoo.models" not in sys.modules:
        spec = importlib.util.find_spec("robustbench")
        if spec is None or not spec.submodule_search_locations:
            raise ParameterError("--robustbench", None, "needs the optional extra: pip install -e '.[robustbench]'")
        stub = "robustbench" not in sys.modules
        if stub:
            pkg = types.ModuleType("robustbench")
            pkg.__path__, pkg.__spec__, pkg.__file__ = list(spec.submodule_search_locations), spec, spec.origin
            sys.modules["robustbench"] = pkg
        try:
            importlib.import_module("robustbench.model_zoo.models")
        except ImportError as err:
            raise ParameterError("--robustbench", None, f"robustbench's model zoo cannot be imported: {err}") from None
        finally:
            if stub:
                del sys.modules["robustbench"]
    models = sys.modules["robustbench.model_zoo.models"]
    enums = sys.modules["robustbench.model_zoo.enums"]
    return models.model_dicts, enums.BenchmarkDataset, enums.ThreatModel


def robustbench_model(name: str, threat_model: str = "Linf", dataset: str = "cifar10",
                      model_dir: str | Path = "models") -> nn.Module:
    """The RobustBench entry ``name`` (``threat_model``, ``dataset``) built by robustbench's model zoo, with
    the weights of ``<model_dir>/<dataset>/<threat_model>/<name>.pt`` (RobustBench's own path; read with
    ``weights_only=True``, a ``state_dict`` key and ``module.`` prefixes handled).  Nothing is downloaded:
    a missing file says where it is expected."""
    if dataset not in ROBUSTBENCH_DATASETS:
        raise ParameterError("dataset", dataset, f"RobustBench entries are diagnosed on {list(ROBUSTBENCH_DATASETS)}")
    zoo, Dataset, Threat = _robustbench_zoo()
    threats = [t.value for t in Threat if t in zoo[Dataset(dataset)]]
    if threat_model not in threats:
        raise ParameterError("--threat-model", threat_model, f"must be one of {threats}")
    entries = zoo[Dataset(dataset)][Threat(threat_model)]
    if name not in entries:
        close = difflib.get_close_matches(name, list(entries), n=3)
        raise ParameterError("--robustbench", name, f"is not a {dataset} {threat_model} entry of RobustBench"
                             + (f"; did you mean {', '.join(close)}?" if close else ""))
    entry = entries[name]
    if isinstance(entry.get("gdrive_id"), list):
        raise ParameterError("--robustbench", name, "is an ensemble of several checkpoints: not supported here")
    path = Path(model_dir) / Dataset(dataset).value / Threat(threat_model).value / f"{name}.pt"
    if not path.exists():
        raise ParameterError("--model-dir", str(model_dir), f"has no {path} (where RobustBench keeps this entry's "
                             "checkpoint); nothing is downloaded: fetch it with robustbench.utils.load_model on a "
                             "machine with internet, or copy it there")
    model = entry["model"]()
    return load_weights(model, path, what="--robustbench").eval()


# the statistics models of the field are usually trained with (the study's own models see raw [0, 1] inputs)
USUAL_STATISTICS = {"mnist": ((0.1307,), (0.3081,)), "mnist5k": ((0.1307,), (0.3081,)),
                    "fashionmnist": ((0.2860,), (0.3530,)),
                    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616))}


def parse_normalization(text: str, channels: int) -> tuple[list[float], list[float]]:
    """``"cifar10"`` (a data set's usual statistics), ``"0.1307,0.3081"`` or per channel
    ``"0.4914/0.4822/0.4465,0.2471/0.2435/0.2616"`` -> (mean, std) of ``channels`` values each."""
    if text in USUAL_STATISTICS:
        mean, std = (list(v) for v in USUAL_STATISTICS[text])
    else:
        try:
            mean_text, std_text = text.split(",")
            mean, std = ([float(v) for v in part.split("/")] for part in (mean_text, std_text))
        except ValueError:
            raise ParameterError("--normalize", text, f"must be a data set ({', '.join(USUAL_STATISTICS)}) or MEAN,STD, each "
                                 "one number or one per channel separated by /") from None
    mean, std = (v * channels if len(v) == 1 else v for v in (mean, std))
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise ParameterError("--normalize", text, f"needs {channels} means and {channels} positive stds")
    return mean, std


def with_normalization(model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> nn.Module:
    """``model`` behind ``(x - mean) / std``: the attacks see inputs in [0, 1]."""
    return nn.Sequential(Normalize(mean, std), model)


@dataclass(frozen=True)
class ModelCheck:
    """What one batch said of a model: its class count, and whether it is randomised."""

    num_classes: int
    randomised: bool
    logit_change: float          # largest |logit difference| between two passes over the same batch
    constant: bool = False       # one class predicted for the whole batch (a constant classifier)


def check_model(model: nn.Module, x: torch.Tensor, num_classes: int) -> ModelCheck:
    """Run ``model`` twice on the batch ``x`` (data in [0, 1]) before any attack; raise a
    ParameterError naming the problem when its output is not ``[batch, num_classes]`` finite logits."""
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise ParameterError("data", f"[{float(x.min()):.3g}, {float(x.max()):.3g}]",
                             "inputs must lie in [0, 1]: put the normalisation inside the model (--normalize)")
    with torch.no_grad():
        try:
            out, again = model(x), model(x)
        except Exception as err:  # the user's model: report whatever it raised
            raise ParameterError("model", type(model).__name__,
                                 f"fails on a batch of shape {list(x.shape)}: {type(err).__name__}: {err}") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape != (len(x), num_classes):
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ParameterError("model output", shape, f"must be logits of shape [{len(x)}, {num_classes}] "
                             f"(the batch, the data set's classes)")
    if not torch.isfinite(out).all():
        raise ParameterError("model output", "NaN or inf", "the logits must be finite on clean test inputs")
    if len(x) > 1 and out.min() >= 0 and out.max() <= 1 and torch.allclose(out.sum(1), torch.ones(len(x)).to(out)):
        raise ParameterError("model output", "probabilities (each row in [0, 1], summing to 1)",
                             "the attacks need logits: drop the final softmax")
    change = float((out - again).abs().max())
    pred = out.argmax(1)
    return ModelCheck(num_classes, change > 1e-5 * max(1.0, float(out.abs().max())), change,
                      len(x) > 1 and bool((pred == pred[0]).all()))
