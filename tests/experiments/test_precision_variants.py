"""The experiment scripts' bfloat16 variants pass ``precision="bfloat16"`` on, and nothing else changes."""

import os
import subprocess
import sys

from greedyprune.stats.precision import effective

from .conftest import REPO
from .conftest import load_script as script


def test_compare_methods_bf16_suffix_sets_the_precision_and_allocates_its_own_widths():
    compare = script("compare_methods")
    assert compare.method_options("reoptimized+streams+bf16+refit", 40) == (
        "reoptimized", {"refit": "global", "refit_iters": 40, "streams": True, "precision": "bfloat16"})
    assert compare.method_options("magnitude+streams", 40) == ("magnitude", {"refit": None, "streams": True})
    assert compare.allocator("reoptimized+streams+bf16+refit") == "reoptimized+streams+bf16"
    assert compare.allocator("magnitude+streams") == "reoptimized+streams"


def test_bench_bf16_variants_differ_from_their_float32_twins_only_in_the_precision():
    bench = script("bench_pipeline")
    for variant in ("internal", "streams", "streams+lat"):
        twin = bench.variant_options(variant + "+bf16")
        assert bench.variant_supported(variant + "+bf16")
        assert twin.pop("precision") == "bfloat16"
        assert twin == bench.variant_options(variant)


def test_prune_phases_reports_the_products_used():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "experiments/prune_phases.py", "resnet18", "--flops", "0.5", "--streams",
                           "--images", "4", "--size", "32", "--batch", "2", "--precision", "bfloat16"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"bfloat16 products ({effective('bfloat16')})" in done.stdout
    assert "statistics: add_batch" in done.stdout
