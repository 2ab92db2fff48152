"""Prune time / one calibration forward for two code versions, alternating, each run in a fresh process.

Usage: python experiments/ab_prune_time.py MODEL:FLOPS:internal|streams[,...] OUT.json IMAGES ROUNDS BEFORE AFTER
(BEFORE and AFTER: directories holding a ``greedyprune`` package and ``experiments/``, e.g. from
``git archive COMMIT greedyprune experiments | tar -x -C DIR``). Forward = the fastest of 3 no-grad passes
over the calibration batches (as in bench_pipeline.py), the global refit off (``refit=None``, as there; both
versions must have the option); wall and CPU (``process_time``) ratios are printed, the CPU one being less
sensitive to a loaded machine.
"""
import json, subprocess, sys, os

from greedyprune.io import save_json
CHILD = r'''
import sys, time, json, torch
sys.path.insert(0, "experiments")
torch.set_num_threads(1)
import greedyprune
from random_models import randomized
name, flops, streams = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "streams"
model = randomized(name)
batches = list(torch.randn(int(sys.argv[4]), 3, 224, 224, generator=torch.Generator().manual_seed(0)).split(16))
times, cpu = [], []
with torch.no_grad():
    model(batches[0])
    for _ in range(3):
        t, c = time.perf_counter(), time.process_time()
        for b in batches: model(b)
        times.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
t, c = time.perf_counter(), time.process_time()
pruned, report = greedyprune.prune(model, batches, flops=flops, streams=streams, progress=False, refit=None)
p, pc = time.perf_counter() - t, time.process_time() - c
kept = {g.name: g.channels_after for g in report.groups}
print(json.dumps({"forward_cpu_s": min(cpu), "prune_cpu_s": pc, "cpu_ratio": pc / min(cpu), "forward_s": min(times), "prune_s": p, "ratio": p / min(times), "flops_kept": report.flops_after / report.flops_before, "widths": kept}))
'''
versions = [("after", sys.argv[6]), ("before", sys.argv[5])] * int(sys.argv[4])
configs = [c.split(":") for c in sys.argv[1].split(",")]
out = []
for name, flops, variant in configs:
    for label, path in versions:
        env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1")
        r = subprocess.run([sys.executable, "-c", CHILD, name, flops, variant, sys.argv[3]], cwd=path, env=env, capture_output=True, text=True)
        if r.returncode:
            print(label, name, r.stderr[-2000:], flush=True); continue
        res = json.loads(r.stdout.strip().splitlines()[-1])
        out.append({"version": label, "model": name, "flops": flops, "variant": variant, **res})
        print(f"{label:6s} {name} flops {flops} {variant}: forward {res['forward_s']:.2f} s, prune {res['prune_s']:.1f} s = {res['ratio']:.2f}x forward (FLOPs kept {res['flops_kept']:.3f}); CPU time: forward {res['forward_cpu_s']:.2f} s, prune {res['prune_cpu_s']:.1f} s = {res['cpu_ratio']:.2f}x", flush=True)
save_json(out, sys.argv[2])
