"""Fixtures shared by several test packages."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def trained_cache(tmp_path_factory) -> Path:
    """A model cache holding a small CNN trained on Fashion-MNIST by its default recipe (seconds)."""
    from greedyprune.models import trained_model
    root = tmp_path_factory.mktemp("cache")
    before = os.environ.get("GREEDYPRUNE_CACHE")
    os.environ["GREEDYPRUNE_CACHE"] = str(root)
    try:
        trained_model("small-cnn", progress=False)
    finally:
        if before is None:
            del os.environ["GREEDYPRUNE_CACHE"]
        else:
            os.environ["GREEDYPRUNE_CACHE"] = before
    return root
