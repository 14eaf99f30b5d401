"""Seeded randomness: every random draw of the study comes from a generator made here or passed in.

* :func:`purpose_generator` - an independent CPU generator per ``(seed, purpose)``, so one draw never
  shifts another (data splits, subsets, attack columns);
* :func:`draw_seed` / :func:`seeded_generator` - common random numbers: draw one seed, then give every
  grid point a fresh generator seeded with it;
* :func:`preserve_rng` - save and restore the global CPU and CUDA RNG states around code that reseeds
  them (the AutoAttack package does).
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from typing import Iterator

import torch

__all__ = ["purpose_generator", "draw_seed", "seeded_generator", "preserve_rng"]

_SEED_HIGH = 2 ** 62


def purpose_generator(seed: int, purpose: str) -> torch.Generator:
    """An independent CPU generator per (seed, purpose), so one draw never shifts another."""
    digest = hashlib.sha256(f"{seed}/{purpose}".encode()).hexdigest()
    return torch.Generator().manual_seed(int(digest[:15], 16))


def draw_seed(generator: torch.Generator | None) -> int:
    """A seed drawn from ``generator`` (a fixed default generator when None: deterministic)."""
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    return int(torch.randint(0, _SEED_HIGH, (1,), generator=generator, device=generator.device))


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A new generator on ``device`` (where the attack draws its random start) seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(seed)


@contextmanager
def preserve_rng() -> Iterator[None]:
    """Save the global CPU (and every CUDA device's) RNG state and restore it on exit."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
