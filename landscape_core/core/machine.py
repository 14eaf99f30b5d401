"""What can change the last digits of a number: recorded with every stored run and every notebook run.

The same code and seed give the same bits only on the same torch, device, kernels and thread count: a
CPU run trained with 1 torch thread differs from one trained with 2 in the 2nd-3rd printed digit after
a few thousand updates, and two CPU models differ as well (AVX-512 vs AVX2 kernels, oneDNN's ISA).
:func:`numerics` is that record; :func:`signature` is the part of it whose difference explains differing
digits; :func:`mixed` says in words when a set of records is not from one signature.
"""
from __future__ import annotations

import functools
import os
import platform
from typing import Iterable, Mapping

import torch

__all__ = ["numerics", "signature", "describe", "mixed", "cpu_model"]

# Fields whose difference can move last digits (precision is part of a run's spec, so it is recorded
# but two precisions are two different computations, not a mixed provenance).
SIGNATURE = ("torch", "device_name", "cpu_capability", "onednn_max_isa", "threads")


@functools.lru_cache(maxsize=None)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def numerics(device: torch.device | str = "cpu", precision: str | None = None) -> dict:
    """The record of what ran: torch version, device and its name, precision, torch threads, CPU model,
    the ATen CPU capability in use (``ATEN_CPU_CAPABILITY`` lowers it) and oneDNN's ISA cap."""
    device = torch.device(device)
    name = cpu_model()
    if device.type == "cuda" and torch.cuda.is_available():
        name = torch.cuda.get_device_name(device)
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:        # older torch
        capability = "unknown"
    record = {"torch": torch.__version__, "device": device.type, "device_name": name,
              "threads": torch.get_num_threads(), "cpu": cpu_model(), "cpu_capability": capability,
              "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "default")}
    if precision is not None:
        record["precision"] = precision
    return record


def signature(record: Mapping | None) -> tuple:
    """The fields of a :func:`numerics` record that can move digits (``()`` for no record)."""
    if not record:
        return ()
    return tuple((k, record.get(k)) for k in SIGNATURE)


def describe(record: Mapping | None) -> str:
    """``"torch 2.14.1, cpu AMD EPYC (AVX512), 2 threads"``; ``"no record (older run)"``."""
    if not record:
        return "no record (written before provenance was recorded)"
    isa = "" if record.get("onednn_max_isa", "default") == "default" else f", oneDNN ISA {record['onednn_max_isa']}"
    return (f"torch {record.get('torch')}, {record.get('device')} {record.get('device_name')} "
            f"({record.get('cpu_capability')}{isa}), {record.get('threads')} thread{'' if record.get('threads') == 1 else 's'}")


def mixed(records: Iterable[tuple[str, Mapping | None]]) -> str:
    """``""`` when every ``(what, record)`` has one signature; else a line per signature with what has it."""
    groups: dict[tuple, list[str]] = {}
    first: dict[tuple, Mapping | None] = {}
    for what, record in records:
        key = signature(record)
        groups.setdefault(key, []).append(what)
        first.setdefault(key, record)
    if len(groups) <= 1:
        return ""

    def names(items: list[str]) -> str:
        return ", ".join(items[:4]) + (f" and {len(items) - 4} more" if len(items) > 4 else "")
    return "\n".join(f"  {len(v)} from {describe(first[k])}: {names(v)}" for k, v in groups.items())
