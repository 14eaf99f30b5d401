"""Numerical precision of training: fp32, or bfloat16 autocast where the hardware has bf16 units.

bf16 autocast runs convolutions and matrix products in bfloat16 (weights, optimiser state and the
attack's input iterates stay fp32); on a CPU with AMX-BF16 / AVX512-BF16 (Sapphire Rapids and later
Xeons) and on Ampere-or-later GPUs it is 2-3x faster for the study's small networks (``make bench``,
section 5).  Where the units are missing, bf16 is emulated and slower than fp32, so ``auto`` picks
fp32 there.  The precision that ran is part of a run's spec (its digest) and of its ``result.json``.

``channels_last`` memory format is applied with bf16 to 4-D inputs on the CPU, where oneDNN's bf16
convolutions want it (measured in the same bench section).
"""
from __future__ import annotations

import contextlib
import functools

import torch

PRECISIONS = ("fp32", "bf16")


@functools.lru_cache(maxsize=None)
def bf16_fast(device_type: str = "cpu") -> bool:
    """Whether ``device_type`` has native bf16 arithmetic (not emulation)."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device_type != "cpu":
        return False
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):      # a torch build without the probe
        return False


def resolve_precision(precision: str, device_type: str | None = None) -> str:
    """``auto`` becomes ``bf16`` where the device (default: CUDA if present, else the CPU) has bf16
    units and ``fp32`` otherwise; ``fp32`` and ``bf16`` are returned unchanged."""
    if precision != "auto":
        return precision
    if device_type is None:
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    return "bf16" if bf16_fast(device_type) else "fp32"


def autocast(precision: str, device: torch.device | str):
    """The autocast context of ``precision`` on ``device`` (a no-op context for fp32)."""
    device = torch.device(device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def memory_format(precision: str, device: torch.device | str, ndim: int) -> torch.memory_format:
    """channels_last for bf16 image batches on the CPU, the default layout otherwise."""
    if precision == "bf16" and torch.device(device).type == "cpu" and ndim == 4:
        return torch.channels_last
    return torch.contiguous_format
