"""CPU time of one 3x3 convolution (batch 8, stride 1, same padding, C in = C out) against its width C (issue 15).

Why ``round_to`` helps on CPU: PyTorch runs these convs through oneDNN in a channel-blocked layout
(``aBcd16b`` on AVX-512: blocks of 16 channels, ``aBcd8b`` on AVX2), padding the last block, so the
time follows ``ceil(C / block)`` rather than ``C``. Prints, per resolution, each width's median time,
GFLOP/s and its time relative to the next multiple of 16 (1.0 = a width costs what the padded width does).
1 thread, interleaved rounds (every width once per round), median over rounds of medians; the
thread's CPU time (``time.thread_time``) beside the wall clock, for loaded machines.

    python experiments/bench_conv_widths.py                        # 56, 28, 14, 7 px around the ResNet-50 widths
    python experiments/bench_conv_widths.py --sizes 28 --widths 56-80 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import time

import torch


def timed(conv: torch.nn.Module, x: torch.Tensor, repeat: int) -> tuple[float, float]:
    wall, cpu = [], []
    with torch.no_grad():
        conv(x)
        for _ in range(repeat):
            start, start_cpu = time.perf_counter(), time.thread_time()
            conv(x)
            wall.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
    return sorted(wall)[len(wall) // 2], sorted(cpu)[len(cpu) // 2]


def widths_of(spec: str) -> list[int]:
    """``"56-80"`` -> 56..80; ``"40,48"`` -> [40, 48]."""
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="56,28,14,7", help="feature-map sizes (px)")
    parser.add_argument("--widths", default="", help="widths, e.g. 56-80 or 40,48 (default: a span around each "
                                                     "size's ResNet-50 width)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    spans = {56: "24-72", 28: "56-80", 14: "120-144", 7: "248-264"}
    cases = {}
    for size in (int(s) for s in args.sizes.split(",")):
        for c in widths_of(args.widths or spans.get(size, "56-80")):
            cases[(size, c)] = (torch.nn.Conv2d(c, c, 3, padding=1, bias=False).eval(),
                                torch.randn(args.batch, c, size, size))
    times: dict[tuple[int, int], list[tuple[float, float]]] = {k: [] for k in cases}
    load = os.getloadavg()[0]
    for _ in range(args.rounds):
        for key, (conv, x) in cases.items():
            times[key].append(timed(conv, x, args.repeat))
    median = {k: (sorted(w for w, _ in v)[len(v) // 2], sorted(c for _, c in v)[len(v) // 2]) for k, v in times.items()}
    print(f"torch {torch.__version__}, 1 thread, batch {args.batch}, {args.rounds} rounds x {args.repeat} passes; "
          f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"{'size':>4} {'C':>5} {'wall ms':>8} {'CPU ms':>8} {'GFLOP/s':>8} {'CPU time / time at next multiple of 16':>40}")
    for (size, c), (wall, cpu) in median.items():
        flops = 2 * args.batch * c * c * 9 * size * size
        padded = median.get((size, 16 * -(-c // 16)))
        relative = f"{cpu / padded[1]:.2f}" if padded else "-"
        print(f"{size:>4} {c:>5} {wall * 1e3:>8.2f} {cpu * 1e3:>8.2f} {flops / cpu / 1e9:>8.1f} {relative:>40}")


if __name__ == "__main__":
    main()
