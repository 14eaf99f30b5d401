"""Small data sets written in the real on-disk formats that ``torchvision.datasets`` reads.

The paper profile reads MNIST (IDX files) and CIFAR10 (pickled batches) through torchvision; no test and
no dry run may download them.  These writers make tiny stand-ins in exactly those formats, so that the
unmodified loaders (and their integrity checks) run on them:

* :func:`write_mnist` - ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (also FashionMNIST);
* :func:`write_cifar10` - ``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``; it
  returns the files' MD5 sums: torchvision checks each file against the real release's checksum, so a
  caller points ``torchvision.datasets.CIFAR10``'s ``train_list`` / ``test_list`` / ``meta`` at them
  (:func:`point_cifar10_checksums`).

Pixels are seeded uniform noise and labels cycle through the 10 classes: the files test that the study
runs, not what it finds.
"""
from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np

__all__ = ["write_idx", "write_mnist", "write_cifar10", "point_cifar10_checksums", "CIFAR10_LABELS"]

CIFAR10_LABELS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX (big-endian): magic 0x0000 08 <ndim>, one uint32 per dimension, then the uint8 data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, n_train: int = 30, n_test: int = 20, seed: int = 0, folder: str = "MNIST") -> dict:
    """MNIST-format IDX files under ``root/<folder>/raw`` (``folder="FashionMNIST"`` for that set);
    returns ``{"train": (images, labels), "t10k": (...)}`` as written."""
    rng = np.random.default_rng(seed)
    raw = Path(root) / folder / "raw"
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        arrays[prefix] = (images, labels)
    return arrays


def write_cifar10(root: Path, per_batch: int = 4, seed: int = 0) -> tuple[dict, dict[str, str]]:
    """``cifar-10-batches-py`` under ``root``: five training batches and a test batch of ``per_batch``
    images each (pickled dicts: ``data`` uint8 [n, 3072] channel-major, ``labels``), and ``batches.meta``.
    Returns ``({batch name: (data, labels)}, {file name: md5})``."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [(i * per_batch + k) % 10 for k in range(per_batch)]
        entry = {"batch_label": f"batch {i}", "labels": labels, "data": data,
                 "filenames": [f"img{k}.png" for k in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        arrays[name] = (data, labels)
    meta = {"label_names": list(CIFAR10_LABELS), "num_cases_per_batch": per_batch, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}
    return arrays, md5


def point_cifar10_checksums(md5: dict[str, str], cifar10=None) -> None:
    """Make ``torchvision.datasets.CIFAR10`` (or ``cifar10``, e.g. a test's monkeypatched class) check the
    files of :func:`write_cifar10` against their own MD5 sums instead of the real release's."""
    if cifar10 is None:
        import torchvision.datasets as tvd
        cifar10 = tvd.CIFAR10
    cifar10.train_list = [[f"data_batch_{k}", md5[f"data_batch_{k}"]] for k in range(1, 6)]
    cifar10.test_list = [["test_batch", md5["test_batch"]]]
    cifar10.meta = {"filename": "batches.meta", "key": "label_names", "md5": md5["batches.meta"]}
