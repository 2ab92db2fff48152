"""trained_model: trains once, caches atomically, loads after, resumes a killed build exactly."""

import pytest
import torch

import greedyprune.models.cache as cache
from greedyprune.errors import UserError
from greedyprune.io import load_checkpoint
from greedyprune.models import Recipe, cached_model_path, default_recipe, trained_model
from greedyprune.paths import checkpoint_path
from greedyprune.train import TrainConfig

RECIPE = Recipe(dataset="random:1x28x28", train=TrainConfig(max_steps=6, batch_size=32, lr=0.05, checkpoint_every=1))


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_trains_once_then_loads_from_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(tmp_path))
    model, acc = trained_model("lenet300-100", RECIPE, progress=False)
    path = cached_model_path("lenet300-100", RECIPE)
    assert path.is_relative_to(tmp_path / "models" / "lenet300-100") and path.exists()
    assert not model.training and 0.0 <= acc <= 1.0
    assert not checkpoint_path(path.parent).exists()  # the training checkpoint is removed once model.pt exists
    saved = load_checkpoint(path)  # weights_only: plain tensors and containers
    assert saved["spec"] == {"name": "lenet300-100", "num_classes": 10}
    assert saved["recipe"]["train"]["max_steps"] == 6 and saved["recipe"]["dataset"] == "random:1x28x28"
    assert saved["steps"] == 6 and saved["test_acc"] == acc
    assert model.greedyprune_info["path"] == str(path)

    def no_training(*args, **kwargs):
        raise AssertionError("the cached model should have been loaded, not retrained")
    monkeypatch.setattr(cache, "train", no_training)
    again, acc_again = trained_model("lenet300-100", RECIPE, progress=False)
    assert acc_again == acc and _same(model, again)
    # a recipe that differs only in runtime settings shares the cache entry
    runtime_only = Recipe(dataset=RECIPE.dataset, train=RECIPE.train.replace(checkpoint_every=3, num_threads=1))
    assert cached_model_path("lenet300-100", runtime_only) == path


def test_killed_build_resumes_to_the_same_model(tmp_path, monkeypatch):
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(tmp_path / "clean"))
    clean, _ = trained_model("lenet300-100", RECIPE, progress=False)

    class Kill:
        def after_step(self, state):
            if state.step == 4:
                raise KeyboardInterrupt("killed")
    real_train = cache.train

    def killed_train(*args, callbacks=(), **kwargs):
        return real_train(*args, callbacks=[*callbacks, Kill()], **kwargs)
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(tmp_path / "killed"))
    monkeypatch.setattr(cache, "train", killed_train)
    with pytest.raises(KeyboardInterrupt):
        trained_model("lenet300-100", RECIPE, progress=False)
    path = cached_model_path("lenet300-100", RECIPE)
    assert not path.exists() and load_checkpoint(checkpoint_path(path.parent))["step"] == 3
    monkeypatch.setattr(cache, "train", real_train)
    resumed, _ = trained_model("lenet300-100", RECIPE, progress=False)
    assert _same(clean, resumed)


def test_default_recipes():
    recipe = default_recipe("resnet18-fmnist")
    assert recipe.dataset == "fashion-mnist" and recipe.train.label_smoothing == 0.1 and recipe.train.nesterov
    recipe.train.lr = 123.0  # a copy: the defaults are not changed
    assert default_recipe("resnet18-fmnist").train.lr != 123.0
    with pytest.raises(UserError, match="no default training recipe for resnet50"):
        default_recipe("resnet50")
