"""The optimisers of the study (one factory for model training and for Bezier-curve training)."""
from __future__ import annotations

from typing import Iterable

import torch

from ..core.spec import ParameterError

__all__ = ["OPTIMIZERS", "make_optimizer"]

OPTIMIZERS = ("adam", "sgd")


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam (``momentum`` unused) or SGD with momentum, both with L2 ``weight_decay``."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ParameterError("optimizer", name, f"must be one of {list(OPTIMIZERS)}")
