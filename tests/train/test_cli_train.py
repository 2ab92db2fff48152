"""`greedyprune train`: trains, prints the test accuracy, saves OUT/model.pt; one-line errors."""

import torch

from greedyprune.cli.main import main
from greedyprune.io import load_checkpoint
from greedyprune.models import build_model, load_weights


def test_train_command_saves_model_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "lenet300-100", "--data", "random:1x28x28", "--epochs", "2", "--out", str(out),
            "--batch-size", "64", "--lr", "0.05"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "lenet300-100 on random:1x28x28: test accuracy" in printed and "16 steps" in printed
    saved = load_checkpoint(out / "model.pt")
    assert set(saved) == {"spec", "state_dict"} and saved["spec"] == {"name": "lenet300-100", "num_classes": 10}
    model = load_weights(build_model(**saved["spec"]), out / "model.pt")
    assert torch.equal(model[1].weight, saved["state_dict"]["1.weight"])
    assert (out / "model.pt.json").exists() and (out / "checkpoint.pt").exists()
    # a finished run resumes at its end: same weights, nothing retrained
    assert main(args) == 0
    assert "16 steps" in capsys.readouterr().out
    assert torch.equal(load_checkpoint(out / "model.pt")["state_dict"]["1.weight"], saved["state_dict"]["1.weight"])
    # --no-resume with other settings starts over
    assert main(args[:-1] + ["0.01", "--no-resume", "--epochs", "1"]) == 0
    assert "8 steps" in capsys.readouterr().out


def test_train_command_errors(tmp_path, capsys):
    if not torch.cuda.is_available():
        assert main(["train", "--model", "small-cnn", "--out", str(tmp_path), "--device", "cuda"]) == 2
        assert capsys.readouterr().err.strip() == \
            "greedyprune train: error: CUDA requested but not available; use --device cpu"
    assert main(["train", "--model", "small-cnn"]) == 2
    assert "--out is required" in capsys.readouterr().err
    assert main(["train", "--model", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    args = ["train", "--model", "lenet300-100", "--data", "random:1x28x28", "--out", str(tmp_path / "r")]
    assert main(args + ["--lr", "0.05"]) == 0
    capsys.readouterr()
    assert main(args + ["--lr", "0.02"]) == 2  # resuming a different run is refused
    err = capsys.readouterr().err
    assert "different run" in err and "--no-resume" in err and err.count("\n") == 1


def test_fine_tuning_a_pruned_model_file_keeps_its_shapes(tmp_path, capsys):
    import greedyprune
    from greedyprune.data import calibration_batches

    torch.manual_seed(0)
    pruned, report = greedyprune.prune(build_model("lenet300-100"), calibration_batches("random:1x28x28", 64),
                                       keep=0.25, refit=None, progress=False)
    greedyprune.save(tmp_path / "pruned.pt", pruned, report)
    out = tmp_path / "ft"
    assert main(["train", "--model", str(tmp_path / "pruned.pt"), "--data", "random:1x28x28", "--epochs", "1",
                 "--batch-size", "64", "--out", str(out)]) == 0
    assert "8 steps" in capsys.readouterr().out
    tuned = greedyprune.load(out / "model.pt")
    shapes = {k: v.shape for k, v in tuned.state_dict().items()}
    assert shapes == {k: v.shape for k, v in pruned.state_dict().items()} and shapes["1.weight"] == (75, 784)
    assert not torch.equal(tuned[1].weight, pruned[1].weight)  # it trained
    assert load_checkpoint(out / "model.pt")["spec"] == {"name": "lenet300-100", "num_classes": 10}
