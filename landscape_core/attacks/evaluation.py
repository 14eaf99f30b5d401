"""The one evaluation loop: a model (eval mode) over a data set in fixed batches, clean and under attack.

:func:`sweep` runs an attack on consecutive batches of ``batch_size`` (consuming ``generator`` in
order; Square's result depends on the batch size, so keep it fixed across compared runs), on the
model's device, and returns a :class:`SetEval`: the per-example mistakes (CPU bool masks), the mean
cross-entropy and error clean and under attack, and optionally the adversarial inputs.  Everything
that evaluates a model in the study goes through it: the Table 1 suite, landscape scans, the Hessian's
fixed adversarial set, the perturbation similarity, paths between minima and the stall check.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..core.batching import batch_slices
from ..core.modes import model_mode
from ..core.spec import ParameterError
from .base import Attack, AttackSpec, make_attack

__all__ = ["SetEval", "sweep", "adversarial_examples", "model_device"]

AttackLike = Attack | AttackSpec | Callable[..., Tensor]
"""An :class:`Attack`, its spec, or any ``attack(model, x, y, generator=...) -> x_adv``."""


@dataclass(frozen=True, eq=False)
class SetEval:
    """One pass over a set.  Masks are CPU bool tensors; losses are mean cross-entropies.

    Without an attack the adversarial numbers equal the clean ones."""

    n: int
    clean_loss: float
    clean_wrong: Tensor
    adv_loss: float
    adv_wrong: Tensor
    clean_pred: Tensor
    x_adv: Tensor | None = None          # kept only when asked (on x's device)

    @property
    def clean_error(self) -> float:
        return int(self.clean_wrong.sum()) / self.n

    @property
    def adv_error(self) -> float:
        return int(self.adv_wrong.sum()) / self.n


def model_device(model: nn.Module, default: torch.device | str = "cpu") -> torch.device:
    """The device of the model's first parameter or buffer (``default`` for a functional model)."""
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device(default)


def sweep(model: nn.Module, x: Tensor, y: Tensor, attack: AttackLike | None = None, *, batch_size: int = 100,
          generator: torch.Generator | None = None, keep_adv: bool = False, progress: bool = False) -> SetEval:
    """Clean and adversarial loss / mistakes of ``model`` (eval mode, restored after) on ``(x, y)``."""
    if x.shape[0] != y.shape[0]:
        raise ParameterError("y", tuple(y.shape), f"must hold one label per input ({x.shape[0]})")
    if isinstance(attack, AttackSpec):
        attack = make_attack(attack)
    device = model_device(model, x.device)
    n = x.shape[0]
    sums = [0.0, 0.0]
    wrong: tuple[list, list] = ([], [])
    preds, advs = [], []
    with model_mode(model, "eval"):
        for s in tqdm(list(batch_slices(n, batch_size)), disable=not progress, desc="evaluate"):
            xb, yb = x[s].to(device), y[s].to(device)
            xa = None if attack is None else attack(model, xb, yb, generator=generator).detach()
            with torch.no_grad():
                for i, inputs in enumerate((xb, xa)):
                    if inputs is None:
                        continue
                    logits = model(inputs)
                    sums[i] += F.cross_entropy(logits, yb, reduction="sum").item()
                    wrong[i].append((logits.argmax(1) != yb).cpu())
                    if i == 0:
                        preds.append(logits.argmax(1).cpu())
            if keep_adv:
                advs.append((xb if xa is None else xa).to(x.device))
    empty = torch.zeros(0, dtype=torch.bool)
    clean_wrong = torch.cat(wrong[0]) if wrong[0] else empty
    adv_wrong = torch.cat(wrong[1]) if wrong[1] else clean_wrong
    adv_sum = sums[1] if attack is not None else sums[0]
    x_adv = (torch.cat(advs) if advs else x.clone()) if keep_adv else None
    return SetEval(n, sums[0] / max(n, 1), clean_wrong, adv_sum / max(n, 1), adv_wrong,
                   torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long), x_adv)


def adversarial_examples(model: nn.Module, x: Tensor, y: Tensor, attack: AttackLike | None,
                         generator: torch.Generator | None = None, batch_size: int = 500) -> Tensor:
    """Adversarial examples for the whole set (``attack=None`` returns ``x`` itself)."""
    if attack is None:
        return x
    return sweep(model, x, y, attack, batch_size=batch_size, generator=generator, keep_adv=True).x_adv
