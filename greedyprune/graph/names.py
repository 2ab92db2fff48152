"""Readable, stable group names.

* A group with one producer is named after it (``layer1.0.conv1``, ``features.3.conv.0.0``).
* A stream (several producers) is named after the module most of its producers live in, plus
  ``.stream``: ``layer1.stream`` (ResNet-18's stem conv is one of four producers), ``features.2.stream``
  (EfficientNet). When several streams share that module (MobileNetV2's flat ``features``), they are
  numbered in pruning order: ``features.stream1``, ``features.stream2``, ...
* Family aliases (a registry, one function per family) give some groups a family's usual name:
  torchvision MobileNetV2/V3's expansion channels are ``features.N.hidden`` (the names the library
  used before tracing, kept so that ``widths=`` files and reports stay valid).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from torch import nn

from .groups import ChannelGroup


def stream_prefix(producers: list[str]) -> str:
    """The longest dotted prefix of the last producer shared by more than half of the producers."""
    parts = producers[-1].split(".")
    best = ""
    for k in range(1, len(parts)):
        prefix = ".".join(parts[:k])
        if sum(p.startswith(prefix + ".") for p in producers) * 2 > len(producers):
            best = prefix
    return best or "model"


def _mobilenet_hidden(group: ChannelGroup) -> str | None:
    match = re.fullmatch(r"features\.(\d+)\.(conv|block)\.0\.0", group.name)
    return f"features.{match.group(1)}.hidden" if match and group.kind == "internal" else None


def _is_torchvision_mobilenet(model: nn.Module) -> bool:
    from torchvision.models import MobileNetV2, MobileNetV3
    return isinstance(model, (MobileNetV2, MobileNetV3))


# family test -> alias of a group (None keeps its name)
registered_aliases: dict[str, tuple[Callable[[nn.Module], bool], Callable[[ChannelGroup], str | None]]] = {
    "torchvision-mobilenet": (_is_torchvision_mobilenet, _mobilenet_hidden),
}


def name_groups(model: nn.Module, groups: list[ChannelGroup]) -> None:
    """Give every group (in pruning order) its final, unique name, in place."""
    streams = [g for g in groups if g.kind == "stream"]
    prefixes = {id(g): stream_prefix([p.target for p in g.producers]) for g in streams}
    shared = Counter(prefixes.values())
    numbers: Counter = Counter()
    for group in groups:
        if group.kind == "stream":
            prefix = prefixes[id(group)]
            numbers[prefix] += 1
            group.name = f"{prefix}.stream" if shared[prefix] == 1 else f"{prefix}.stream{numbers[prefix]}"
        else:
            group.name = group.producers[0].target
    for test, alias in registered_aliases.values():
        if test(model):
            for group in groups:
                group.name = alias(group) or group.name
    seen: Counter = Counter()
    for group in groups:
        seen[group.name] += 1
        if seen[group.name] > 1:
            group.name = f"{group.name}#{seen[group.name]}"
