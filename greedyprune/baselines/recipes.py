"""Default training recipes of the baselines (used by ``greedyprune baseline`` and the experiments).

* ``lth``: Frankle & Carbin's LeNet-300-100 recipe -- Adam, lr 1.2e-3, batch 60, constant lr, no weight
  decay, validation every 125 iterations -- with ``T = 6,000`` iterations instead of their 50,000 so
  that the ~45 runs of a two-seed experiment fit a 2-core CPU. The budget censors early stopping:
  the dense run's validation loss is flat from ~3,000 iterations on (its minimum falls anywhere in
  4,750-6,000), and sparse random-init networks are still improving at 6,000 (a 3.6% random mask's
  validation loss still falls at 15,000), so such early-stop iterations are lower bounds
  (``early_stop_censored`` in the run records).
* ``sparse`` (RigL/SET/static, SNIP/GraSP/random, dense reference): SGD with Nesterov momentum 0.9,
  lr 0.05, cosine decay, weight decay 1e-4, batch 128, 10 epochs (4,290 steps on 55,000 images).
* ``dense-sgd``: the well-tuned dense reference for the winning-ticket verdict: SGD as above but with
  LTH's batch and step budget (batch 60, 6,000 steps), so it sees exactly as many examples as a ticket.
"""

from __future__ import annotations

from ..train import TrainConfig

RECIPES: dict[str, TrainConfig] = {
    "lth": TrainConfig(max_steps=6000, batch_size=60, optimizer="adam", lr=1.2e-3, momentum=0.9, schedule="constant",
                       weight_decay=0.0, eval_every=125),
    "sparse": TrainConfig(epochs=10, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True,
                          schedule="cosine", weight_decay=1e-4, eval_every=430),
    "dense-sgd": TrainConfig(max_steps=6000, batch_size=60, optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True,
                             schedule="cosine", weight_decay=1e-4, eval_every=125),
}


def recipe_for(method: str) -> TrainConfig:
    """The recipe a method trains with by default (``lth`` for IMP, ``sparse`` for the others)."""
    return RECIPES["lth" if method == "lth" else "sparse"]
