"""bench_pipeline.py matches Torch-Pruning to each greedyprune row's own FLOPs (rows close together share one
match), and judges each row against the Torch-Pruning rows matched to it."""

from .conftest import load_script


def bench():
    return load_script("bench_pipeline")


def test_rows_far_apart_get_their_own_target_and_close_rows_share_one():
    b = bench()
    assert b.matched_targets({"streams": 0.260, "streams+lat": 0.294}) == [(0.260, ["streams"]), (0.294, ["streams+lat"])]
    (target, keys), = b.matched_targets({"streams": 0.500, "streams+lat": 0.502})
    assert keys == ["streams", "streams+lat"] and abs(target - 0.501) < 1e-12


def test_each_row_is_judged_against_its_own_match():
    b = bench()
    assert b.split_variant("tp-uniform/r16@streams+lat") == ("tp-uniform", 16)
    speed = lambda s: {"speedup": s, "cpu_speedup": s}  # noqa: E731
    row = {"model": "mobilenet_v2", "flops": 0.3,
           "prune": {v: {"prune_over_forward": 4.0, "prune_over_forward_cpu": 4.0} for v in ("streams", "streams+lat")},
           "latency": {"dense": speed(1.0), "streams": speed(3.0), "streams+lat": speed(3.2),
                       "tp-uniform@streams": speed(3.5), "tp-global@streams": speed(2.0),
                       "tp-uniform@streams+lat": speed(2.7), "tp-global@streams+lat": speed(2.5)}}
    checks = b.goals([row])["checks"]
    assert checks["mobilenet_v2/0.3/streams"]["tp_best_speedup"] == 3.5  # slower than its match
    assert checks["mobilenet_v2/0.3/streams+lat"]["tp_best_speedup"] == 2.7  # not the other row's 3.5
