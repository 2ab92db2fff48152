"""The experiment scripts behind README's result tables run end to end (small CNN, tiny sizes) and resume."""

import json
import os
import subprocess
import sys

from .conftest import REPO


def _run(script: str, *args, cache) -> str:
    env = {**os.environ, "GREEDYPRUNE_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, f"experiments/{script}", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_compare_methods_table_and_resume(trained_cache, tmp_path):
    out = tmp_path / "compare.json"
    args = ["--model", "small-cnn", "--flops", "0.5", "--methods", "reoptimized,magnitude,random", "--seeds", "2",
            "--calib", "64", "--test-images", "200", "--finetune-images", "64", "--out", out, "--runs", tmp_path / "runs"]
    printed = _run("compare_methods.py", *args, cache=trained_cache)
    results = json.loads(out.read_text())
    assert set(results["runs"]) == {f"0.5/{m}/{s}" for m in ("reoptimized", "magnitude", "random") for s in (0, 1)}
    greedy = results["runs"]["0.5/reoptimized/0"]
    assert abs(greedy["flops_after"] / greedy["flops_before"] - 0.5) < 0.03
    assert results["runs"]["0.5/reoptimized/1"]["top1_pruned"] == greedy["top1_pruned"]  # seeds: fine-tuning only
    assert results["wall_seconds"] > 0
    for run in results["runs"].values():
        assert run["widths"] == greedy["widths"] and run["flops_after"] == greedy["flops_after"]  # matched widths
        assert run["top1_recalibrated"] == run["top1_pruned"]  # no BatchNorm in the small CNN
        assert run["top1_finetuned"] is not None and set(run["group_errors"]) == set(greedy["widths"])
    assert out.with_suffix(".png").stat().st_size > 10_000
    # finished runs are not run again
    assert "FLOPs" not in _run("compare_methods.py", *args, cache=trained_cache) and "FLOPs" in printed
    table = _run("compare_table.py", out, cache=trained_cache)
    assert "| 50% | `reoptimized` |" in table and "| 50% | `random` |" in table and " ± " in table


def test_compare_methods_refit_row_curves_and_resumed_fine_tune(trained_cache, tmp_path):
    out = tmp_path / "refit.json"
    args = ["--model", "small-cnn", "--flops", "0.3", "--methods", "reoptimized+refit,reoptimized", "--seeds", "1",
            "--calib", "64", "--test-images", "200", "--finetune-images", "640", "--eval-every", "4",
            "--curve-images", "300", "--refit-iters", "5", "--out", out, "--runs", tmp_path / "runs"]
    printed = _run("compare_methods.py", *args, cache=trained_cache)
    results = json.loads(out.read_text())
    refit, plain = results["runs"]["0.3/reoptimized+refit/0"], results["runs"]["0.3/reoptimized/0"]
    assert refit["widths"] == plain["widths"] and plain["refit"] is None
    assert refit["refit"]["error_after"] < refit["refit"]["error_before"] and "refit feature error" in printed
    assert refit["group_errors"] == plain["group_errors"]  # the same picks; only the refit differs
    assert [step for step, _ in plain["curve"]] == [0, 4, 8, 10]  # 640 images / batch 64 = 10 steps
    dense = results["curve_dense_top1"]
    for run in (refit, plain):
        first = next((s for s, t in run["curve"] if t >= dense - 0.01), None)
        assert run["steps_within_1pt"] == first
    assert out.with_name("refit_curves.png").stat().st_size > 10_000
    # a run missing from the JSON (killed after its fine-tune checkpointed) resumes from the checkpoint
    del results["runs"]["0.3/reoptimized/0"]
    out.write_text(json.dumps(results))
    _run("compare_methods.py", *args, cache=trained_cache)
    again = json.loads(out.read_text())["runs"]["0.3/reoptimized/0"]
    assert again["curve"] == plain["curve"] and again["top1_finetuned"] == plain["top1_finetuned"]


def test_stage_errors(trained_cache, tmp_path):
    out = tmp_path / "stages.json"
    _run("stage_errors.py", "--model", "small-cnn", "--methods", "reoptimized,magnitude", "--calib", "64",
         "--test-images", "100", "--out", out, cache=trained_cache)
    methods = json.loads(out.read_text())["methods"]
    assert set(methods) == {"reoptimized", "reoptimized+bn", "magnitude", "magnitude+bn"}
    logits = methods["reoptimized"]["stages"][-1]
    assert 0 <= logits["error"] < 1 and 0 < logits["variance_ratio"] < 2
    assert any(stage["error"] is None for stage in methods["magnitude"]["stages"])  # pruned-width stages skipped


def test_ye2020_compare_equal_widths_times_table_and_resume(trained_cache, tmp_path):
    out = tmp_path / "ye.json"
    args = ["--model", "small-cnn", "--candidates", "2", "--batch", "16", "--tolerance", "0.5", "--check-images", "50",
            "--between-epochs", "0.001", "--calib", "64", "--refit-iters", "3", "--test-images", "200",
            "--finetune-images", "64", "--out", out, "--runs", tmp_path / "runs"]
    printed = _run("ye2020_compare.py", *args, cache=trained_cache)
    results = json.loads(out.read_text())
    assert list(results["runs"]) == ["ye2020", "reoptimized", "reoptimized+refit"]
    ye = results["runs"]["ye2020"]
    assert ye["flops_after"] < ye["flops_before"] and [g["channels_after"] for g in ye["layers"]] == list(
        ye["widths"].values())
    for name in ("reoptimized", "reoptimized+refit"):
        run = results["runs"][name]
        assert {k: run["widths"][k] for k in ye["widths"]} == ye["widths"]  # pruned to exactly ye2020's widths
        assert (run["flops_after"], run["params_after"]) == (ye["flops_after"], ye["params_after"])
    assert results["runs"]["reoptimized"]["refit"] is None and results["runs"]["reoptimized+refit"]["refit"]
    for run in results["runs"].values():
        assert 0 <= run["top1_pruned"] <= 1 and 0 <= run["top1_finetuned"] <= 1
        assert run["prune_seconds"] > 0 and run["prune_cpu_seconds"] > 0 and run["finetune_cpu_seconds"] > 0
    assert len(list((tmp_path / "runs").glob("small-cnn-*/ye2020.pt"))) == 1
    rows = [line for line in printed.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == ["ye2020", "reoptimized", "reoptimized+refit"]
    assert "candidates 2 (released 50)" in printed and "tolerance" in printed.split("released code:")[1].split(";")[0]
    # finished stages are not run again, and --table prints the same table from the file alone
    again = _run("ye2020_compare.py", *args, cache=trained_cache)
    assert "ye2020: FLOPs" in printed and "ye2020: FLOPs" not in again and json.loads(out.read_text()) == results
    assert _run("ye2020_compare.py", "--table", out, cache=trained_cache).strip() == again.strip()
