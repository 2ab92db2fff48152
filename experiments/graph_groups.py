"""Channel groups traced on every torchvision classification family (default builders, weights=None).

Prints one Markdown row per family: groups (internal / stream / inexact), the output rows of Conv2d/Linear
layers (depthwise convs excepted) that belong to a prunable group (producers and squeeze-excitation fc2s), frozen channel sets and their reasons, and the time find_groups takes.
Run: ``PYTHONPATH=$PWD OMP_NUM_THREADS=1 python experiments/graph_groups.py [family ...]``.
"""

from __future__ import annotations

import re
import sys
import time
import warnings

import torch
from torch import nn
from torchvision import models as tv

from greedyprune.graph import find_groups

FAMILIES = {"resnet18": 64, "resnet50": 64, "wide_resnet50_2": 64, "resnext50_32x4d": 64, "vgg11_bn": 64,
            "alexnet": 64, "squeezenet1_0": 64, "squeezenet1_1": 64, "densenet121": 64, "googlenet": 64,
            "inception_v3": 299, "mobilenet_v2": 64, "mobilenet_v3_small": 64, "mobilenet_v3_large": 64,
            "mnasnet0_5": 64, "efficientnet_b0": 64, "efficientnet_v2_s": 64, "regnet_x_400mf": 64,
            "regnet_y_400mf": 64, "shufflenet_v2_x0_5": 64, "convnext_tiny": 64, "vit_b_16": 224}


def _short(reason: str) -> str:
    reason = re.sub(r"\(1, [\d, ]+\)", "(.., g, C/g, ..)", reason)
    return re.sub(r"read by \S+ \((\w+)\)", r"read by \1", reason.split("; ")[0])


def row(name: str, size: int) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tv.get_model(name, weights=None).eval()
    start = time.perf_counter()
    traced = find_groups(model, torch.randn(1, 3, size, size))
    seconds = time.perf_counter() - start
    rows = sum(m.weight.shape[0] for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
               and not (m.groups > 1 and m.groups == m.in_channels == m.out_channels if isinstance(m, nn.Conv2d) else False))
    prunable = sum(g.width * (len(g.producers) + sum(c.kind == "out" for c in g.carriers)) for g in traced.groups)
    streams = sum(g.kind == "stream" for g in traced.groups)
    reasons: dict[str, int] = {}
    for f in traced.frozen:
        reasons[_short(f.reason)] = reasons.get(_short(f.reason), 0) + 1
    frozen = "; ".join(f"{n}x {r}" for r, n in reasons.items())
    inexact = sum(not g.exact for g in traced.groups)
    return (f"| {name} | {len(traced.groups) - streams} | {streams} | {inexact} | {100 * prunable / rows:.0f}% | "
            f"{frozen} | {seconds:.1f} s |")


if __name__ == "__main__":
    torch.set_num_threads(1)
    print("| family | internal | stream | inexact | prunable rows | frozen (count x reason) | find_groups |")
    print("|---|---|---|---|---|---|---|")
    for family in sys.argv[1:] or FAMILIES:
        print(row(family, FAMILIES[family]), flush=True)
