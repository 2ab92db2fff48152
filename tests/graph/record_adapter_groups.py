"""Record the hand-written adapters' channel groups (main at 1023cd8) as ``adapter_groups.json``.

Run once, while ``greedyprune.adapters`` still exists: ``PYTHONPATH=$PWD python tests/graph/record_adapter_groups.py``.
``test_adapter_parity.py`` compares the traced groups with this record, so the check survives the adapters.
"""

from __future__ import annotations

import json
from pathlib import Path

from greedyprune.adapters import find_adapter
from tests.graph.test_adapter_parity import CASES

KIND = {"bn": "norm", "depthwise": "depthwise", "out": "out"}  # adapter slice kind -> traced carrier kind

if __name__ == "__main__":
    record = {}
    for name, (build, _shape) in CASES.items():
        model = build().eval()
        path = {id(m): p for p, m in model.named_modules()}
        record[name] = [{
            "name": g.name, "width": g.width, "producer": path[id(g.score_module)],
            "carriers": sorted([path[id(s.module)], KIND[s.kind]] for s in g.slices
                               if s.kind != "in" and s.module is not g.score_module),
            "consumer": path[id(g.consumer)], "bias_sink": path[id(g.bias_sink)], "block": g.consumer_block,
            "gates": sorted(path[id(m)] for m in g.side_inputs)} for g in find_adapter(model).groups(model)]
    Path(__file__).with_name("adapter_groups.json").write_text(json.dumps(record, indent=1) + "\n")
