"""The model cache checks what it holds: entries written by earlier code are accepted (checked, then hashed on
first load, never retrained), new entries are committed with their hash, and a swapped model.pt is refused.

Always a temporary $GREEDYPRUNE_CACHE: never the real cache.
"""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from greedyprune.errors import UserError
from greedyprune.models import Recipe, build_model, cached_model_path, trained_model
from greedyprune.train import TrainConfig


def _old_code_entry(name: str = "small-cnn", acc: float = 0.8654):
    """An entry exactly as the cache wrote it before hashes were recorded: model.pt and model.json, nothing else."""
    path = cached_model_path(name)
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    model = build_model(name)
    info = {"spec": model.greedyprune_spec, "recipe": {"dataset": "fashion-mnist"}, "test_acc": acc,
            "test_loss": 0.5, "train_seconds": 60.0, "steps": 312, "train_images": 20000, "torch_version": "2.x"}
    torch.save({**info, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}, path)
    (path.parent / "model.json").write_text(json.dumps(info, indent=2))
    (path.parent / ".lock").write_text("")
    return path, model


def test_entry_from_before_hashes_is_checked_and_hashed_on_first_load(tmp_path, monkeypatch):
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(tmp_path / "cache"))
    path, original = _old_code_entry()
    data = path.read_bytes()
    model, acc = trained_model("small-cnn", progress=False)
    assert acc == 0.8654  # used as it is: not retrained
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), original.state_dict().values()))
    assert path.read_bytes() == data and not (path.parent / "checkpoint.pt").exists()
    record = json.loads(path.with_name("model.pt.sha256").read_text())
    assert record == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "recorded": "on first load"}
    assert trained_model("small-cnn", progress=False).test_acc == 0.8654  # the second load checks the hash
    torch.manual_seed(5)  # then the weights are swapped, the recorded accuracy kept
    torch.save({**torch.load(path, weights_only=True), "state_dict": build_model("small-cnn").state_dict()}, path)
    with pytest.raises(UserError, match=r"its SHA-256 \w+\.\.\. is not the \w+\.\.\. recorded when it was written"):
        trained_model("small-cnn", progress=False)


def test_new_entry_is_committed_with_its_hash(tmp_path, monkeypatch):
    """A (tiny) build writes model.pt, model.pt.json and model.pt.sha256 together, and removes its checkpoint."""
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(tmp_path / "cache"))
    recipe = Recipe(dataset="random:1x28x28", train_images=64, bn_recalibration=0,
                    train=TrainConfig(max_steps=2, batch_size=32))
    model, acc = trained_model("lenet300-100", recipe, progress=False)
    path = cached_model_path("lenet300-100", recipe)
    assert sorted(p.name for p in path.parent.iterdir()) == [".lock", "model.pt", "model.pt.json", "model.pt.sha256"]
    record = json.loads(path.with_name("model.pt.sha256").read_text())
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert json.loads(path.with_name("model.pt.json").read_text())["test_acc"] == acc
    assert trained_model("lenet300-100", recipe, progress=False).test_acc == acc
