"""Default training recipes of the baselines (used by ``greedyprune baseline`` and the experiments).

* ``lth``: Frankle & Carbin's LeNet-300-100 recipe -- Adam, lr 1.2e-3, batch 60, constant lr, no weight
  decay, 50,000 iterations (their budget), validation every 250 iterations. Ma et al. (2021) call this
  the *small-learning-rate* recipe.
* ``lth-sgd``: the *well-tuned* recipe of Ma et al.'s protocol with the same batch and iteration
  budget: SGD with Nesterov momentum 0.9, a learning rate decayed by a cosine schedule, weight decay
  1e-4. Its learning rate, 0.025, was chosen by final validation accuracy from {0.0125, 0.025, 0.05,
  0.1, 0.2} (dense LeNet-300-100, seed 0, 6,000 iterations, ``experiments/baselines_lth.py``: 89.62 /
  89.96 / 89.52 / 89.34 %, 0.2 diverges) -- 20x Adam's 1.2e-3, the largest that trains best here.
* ``sparse`` (RigL/SET/static, SNIP/GraSP/random, dense reference): SGD with Nesterov momentum 0.9,
  lr 0.05, cosine decay, weight decay 1e-4, batch 128, 10 epochs (4,290 steps on 55,000 images).
"""

from __future__ import annotations

from ..train import TrainConfig

LTH_SGD_LR = 0.025  # chosen on the validation split (docstring); experiments/results/baselines_lth_sgd_tuning.json

RECIPES: dict[str, TrainConfig] = {
    "lth": TrainConfig(max_steps=50_000, batch_size=60, optimizer="adam", lr=1.2e-3, momentum=0.9, schedule="constant",
                       weight_decay=0.0, eval_every=250),
    "lth-sgd": TrainConfig(max_steps=50_000, batch_size=60, optimizer="sgd", lr=LTH_SGD_LR, momentum=0.9,
                           nesterov=True, schedule="cosine", weight_decay=1e-4, eval_every=250),
    "sparse": TrainConfig(epochs=10, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True,
                          schedule="cosine", weight_decay=1e-4, eval_every=430),
}


def recipe_for(method: str) -> TrainConfig:
    """The recipe a method trains with by default (``lth`` for IMP, ``sparse`` for the others)."""
    return RECIPES["lth" if method == "lth" else "sparse"]
