"""Trace, spectral density and per-layer top eigenvalues against the exact spectrum of a small model."""
import numpy as np
import pytest
import torch
from torch import nn

from landscape_core.analysis.hessian import hvp
from landscape_core.analysis.spectrum import (HessianSpectrum, hutchinson_trace, lanczos, layer_blocks,
                                              layer_top_eigenvalues, rademacher, slq_density)
from landscape_core.core.spec import ParameterError


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3))   # 36 + 21 = 57 parameters
    x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    n = sum(p.numel() for p in model.parameters())
    H = np.stack([hvp(model, x, y, torch.eye(n)[i]).double().numpy() for i in range(n)])
    H = (H + H.T) / 2
    return model, x, y, H


def test_hessian_is_exact_and_has_both_signs(small):
    _, _, _, H = small
    ev = np.linalg.eigvalsh(H)
    assert ev.min() < 0 < ev.max()            # a real spectrum to estimate, negative values included


def test_hutchinson_trace_within_five_percent(small):
    _, _, _, H = small
    est = hutchinson_trace(lambda v: H @ v, len(H), 3000, torch.Generator().manual_seed(1))
    assert est.trace == pytest.approx(np.trace(H), rel=0.05)
    assert abs(est.trace - np.trace(H)) < 4 * est.stderr + 1e-12


def test_hutchinson_through_hvp_matches_the_matrix(small):
    model, x, y, H = small
    spec = HessianSpectrum(model, x, y, seed=3)
    est = spec.trace(samples=200)
    same = hutchinson_trace(lambda v: H @ v, len(H), 200, torch.Generator().manual_seed(3))
    assert est.trace == pytest.approx(same.trace, rel=1e-4)


def test_full_lanczos_recovers_the_spectrum(small):
    _, _, _, H = small
    d = slq_density(lambda v: H @ v, len(H), len(H), 1, torch.Generator().manual_seed(0))
    assert np.allclose(np.sort(d.nodes[0]), np.linalg.eigvalsh(H), atol=1e-6 * np.abs(H).max())
    assert d.weights[0].sum() == pytest.approx(1.0)


def test_slq_density_mass_support_and_first_moment(small):
    _, _, _, H = small
    ev = np.linalg.eigvalsh(H)
    d = slq_density(lambda v: H @ v, len(H), 12, 4, torch.Generator().manual_seed(0))
    lo, hi = d.support
    tol = 1e-8 * np.abs(ev).max()
    assert ev.min() - tol <= lo and hi <= ev.max() + tol       # Ritz values interlace the spectrum
    assert hi == pytest.approx(ev.max(), rel=1e-3)             # extreme eigenvalues converge first
    grid = d.grid(4000)
    assert np.trapezoid(d.density(grid), grid) == pytest.approx(1.0, abs=1e-3)
    # each run's weighted mean node is q^T H q, the Rayleigh quotient of its start vector
    gen = torch.Generator().manual_seed(0)          # the same draws as slq_density's start vectors
    for nodes, w in zip(d.nodes, d.weights):
        q = rademacher(len(H), gen)
        assert (w * nodes).sum() == pytest.approx(q @ H @ q / (q @ q), rel=1e-8)


def test_layer_top_eigenvalues_are_the_blocks(small):
    model, x, y, H = small
    blocks = layer_blocks(model)
    assert list(blocks) == ["0", "2"] and blocks["2"].stop == len(H)
    tops = layer_top_eigenvalues(lambda v: H @ v, blocks, len(H), 60, torch.Generator().manual_seed(0))
    for name, b in blocks.items():
        assert tops[name] == pytest.approx(np.linalg.eigvalsh(H[b, b]).max(), rel=1e-6)


def test_lanczos_rejects_zero_steps():
    with pytest.raises(ParameterError, match="steps"):
        lanczos(lambda v: v, np.ones(3), 0)
