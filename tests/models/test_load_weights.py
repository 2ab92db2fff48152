"""load_weights: torchvision files, checkpoints with prefixes, and one-line mismatch messages."""

import pytest
import torch

from greedyprune.errors import UserError
from greedyprune.models import build_model, load_weights


class Thing:
    """A class torch.load(weights_only=True) refuses to unpickle."""


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_loads_bare_state_dict_and_wrapped_checkpoints(tmp_path):
    torch.manual_seed(0)
    source = build_model("resnet18")
    torch.save(source.state_dict(), tmp_path / "resnet18-f37072fd.pth")
    assert _same(load_weights(build_model("resnet18"), tmp_path / "resnet18-f37072fd.pth"), source)
    # DDP-style checkpoint: {"state_dict": {"module.<key>": ...}, other entries}; num_batches_tracked absent
    ddp = {f"module.{k}": v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save({"epoch": 3, "state_dict": ddp}, tmp_path / "ckpt.pt")
    assert _same(load_weights(build_model("resnet18"), tmp_path / "ckpt.pt"), source)
    small = build_model("small-cnn")
    torch.save({"model": small.state_dict(), "step": 10}, tmp_path / "small.pt")
    assert _same(load_weights(build_model("small-cnn"), tmp_path / "small.pt"), small)


def test_shape_mismatch_message_names_keys_and_shapes(tmp_path):
    torch.save(build_model("resnet50", num_classes=10).state_dict(), tmp_path / "w.pth")
    with pytest.raises(UserError) as info:
        load_weights(build_model("resnet50"), tmp_path / "w.pth")
    message = str(info.value)
    assert message.startswith("weights do not match resnet50: fc.weight is (10, 2048) in the file but (1000, 2048) "
                              "in the model; fc.bias is (10) in the file but (1000) in the model")
    assert "\n" not in message


def test_missing_and_unexpected_keys_are_listed_up_to_three(tmp_path):
    state = build_model("resnet18").state_dict()
    for key in ("layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.conv2.weight"):
        del state[key]
    state["extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(UserError) as info:
        load_weights(build_model("resnet18"), tmp_path / "w.pth")
    message = str(info.value)
    assert "missing from the file: layer1.0.conv1.weight, layer1.0.bn1.weight, layer1.0.bn1.bias (+1 more)" in message
    assert "not in the model: extra.weight" in message


def test_not_a_state_dict_and_unsafe_files(tmp_path):
    torch.save({"epoch": 1, "note": "hello"}, tmp_path / "meta.pt")
    with pytest.raises(UserError, match="holds no state dict"):
        load_weights(build_model("small-cnn"), tmp_path / "meta.pt")
    torch.save({"state_dict": Thing()}, tmp_path / "pickled.pt")  # pickled code: refused by weights_only
    with pytest.raises(UserError, match="refusing to load"):
        load_weights(build_model("small-cnn"), tmp_path / "pickled.pt")
    with pytest.raises(UserError, match="does not exist"):
        load_weights(build_model("small-cnn"), tmp_path / "missing.pth")
