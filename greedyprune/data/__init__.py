"""Datasets: Fashion-MNIST (Debian package / $GREEDYPRUNE_DATA / torchvision), ImageFolder, synthetic.

``get_dataset(spec, split)`` is the entry point; ``registered_datasets`` maps a spec name to its factory.
"""

from . import fashion_mnist, imagefolder, synthetic  # noqa: F401  (register the datasets)
from .loaders import calibration_batches, make_loader, subset
from .registry import get_dataset, num_classes, register, registered_datasets
from .tensor import TensorImageDataset

__all__ = ["TensorImageDataset", "calibration_batches", "get_dataset", "make_loader", "num_classes", "register",
           "registered_datasets", "subset"]
