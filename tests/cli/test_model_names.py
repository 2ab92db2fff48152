"""Every model a user brings on the command line: torchvision and timm names, --num-classes, model-following defaults."""

import json

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import greedyprune
from greedyprune.cli.defaults import data_options, resolve_data
from greedyprune.cli.main import main
from greedyprune.metrics import count_parameters
from greedyprune.models import build_model


@pytest.fixture(scope="module")
def two_class_weights(tmp_path_factory):
    """A fine-tuned 2-class resnet18 as users save it: torchvision's model, a bare state dict."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "my.pth"
    torch.save(torchvision.models.resnet18(num_classes=2).state_dict(), path)
    return path


def _json_line(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_two_class_resnet18_prune_save_load_eval(two_class_weights, tmp_path, capsys):
    out = tmp_path / "pruned.pt"
    assert main(["prune", "--model", "resnet18", "--weights", str(two_class_weights), "--data", "random:3x32x32",
                 "--calib", "16", "--batch-size", "8", "--keep", "0.5", "--refit", "none", "--out", str(out),
                 "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "has 2 classes (fc.weight is (2, 512)): building resnet18 with --num-classes 2" in err
    model = greedyprune.load(out)
    assert model.greedyprune_spec == {"name": "resnet18", "num_classes": 2}
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 2)
    # eval without --data: synthetic images with labels the 2-class model can output
    assert main(["eval", str(out), "--limit", "4", "--batch-size", "4", "--latency-batch", "1"]) == 0
    captured = capsys.readouterr()
    result = _json_line(captured.out)
    assert result["data"] == "random:3x224x224" and result["images"] == 4 and result["params"] == count_parameters(model)
    assert "no --data: evaluating resnet18 on synthetic random:3x224x224 images" in captured.err
    # the explicit flag gives the same model; a wrong one names the right value
    assert main(["eval", "--model", "resnet18", "--weights", str(two_class_weights), "--num-classes", "2",
                 "--limit", "2", "--latency-batch", "1"]) == 0
    assert "building" not in capsys.readouterr().err
    assert main(["eval", str(out), "--data", "random:3x32x32"]) == 2  # explicit data is taken as given
    assert "the model has 2 outputs but random:3x32x32 has 10 classes" in capsys.readouterr().err
    assert main(["eval", "--model", "resnet18", "--weights", str(two_class_weights), "--num-classes", "5",
                 "--data", "random:3x32x32"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"greedyprune eval: error: --num-classes 5 does not match {two_class_weights}: its fc.weight is (2, 512), "
        "2 classes; pass --num-classes 2 (or leave it out)")
    assert main(["eval", str(out), "--num-classes", "3"]) == 2
    assert "which has 2 classes; leave --num-classes out for a model file" in capsys.readouterr().err


def test_torchvision_and_timm_names(capsys):
    assert main(["eval", "--model", "wide_resnet50_2", "--data", "random:3x32x32", "--limit", "2",
                 "--latency-batch", "1"]) == 0
    torch.manual_seed(0)
    assert _json_line(capsys.readouterr().out)["params"] == count_parameters(torchvision.models.wide_resnet50_2())
    import timm
    assert main(["eval", "--model", "timm:resnet18", "--num-classes", "3", "--limit", "2", "--latency-batch", "1"]) == 0
    captured = capsys.readouterr()
    result = _json_line(captured.out)
    assert result["params"] == count_parameters(timm.create_model("resnet18", num_classes=3))
    assert result["data"] == "random:3x224x224" and "pass --data imagefolder:DIR" in captured.err
    assert main(["eval", "--model", "timm:resnet1"]) == 2
    assert "unknown timm model 'resnet1' (did you mean timm:resnet18" in capsys.readouterr().err
    assert main(["eval", "--model", "wide_resnet50"]) == 2
    assert "(did you mean wide_resnet50_2" in capsys.readouterr().err


def test_defaults_follow_the_model(tmp_path, capsys):
    assert resolve_data(None, build_model("small-cnn")) == "fashion-mnist"
    assert resolve_data("random:1x28x28", build_model("resnet50")) == "random:1x28x28"
    assert capsys.readouterr().err == ""
    inception = build_model("inception_v3")
    assert resolve_data(None, inception) == "random:3x299x299"
    assert "on synthetic random:3x299x299 images" in capsys.readouterr().err
    assert data_options("imagefolder:/data", inception) == {"image_size": 299}
    assert data_options("fashion-mnist", inception) == {}
    assert data_options("random:3x32x32", build_model("resnet18", 2), fit_labels=True) == {"num_classes": 2}
    assert main(["train", "--model", "resnet50", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == ("greedyprune train: error: --data is required to train resnet50: "
                                               "--data imagefolder:DIR (or --data random:3x224x224 to try it on noise)")


def _image_folder(root, per_class: int) -> str:
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    return f"imagefolder:{root}"


def test_calib_adapts_to_a_small_folder(two_class_weights, tmp_path, capsys):
    data = _image_folder(tmp_path / "images", 3)
    out = tmp_path / "pruned.pt"
    args = ["prune", "--model", "resnet18", "--weights", str(two_class_weights), "--data", data, "--keep", "0.5",
            "--batch-size", "6", "--refit", "none", "--out", str(out), "--no-progress"]
    assert main(args + ["--calib", "10"]) == 2
    assert "--calib 10 asks for more images than" in capsys.readouterr().err and not out.exists()
    assert main(args) == 0
    assert f"--calib defaults to 512 images but {data} has 6: using all 6" in capsys.readouterr().err
    report = greedyprune.modelfile.load_report(out)
    assert report["calibration_images"] == 6 and report["input_shape"] == [3, 224, 224]  # the model's input size


def test_method_choices_come_from_the_registry(tmp_path, capsys, monkeypatch):
    from greedyprune.selection import registered_methods
    weights = tmp_path / "cnn.pth"
    torch.manual_seed(0)
    torch.save(build_model("small-cnn").state_dict(), weights)
    args = ["prune", "--model", "small-cnn", "--weights", str(weights), "--data", "random:1x28x28", "--calib", "16",
            "--keep", "0.5", "--method", "test-alias", "--refit", "none", "--out", str(tmp_path / "p.pt"),
            "--no-progress"]
    with pytest.raises(SystemExit) as parse_error:  # argparse's exit
        main(args)
    assert parse_error.value.code == 2 and "invalid choice: 'test-alias'" in capsys.readouterr().err
    monkeypatch.setitem(registered_methods, "test-alias", registered_methods["reoptimized"])
    assert main(args) == 0
    assert greedyprune.modelfile.load_report(tmp_path / "p.pt")["method"] == "test-alias"
