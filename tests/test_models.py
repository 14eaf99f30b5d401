"""Tests of landscape_core.models: shapes, parameter names of the original release, init determinism,
ReLU layers in forward order, and strict state_dict round trips."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from landscape_core.core.params import num_parameters
from landscape_core.data import dataset_info
from landscape_core.core.io import load_checkpoint, save_checkpoint
from landscape_core.models import (ARCHS, ModelSpec, build_model, build_model_from_spec,
                                   relu_layers)
from landscape_core.core.spec import ParameterError

MNIST, CIFAR = (1, 28, 28), (3, 32, 32)


def _seeded(seed: int, *args, **kwargs) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build_model(*args, **kwargs)


@pytest.mark.parametrize("arch, in_shape", [("lenet", MNIST), ("lenet", CIFAR), ("resnet18", MNIST),
                                            ("resnet18", CIFAR), ("vgg16", CIFAR), ("linear", MNIST),
                                            ("linear", CIFAR)])
def test_output_shapes(arch, in_shape):
    model = build_model(arch, 1, in_shape, num_classes=7)
    out = model(torch.rand(3, *in_shape))
    assert out.shape == (3, 7)
    model.eval()
    assert model(torch.rand(1, *in_shape)).shape == (1, 7)


def test_vgg16_refuses_mnist_size_and_spec_validates():
    with pytest.raises(ParameterError, match="in_shape"):
        build_model("vgg16", 1, MNIST)
    with pytest.raises(ParameterError, match="arch"):
        ModelSpec(arch="alexnet")
    with pytest.raises(ParameterError, match="width"):
        ModelSpec(width=0)


# ---------------------------------------------------------------------------------------------------
# names and shapes of the original release (liuchen11/AdversaryLossLandscape, util/models.py)

def _shapes(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def test_lenet16_state_dict_matches_original_MNIST_LeNet():
    expected = [("conv1.weight", (32, 1, 5, 5)), ("conv1.bias", (32,)),
                ("conv2.weight", (64, 32, 5, 5)), ("conv2.bias", (64,)),
                ("fc1.weight", (1024, 3136)), ("fc1.bias", (1024,)),
                ("fc2.weight", (10, 1024)), ("fc2.bias", (10,))]
    info = dataset_info("mnist")
    assert _shapes(build_model_from_spec(ModelSpec(arch="lenet", width=16), info)) == expected


def _bn(prefix: str, c: int) -> list[tuple[str, tuple[int, ...]]]:
    return [(f"{prefix}.weight", (c,)), (f"{prefix}.bias", (c,)), (f"{prefix}.running_mean", (c,)),
            (f"{prefix}.running_var", (c,)), (f"{prefix}.num_batches_tracked", ())]


def test_vgg16_state_dict_matches_original_CIFAR10_VGG():
    w = 8  # conv at these Sequential indices (BN at +1, ReLU at +2; max-pools at 6, 13, 23, 33, 43)
    convs = [(0, 4), (3, 4), (7, 8), (10, 8), (14, 16), (17, 16), (20, 16), (24, 32), (27, 32), (30, 32),
             (34, 32), (37, 32), (40, 32)]
    expected, c_in = [], 3
    for idx, c in convs:
        expected += [(f"feature_extractor.{idx}.weight", (c * w, c_in, 3, 3)),
                     (f"feature_extractor.{idx}.bias", (c * w,))] + _bn(f"feature_extractor.{idx + 1}", c * w)
        c_in = c * w
    expected += [("classifier.weight", (10, 256)), ("classifier.bias", (10,))]
    model = build_model("vgg16", w, CIFAR, mean=(0.0,) * 3, std=(1.0,) * 3)
    assert _shapes(model) == expected
    assert isinstance(model.feature_extractor[44], nn.AvgPool2d) and len(model.feature_extractor) == 45


def test_resnet18_state_dict_matches_original_CIFAR10_ResNet():
    sd = dict(_shapes(build_model("resnet18", 8, CIFAR)))
    assert len(sd) == 6 + 8 * 12 + 3 * 6 + 2  # stem, 8 blocks, 3 projection shortcuts, classifier
    spot = [("conv1.weight", (32, 3, 3, 3)), ("bn1.num_batches_tracked", ()),
            ("layer1.0.conv1.weight", (32, 32, 3, 3)), ("layer1.1.bn2.running_var", (32,)),
            ("layer2.0.conv1.weight", (64, 32, 3, 3)), ("layer2.0.shortcut.0.weight", (64, 32, 1, 1)),
            ("layer2.0.shortcut.1.running_mean", (64,)), ("layer3.0.shortcut.1.weight", (128,)),
            ("layer4.1.conv2.weight", (256, 256, 3, 3)), ("layer4.1.bn2.bias", (256,)),
            ("classifier.weight", (10, 256)), ("classifier.bias", (10,))]
    for key, shape in spot:
        assert sd[key] == shape, key
    assert not any(k.startswith("layer1.0.shortcut") or k.startswith("layer2.1.shortcut") for k in sd)
    assert not any(k.endswith("conv1.bias") or k.endswith("conv2.bias") for k in sd)  # bias-free convs


def test_linear_model_and_parameter_counts():
    linear = build_model("linear", 1, MNIST)
    assert _shapes(linear) == [("fc.weight", (10, 784))]
    x = torch.rand(4, *MNIST)
    assert torch.allclose(linear(x), x.flatten(1) @ linear.fc.weight.T)
    # LeNet width 4: conv 8, 16 channels, fc 256 units (closed form)
    lenet = build_model("lenet", 4, MNIST)
    assert sum(p.numel() for p in lenet.parameters()) == (8 * 25 + 8) + (16 * 8 * 25 + 16) + (256 * 784 + 256) + (256 * 10 + 10)
    for p in lenet.fc2.parameters():
        p.requires_grad_(False)
    assert num_parameters(lenet) == sum(p.numel() for p in lenet.parameters()) - (256 * 10 + 10)


def test_normalisation_inside_model_without_state():
    mean, std = (0.5, 0.25, 0.125), (0.5, 2.0, 4.0)
    plain = _seeded(0, "lenet", 2, CIFAR)
    normed = _seeded(0, "lenet", 2, CIFAR, mean=mean, std=std)
    assert list(plain.state_dict()) == list(normed.state_dict())
    x = torch.rand(5, *CIFAR)
    z = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(normed(x), plain(z), atol=1e-6)
    identity = _seeded(0, "lenet", 2, CIFAR, mean=(0.0,) * 3, std=(1.0,) * 3)  # the original's (bias 0, scale 1)
    assert torch.equal(identity(x), plain(x))


# ---------------------------------------------------------------------------------------------------
# init determinism, ReLU layers, strict loading

@pytest.mark.parametrize("arch", ARCHS)
def test_init_is_deterministic_under_seed(arch):
    shape = CIFAR if arch == "vgg16" else MNIST
    a, b, c = _seeded(0, arch, 2, shape), _seeded(0, arch, 2, shape), _seeded(1, arch, 2, shape)
    for (k, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


@pytest.mark.parametrize("arch, count", [("lenet", 3), ("vgg16", 13), ("resnet18", 17), ("linear", 0)])
def test_relu_layers_are_distinct_and_in_forward_order(arch, count):
    model = build_model(arch, 1, CIFAR)
    layers = relu_layers(model)
    assert len(layers) == count and len({id(m) for _, m in layers}) == count
    calls = []
    for name, module in layers:
        module.register_forward_hook(lambda m, i, o, name=name: calls.append(name))
    model(torch.rand(2, *CIFAR))
    assert calls == [name for name, _ in layers]  # each called once, in the listed order
    if arch == "lenet":
        assert [n for n, _ in layers] == ["relu1", "relu2", "relu3"]
    if arch == "resnet18":
        assert [n for n, _ in layers][:3] == ["relu1", "layer1.0.relu1", "layer1.0.relu2"]


@pytest.mark.parametrize("arch", ARCHS)
def test_strict_state_dict_round_trip(arch, tmp_path):
    shape = CIFAR if arch in ("vgg16", "resnet18") else MNIST
    source = _seeded(0, arch, 2, shape)
    source.train()
    source(torch.rand(8, *shape))  # moves BatchNorm running statistics away from their init
    save_checkpoint(tmp_path / "model.pt", source.state_dict())
    target = _seeded(1, arch, 2, shape)
    result = target.load_state_dict(load_checkpoint(tmp_path / "model.pt"), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    source.eval(), target.eval()
    x = torch.rand(3, *shape)
    assert torch.equal(source(x), target(x))
