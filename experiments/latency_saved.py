"""CPU latency of saved greedyprune models beside Torch-Pruning at their FLOPs: bench_pipeline's latency run, in-process.

The same measurement as ``bench_pipeline.py``'s latency part (dense model, the given models, Torch-Pruning L1
uniform / global matched to their mean FLOPs, interleaved rounds, batch 8, median thread CPU time and wall
clock), for models saved by ``greedyprune.save`` -- e.g. the same allocation with and without an option.

    python experiments/latency_saved.py cap=r50-cap.pt lat=r50-lat.pt --model resnet50 --round-to 1,16 --rounds 7
"""

from __future__ import annotations

import argparse

import bench_pipeline


class _Result:
    def put(self, value) -> None:
        self.value = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="label=path.pt")
    parser.add_argument("--model", default="resnet50", help="the dense architecture (random weights)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--round-to", default="1", help="Torch-Pruning round_to values, e.g. 1,16")
    args = parser.parse_args()
    paths = dict(item.split("=", 1) for item in args.models)
    settings = argparse.Namespace(size=args.size, batch=16, images=64, threads=args.threads, rounds=args.rounds,
                                  repeat=args.repeat, round_to=args.round_to, model=args.model)
    result = _Result()
    bench_pipeline.latency_run(settings, args.model, paths, result)
    for key, row in result.value.items():
        if isinstance(row, dict) and "cpu_s" in row:
            print(f"{key:<14} FLOPs {row['flops_fraction']:.3f}  wall {row['latency_s'] * 1e3:6.1f} ms "
                  f"{row['speedup']:.2f}x  CPU {row['cpu_s'] * 1e3:6.1f} ms {row['cpu_speedup']:.2f}x")


if __name__ == "__main__":
    main()
