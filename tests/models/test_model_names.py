"""Every torchvision classification name and timm:NAME resolve to a model of the right input shape and classes."""

import pytest
import torch
import torchvision
from torch import nn

from greedyprune.errors import UserError
from greedyprune.models import build_model, input_shape, load_weights, model_entry, registered_models
from greedyprune.models.weights import classes_in_weights, read_weights

TORCHVISION = torchvision.models.list_models(module=torchvision.models)


def test_every_torchvision_classification_builder_is_a_name():
    assert len(TORCHVISION) >= 80
    assert set(TORCHVISION) <= set(registered_models)
    for name in ("wide_resnet50_2", "vgg16", "densenet121", "convnext_tiny", "regnet_y_400mf", "efficientnet_b0",
                 "shufflenet_v2_x1_0", "googlenet", "inception_v3", "squeezenet1_1", "alexnet", "mnasnet1_0", "vit_b_16"):
        entry = model_entry(name)
        assert entry.source == "torchvision" and entry.dataset == "imagefolder" and entry.num_classes == 1000


def test_input_shapes_follow_the_weights_crop_size():
    assert input_shape("inception_v3") == (3, 299, 299)
    assert input_shape("efficientnet_b3") == (3, 300, 300)
    assert input_shape("efficientnet_v2_s") == (3, 384, 384)
    assert input_shape("vit_h_14") == (3, 224, 224)  # the weights=None architecture, not the 518 SWAG weights
    assert input_shape("resnet50") == (3, 224, 224)


@pytest.mark.parametrize("name", ["squeezenet1_1", "shufflenet_v2_x0_5", "mnasnet0_5", "regnet_x_400mf", "googlenet",
                                  "inception_v3"])
def test_torchvision_names_build_random_and_run_at_their_input_size(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=3).eval()
    assert model.greedyprune_spec == {"name": name, "num_classes": 3}
    with torch.no_grad():
        out = model(torch.randn(1, *input_shape(name)))
    assert out.shape == (1, 3) and torch.isfinite(out).all()


def test_googlenet_drops_auxiliary_heads_of_a_torchvision_weights_file(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True, num_classes=5)
    torch.save(reference.state_dict(), tmp_path / "googlenet.pth")
    assert any(k.startswith("aux1.") for k in reference.state_dict())
    model = load_weights(build_model("googlenet", num_classes=5), tmp_path / "googlenet.pth")
    assert model.aux1 is None and model.transform_input
    assert torch.equal(model.fc.weight, reference.fc.weight)
    assert not any(k.startswith("aux") for k in model.state_dict())


def test_timm_names_resolve_with_pretrained_cfg():
    entry = model_entry("timm:efficientnet_b0")
    assert entry.source == "timm" and entry.input_shape == (3, 224, 224) and entry.num_classes == 1000
    assert model_entry("timm:vit_base_patch16_384").input_shape == (3, 384, 384)
    model = build_model("timm:resnet18", num_classes=4).eval()
    assert model.greedyprune_spec == {"name": "timm:resnet18", "num_classes": 4}
    assert type(model).__module__.startswith("timm.")
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 4)
    with pytest.raises(UserError, match=r"unknown timm model 'resnet1' \(did you mean timm:resnet18"):
        model_entry("timm:resnet1")


def test_timm_missing_says_how_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` raises ImportError
    with pytest.raises(UserError) as info:
        model_entry("timm:resnet18")
    assert "pip install 'greedyprune[timm]'" in str(info.value) and "\n" not in str(info.value)


def test_unknown_name_suggests_and_summarises():
    with pytest.raises(UserError) as info:
        model_entry("wide_resnet50")
    message = str(info.value)
    assert "did you mean wide_resnet50_2" in message and "timm:NAME" in message and "resnet18-fmnist" in message
    assert "80 torchvision" in message or f"{len(TORCHVISION)} torchvision" in message
    assert "\n" not in message and len(message) < 600


def test_class_count_read_off_a_fine_tuned_state_dict(tmp_path):
    torch.manual_seed(0)
    fine_tuned = torchvision.models.resnet18(num_classes=2)
    torch.save(fine_tuned.state_dict(), tmp_path / "my.pth")
    state = read_weights(tmp_path / "my.pth")
    assert classes_in_weights(build_model("resnet18"), state) == (2, "fc.weight")
    assert classes_in_weights(build_model("resnet18", num_classes=2), state) is None  # fits
    with pytest.raises(UserError, match=r"the file has 2 classes \(fc.weight\): build the model with num_classes=2"):
        load_weights(build_model("resnet18"), tmp_path / "my.pth")
    # a difference outside the classifier is not a class count
    state["layer1.0.conv1.weight"] = torch.zeros(3, 64, 3, 3)
    assert classes_in_weights(build_model("resnet18"), state) is None
    squeeze = torchvision.models.squeezenet1_1(num_classes=7)  # the classifier is a 1x1 conv
    assert classes_in_weights(build_model("squeezenet1_1"), squeeze.state_dict()) == (7, "classifier.1.weight")
    assert isinstance(build_model("squeezenet1_1", 7).classifier[1], nn.Conv2d)
