"""The latency experiments run end to end: the latency model's check, and compare_methods' ``+lat`` rows."""

import json

from .test_experiment_scripts import _run


def test_latency_model_script_prints_prediction_and_measurement(tmp_path):
    printed = _run("latency_model.py", "--model", "resnet18", "--size", "32", "--batch", "2", "--keeps", "0.5",
                   "--random-widths", "1", "--rounds", "1", "--repeat", "1", "--top", "3", cache=tmp_path)
    rows = {" ".join(line.split()[:-3]): line.split()[-3:] for line in printed.splitlines()[-3:]}  # label: numbers
    assert rows["dense"] == ["1.000", "1.000", "1.000"]
    assert 0 < float(rows["keep 0.5"][0]) < 1 and 0 < float(rows["random widths 0"][1])
    assert "ns/FLOP" in printed or "ns/element" in printed


def test_compare_methods_lat_rows_allocate_by_latency_and_share_widths(trained_cache, tmp_path):
    out = tmp_path / "lat.json"
    _run("compare_methods.py", "--model", "small-cnn", "--flops", "0.5", "--methods",
         "reoptimized,reoptimized+lat,magnitude+lat", "--seeds", "1", "--calib", "64", "--test-images", "200",
         "--finetune-images", "0", "--out", out, cache=trained_cache)
    runs = json.loads(out.read_text())["runs"]
    lat, magnitude = runs["0.5/reoptimized+lat/0"], runs["0.5/magnitude+lat/0"]
    assert magnitude["widths"] == lat["widths"]  # matched to the +lat allocation, not the FLOPs one
    assert 0 < lat["latency_model_kept"] < 1 and runs["0.5/reoptimized/0"]["latency_model_kept"] is None
    assert lat["flops_after"] / lat["flops_before"] <= 0.5
