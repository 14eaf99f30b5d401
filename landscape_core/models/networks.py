"""The paper's networks (Liu et al. 2020, Sec. 3 and App. B): LeNet, VGG16, ResNet18 at width w, and a linear model.

Widths follow the paper: LeNet has conv layers of 2w and 4w channels and a hidden layer of 64w units
(w = 16 on MNIST); VGG16 (with BatchNorm) and ResNet18 have 4w ... 32w channels (w = 8 on CIFAR10).

Module and parameter names mirror the authors' release (``util/models.py`` of
liuchen11/AdversaryLossLandscape: ``MNIST_LeNet``, ``CIFAR10_VGG``, ``CIFAR10_ResNet``) layer for layer
(kernel sizes, padding, pooling, BatchNorm placement, bias flags), so their published ``state_dict``
checkpoints load here with ``load_state_dict(strict=True)``.  Differences that leave the ``state_dict``
unchanged:

* the input normalisation is a submodule ``normalize`` whose mean/std are *non-persistent* buffers (the
  original applies a module-level ``DataNormalizeLayer(bias=0, scale=1)``, i.e. the identity, that is
  not part of the model's state); pixels enter in ``[0, 1]``;
* the number of input channels, the input size and the number of classes follow ``in_shape`` and
  ``num_classes`` (the originals hard-code MNIST or CIFAR10 shapes and 10 classes);
* every ReLU is its own ``nn.ReLU`` module (as in the original), listed in forward order by
  :func:`relu_layers` so that forward hooks can record activations (dead-ReLU counts, paper App. C.2.4).

The linear model (paper Sec. 3.1) is ``fc = nn.Linear(C*H*W, num_classes, bias=False)`` on the
flattened input: its only parameter is ``fc.weight``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..core.spec import ParameterError, Spec, param

__all__ = ["ARCHS", "ModelSpec", "Normalize", "build_model", "build_model_from_spec", "relu_layers"]

ARCHS = ("lenet", "vgg16", "resnet18", "linear")
IMAGE_ARCHS = ("lenet", "vgg16", "resnet18")   # the paper's networks (the linear model is Sec 3's)


class InputInfo(Protocol):
    """What a model needs to know of its data set (:class:`landscape_core.data.DatasetInfo` has it)."""
    in_shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class ModelSpec(Spec):
    arch: str = param("lenet", choices=ARCHS, doc="network architecture")
    width: int = param(16, ge=1, doc="width factor w (LeNet 2w/4w/64w; VGG16 and ResNet18 4w..32w)")


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; the buffers are not saved in the state_dict."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class LeNet(nn.Module):
    """MNIST_LeNet: conv5x5(2w) - ReLU - maxpool2 - conv5x5(4w) - ReLU - maxpool2 - fc(64w) - ReLU - fc."""

    def __init__(self, width: int, in_shape: tuple[int, int, int], num_classes: int, normalize: nn.Module):
        super().__init__()
        c, h, w = in_shape
        self.normalize = normalize
        self.conv1 = nn.Conv2d(c, 2 * width, 5, 1, 2)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(2 * width, 4 * width, 5, 1, 2)
        self.relu2 = nn.ReLU()
        self.fc1 = nn.Linear((h // 4) * (w // 4) * 4 * width, 64 * width)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(64 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.normalize(x)
        x = F.max_pool2d(self.relu1(self.conv1(x)), 2)
        x = F.max_pool2d(self.relu2(self.conv2(x)), 2)
        return self.fc2(self.relu3(self.fc1(x.flatten(1))))


VGG16_LAYOUT = (4, 4, "M", 8, 8, "M", 16, 16, 16, "M", 32, 32, 32, "M", 32, 32, 32, "M")


class VGG16(nn.Module):
    """CIFAR10_VGG: 13 x (conv3x3 - BatchNorm - ReLU) with 5 max-pools, then a linear classifier."""

    def __init__(self, width: int, in_shape: tuple[int, int, int], num_classes: int, normalize: nn.Module):
        super().__init__()
        self.normalize = normalize
        layers: list[nn.Module] = []
        in_planes = in_shape[0]
        for item in VGG16_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                out_planes = item * width
                layers += [nn.Conv2d(in_planes, out_planes, kernel_size=3, padding=1),
                           nn.BatchNorm2d(out_planes), nn.ReLU()]
                in_planes = out_planes
        layers.append(nn.AvgPool2d(kernel_size=1, stride=1))  # the identity, kept as in the original
        self.feature_extractor = nn.Sequential(*layers)
        self.classifier = nn.Linear(32 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.feature_extractor(self.normalize(x)).flatten(1))


class ResNetBlock(nn.Module):
    """ResNet_Block: conv3x3 - BN - ReLU - conv3x3 - BN, plus a (1x1 conv - BN) shortcut when shapes change."""

    def __init__(self, in_planes: int, out_planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_planes))

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR10_ResNet([2, 2, 2, 2]): conv3x3 - BN - ReLU, 4 stages of 2 blocks, 4x4 average pool, classifier."""

    def __init__(self, width: int, in_shape: tuple[int, int, int], num_classes: int, normalize: nn.Module):
        super().__init__()
        self.normalize = normalize
        self.conv1 = nn.Conv2d(in_shape[0], 4 * width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4 * width)
        self.relu1 = nn.ReLU()
        planes = 4 * width
        for i, (out_planes, stride) in enumerate(((4 * width, 1), (8 * width, 2), (16 * width, 2),
                                                  (32 * width, 2)), start=1):
            setattr(self, f"layer{i}", nn.Sequential(ResNetBlock(planes, out_planes, stride),
                                                     ResNetBlock(out_planes, out_planes, 1)))
            planes = out_planes
        self.classifier = nn.Linear(32 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu1(self.bn1(self.conv1(self.normalize(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.classifier(F.avg_pool2d(x, 4).flatten(1))


class LinearModel(nn.Module):
    """``fc(flatten(x))`` without bias: the linear classifier of the paper's Sec. 3.1 analysis."""

    def __init__(self, in_shape: tuple[int, int, int], num_classes: int, normalize: nn.Module):
        super().__init__()
        self.normalize = normalize
        c, h, w = in_shape
        self.fc = nn.Linear(c * h * w, num_classes, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.normalize(x).flatten(1))


def _check_input_size(arch: str, in_shape: tuple[int, int, int]) -> None:
    """The original heads assume a fixed final feature-map size; refuse inputs that would not give it."""
    _, h, w = in_shape
    if arch == "lenet":
        ok, need = h >= 4 and w >= 4, "at least 4x4 pixels"
    elif arch == "vgg16":  # five 2x2 max-pools must leave 1x1
        ok, need = h // 32 == 1 and w // 32 == 1, "32 to 63 pixels a side (five max-pools down to 1x1)"
    elif arch == "resnet18":  # three stride-2 convolutions, then a 4x4 average pool must leave 1x1
        def final(s: int) -> int:
            for _ in range(3):
                s = (s - 1) // 2 + 1
            return s // 4
        ok, need = final(h) == 1 and final(w) == 1, "25 to 56 pixels a side (a 4x4 average pool down to 1x1)"
    else:
        ok, need = True, ""
    if not ok:
        raise ParameterError("in_shape", tuple(in_shape), f"{arch} needs inputs of {need}")


def build_model(arch: str, width: int, in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
                mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> nn.Module:
    """A freshly initialised network (PyTorch default init, as the original; draws from the global RNG).

    ``mean`` / ``std`` (per channel, or None for no normalisation) become the model's first layer.
    """
    if arch not in ARCHS:
        raise ParameterError("arch", arch, f"must be one of {list(ARCHS)}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ParameterError("width", width, "must be an integer >= 1")
    in_shape = tuple(int(s) for s in in_shape)
    if len(in_shape) != 3:
        raise ParameterError("in_shape", in_shape, "must be (channels, height, width)")
    _check_input_size(arch, in_shape)
    if (mean is None) != (std is None):
        raise ParameterError("mean/std", (mean, std), "give both or neither")
    normalize = nn.Identity() if mean is None else Normalize(mean, std)
    if arch == "linear":
        return LinearModel(in_shape, num_classes, normalize)
    return _NETWORKS[arch](width, in_shape, num_classes, normalize)


_NETWORKS = {"lenet": LeNet, "vgg16": VGG16, "resnet18": ResNet18}


def build_model_from_spec(spec: ModelSpec, info: InputInfo) -> nn.Module:
    return build_model(spec.arch, spec.width, info.in_shape, info.num_classes, info.mean, info.std)


def relu_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's ``nn.ReLU`` modules with their names, in forward order (registration order here)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.ReLU)]
