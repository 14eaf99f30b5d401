"""The checkpointed epoch loop shared by model and curve training, and the one HVP adapter of the solvers."""
import numpy as np
import pytest
import torch
from torch import nn

from landscape_core.analysis.hessian import hvp, hvp_matvec
from landscape_core.analysis.spectrum import HessianSpectrum
from landscape_core.training import EpochTrainer, run_epochs


class Counter(EpochTrainer):
    """Sums its epoch numbers; stops (as a diverged run) at epoch ``stop_at``; logs every call."""

    def __init__(self, stop_at: int | None = None):
        self.total, self.stop_at, self.calls, self.finals = 0, stop_at, [], []

    def state(self):
        return {"total": self.total}

    def load(self, state):
        self.total = state["total"]
        self.calls.append(("load", state["epoch"]))

    def begin(self, start, end):
        self.calls.append(("begin", start, end))

    def epoch(self, epoch):
        self.calls.append(("epoch", epoch))
        if epoch == self.stop_at:
            return False
        self.total += epoch
        return True

    def close(self):
        self.calls.append(("close",))

    def final(self, ran):
        self.finals.append(ran)


def test_a_killed_run_resumes_from_its_last_epoch_and_finishes_once(tmp_path):
    path = tmp_path / "last.pt"
    first = Counter()
    ran = run_epochs(first, 4, path, stop_after=2)
    assert (ran.start, ran.done, ran.stopped, ran.finished) == (0, 2, False, False) and not first.finals
    assert torch.load(path, weights_only=True) == {"total": 1, "epoch": 2}
    second = Counter()
    ran = run_epochs(second, 4, path)
    assert second.calls == [("load", 2), ("begin", 2, 4), ("epoch", 2), ("epoch", 3), ("close",)]
    assert (ran.start, ran.done, ran.finished) == (2, 4, True) and second.total == 6 and second.finals == [ran]


def test_a_stopped_epoch_is_not_checkpointed_and_finishes_the_run(tmp_path):
    path = tmp_path / "last.pt"
    trainer = Counter(stop_at=1)
    ran = run_epochs(trainer, 3, path)
    assert (ran.done, ran.stopped, ran.finished) == (1, True, True) and trainer.finals == [ran]
    assert torch.load(path, weights_only=True)["epoch"] == 1


def test_a_damaged_checkpoint_is_deleted_and_the_run_starts_over(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"PK\x03\x04trunc")
    trainer = Counter()
    with pytest.warns(UserWarning, match="last.pt.*the curve restarts from its first epoch"):
        ran = run_epochs(trainer, 2, path, what="curve")
    assert ran.start == 0 and trainer.total == 1 and torch.load(path, weights_only=True)["epoch"] == 2


def test_without_a_path_nothing_is_written_and_close_runs_on_errors(tmp_path):
    class Failing(Counter):
        def epoch(self, epoch):
            raise RuntimeError("boom")

    trainer = Failing()
    with pytest.raises(RuntimeError, match="boom"):
        run_epochs(trainer, 2)
    assert trainer.calls == [("begin", 0, 2), ("close",)] and not list(tmp_path.iterdir())


def test_every_product_of_the_spectrum_is_counted_and_is_the_hvp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    x, y = torch.randn(30, 4), torch.randint(0, 3, (30,))
    v = np.random.default_rng(0).standard_normal(sum(p.numel() for p in model.parameters()))
    hv = hvp_matvec(model, x, y, batch_size=7)(v)
    assert hv.dtype == np.float64
    assert np.array_equal(hv, hvp(model, x, y, torch.from_numpy(v.astype(np.float32)), 7).double().numpy())
    h = HessianSpectrum(model, x, y, batch_size=7)
    trace, density = h.trace(samples=3), h.density(steps=4, runs=2)
    assert h.n_hvp == trace.n_hvp + density.n_hvp == 3 + 8
    assert not hasattr(h, "eigenvalues")
