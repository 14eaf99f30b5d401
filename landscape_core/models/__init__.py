"""Floor 2, models: the paper's networks at width w (LeNet, VGG16, ResNet18) and the linear model of
Sec 3, with the original release's parameter names (:mod:`.networks`)."""
from .networks import (ARCHS, IMAGE_ARCHS, ModelSpec, Normalize, build_model, build_model_from_spec,
                       relu_layers)

__all__ = ["ARCHS", "IMAGE_ARCHS", "ModelSpec", "Normalize", "build_model", "build_model_from_spec", "relu_layers"]
