"""Model constructors (torchvision archs adapted to 28x28 grey, LeNet-300-100, a small CNN, every torchvision
classification arch, ``timm:NAME`` when timm is installed), weight loading, and the cache of models trained
once on this machine.

``build_model(name, num_classes)`` is the entry point; ``registered_models`` maps names to entries.
"""

from . import fmnist, imagenet, timm_models  # noqa: F401  (register the models and the timm: prefix)
from .cache import Recipe, TrainedModel, cached_model_path, default_recipe, has_recipe, trained_model
from .registry import (ModelEntry, build_model, input_shape, model_entry, model_spec, register, registered_models,
                       registered_prefixes)
from .weights import load_weights

__all__ = ["ModelEntry", "Recipe", "TrainedModel", "build_model", "cached_model_path", "default_recipe", "has_recipe",
           "input_shape", "load_weights", "model_entry", "model_spec", "register", "registered_models",
           "registered_prefixes", "trained_model"]
