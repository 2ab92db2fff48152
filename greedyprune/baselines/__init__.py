"""Faithful unstructured-sparsity baselines: lottery tickets (IMP + rewinding), RigL/SET/static, SNIP/GraSP.

``registered_baselines`` maps a method name to ``(runner, options class)``; a runner is called as
``runner(method, model_name, splits, train_config, options, out, resume=..., progress=...)`` and
returns a dict (``summary`` for ``lth``, one run record otherwise). All of them train with the one
shared loop (:func:`greedyprune.train.train`) and resume from their folders after a kill.
"""

from __future__ import annotations

from typing import Callable

from .at_init import InitOptions, run_at_init
from .bip import BiPOptions, run_bip
from .common import Splits, load_splits, run_training
from .lth import LTHOptions, run_lth
from .protocol import ProtocolVerdict, RecipeGroups, run_two_recipe_lth, two_recipe_verdict
from .rigl import DynamicOptions, DynamicSparsity, run_dynamic
from .verdict import Verdict, winning_ticket_verdict


def _lth(method, model_name, splits, config, options, out, **kw):
    return run_lth(model_name, splits, config, options, out, **kw)


# name -> (runner, options dataclass)
registered_baselines: dict[str, tuple[Callable, type]] = {
    "lth": (_lth, LTHOptions),
    "rigl": (run_dynamic, DynamicOptions),
    "set": (run_dynamic, DynamicOptions),
    "static": (run_dynamic, DynamicOptions),
    "dense": (run_dynamic, DynamicOptions),  # the reference: no masks
    "snip": (run_at_init, InitOptions),
    "grasp": (run_at_init, InitOptions),
    "random": (run_at_init, InitOptions),
    "random-ratios": (run_at_init, InitOptions),
    "bip": (run_bip, BiPOptions),  # bilevel mask learning (MRBO / VRBO / first-order), from a trained model
}

__all__ = ["BiPOptions", "DynamicOptions", "DynamicSparsity", "InitOptions", "LTHOptions", "ProtocolVerdict",
           "RecipeGroups", "Splits", "Verdict", "load_splits", "registered_baselines", "run_at_init", "run_dynamic",
           "run_lth", "run_training", "run_two_recipe_lth", "two_recipe_verdict", "winning_ticket_verdict"]
