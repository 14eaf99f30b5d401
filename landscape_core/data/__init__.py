"""Floor 2, data: the data sets as in-memory tensors, seeded splits and subsets, mini-batches and
CIFAR augmentation (:mod:`.datasets`)."""
from .datasets import (DATASETS, DatasetInfo, DatasetSpec, DatasetUnavailable, Split, augment_cifar, batches,
                       data_root, dataset_info, load_data)

__all__ = ["DATASETS", "DatasetInfo", "DatasetSpec", "DatasetUnavailable", "Split", "augment_cifar", "batches",
           "dataset_info", "data_root", "load_data"]
