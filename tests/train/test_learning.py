"""A tiny real training run learns: small-cnn on 2,000 Fashion-MNIST images, one epoch."""

import torch

from greedyprune.data import get_dataset, subset
from greedyprune.models import build_model
from greedyprune.train import TrainConfig, evaluate, train


def test_small_cnn_learns_fashion_mnist():
    torch.manual_seed(0)
    model = build_model("small-cnn")
    train_set = subset(get_dataset("fashion-mnist", "train"), 2000, seed=0)
    test_set = subset(get_dataset("fashion-mnist", "test"), 1000, seed=0)
    before = evaluate(model, test_set, 500)
    result = train(model, train_set, TrainConfig(epochs=1, batch_size=32, lr=0.05, seed=0, num_threads=1),
                   val_set=test_set, progress=False)
    after = evaluate(model, test_set, 500)
    assert result.steps == 62 and result.history[-1]["step"] == 62
    assert before["top1"] < 0.25  # chance is 0.1
    assert after["top1"] > 0.6, after
    assert after["loss"] < before["loss"] - 0.8
    assert after["top1"] == result.history[-1]["val_acc"]
