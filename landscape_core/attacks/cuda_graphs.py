"""CUDA graphs for the PGD step (:func:`.steps.ascent_step` on the cross-entropy).

On a GPU, small models (the paper's MNIST LeNet) are bound by kernel-launch overhead, not by the GPU:
one PGD step of LeNet-16 at batch 100 launches ~40 kernels that each run for microseconds.  A step
captured once as a CUDA graph is replayed with one launch.  The graph holds the model's parameter
and buffer storage, so in-place optimiser updates are seen by later replays; it is captured only
for a model in eval mode whose (model, shape, threat model, storage) was seen before (a model built
for one call, like a point on a Bezier curve, stays eager).  ``LANDSCAPE_CUDA_GRAPHS=0`` turns it off.
"""
from __future__ import annotations

import os
import weakref

import torch
from torch import nn

from .steps import ascent_step, cross_entropy, step_for

_GRAPHS: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()
_MAX_GRAPHS_PER_MODEL = 8


def cuda_graphs_enabled() -> bool:
    return os.environ.get("LANDSCAPE_CUDA_GRAPHS", "1") != "0"


class _GraphedStep:
    """One PGD step (input gradient, ascent, projection, box) captured as a CUDA graph."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm: str, clamp):
        self.model = model                                          # only while capturing
        self.x, self.y, self.x_adv = x.detach().clone(), y.detach().clone(), x.detach().clone()
        self.eps = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        self.step = torch.zeros_like(self.eps)
        self.stepper = step_for(norm)(self.x, self.eps, self.step, clamp)     # bound to the static buffers
        side = torch.cuda.Stream(device=x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):       # warm-up off the capture stream, as CUDA graphs require
            for _ in range(3):
                self._step()
        torch.cuda.current_stream(x.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._step()
        self.model = None   # the cache is keyed weakly by the model: hold no reference to it

    def _step(self) -> None:
        new = ascent_step(cross_entropy(self.model, self.y), self.x_adv, self.stepper)
        with torch.no_grad():
            self.x_adv.copy_(new)

    def run(self, x, y, start, eps_v, step_v, steps: int) -> torch.Tensor:
        self.x.copy_(x)
        self.y.copy_(y)
        self.eps.copy_(eps_v)
        self.step.copy_(step_v)
        self.x_adv.copy_(start)
        for _ in range(steps):
            self.graph.replay()
        return self.x_adv.clone()


def _graph_key(model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm: str, clamp) -> tuple:
    storage = tuple(t.data_ptr() for t in (*model.parameters(), *model.buffers()))
    return (tuple(x.shape), x.dtype, str(x.device), tuple(y.shape), norm, clamp, storage)


def graphed_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm: str, clamp,
                  steps: int) -> _GraphedStep | None:
    """The captured step for this call, or None (eager): CPU, disabled, a module in train mode, no
    registered parameters, under autocast, fewer than 2 steps, or the first call with this key (capture costs about
    four eager steps)."""
    if (not x.is_cuda or steps < 2 or not cuda_graphs_enabled() or torch.is_autocast_enabled("cuda")
            or any(m.training for m in model.modules())):
        return None
    if next(model.parameters(), None) is None:   # functional models (a curve's PointModel): their
        return None                              # tensors are invisible to the storage key
    try:
        cache = _GRAPHS.setdefault(model, {})
    except TypeError:          # a model that cannot be weakly referenced: stay eager
        return None
    key = _graph_key(model, x, y, norm, clamp)
    entry = cache.get(key)
    if entry is None:          # first sighting: remember it, run eagerly
        if len(cache) >= _MAX_GRAPHS_PER_MODEL:
            cache.pop(next(iter(cache)))
        cache[key] = "seen"
        return None
    if entry == "seen":
        cache[key] = entry = _GraphedStep(model, x, y, norm, clamp)
    return entry
