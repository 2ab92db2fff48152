"""Decay curves and bound checks on the hidden layers of a small MLP trained on Fashion-MNIST.

Trains a 784-256-128-64-10 ReLU MLP for 4 epochs (about 3 minutes on 2 busy CPU cores: 185 s measured), then for
each hidden layer l builds the
group statistics of the consumer layer l+1 over a calibration set of S images:

    candidate i = hidden unit i,  c_i = W_{l+1}[:, i] * h_i  (an (outputs x S) matrix, flattened),
    G = (H'H) o (W'W)   (Hadamard product; H = (S x N) activations, W = W_{l+1}),
    T = sum_i c_i (the layer's output without bias): b = G 1, E = 1'G1   (the centroid case),
    magnitude scores = L1 norm of unit i's incoming weights (W_l[i, :]).

Writes ``experiments/results/analysis_mlp/`` (curves.json, bounds.json, report.md, plots/). A second
report, ``.../upstream_pruned/``, analyses layer 2 after layer 1 was pruned to 25% by re-optimised
greedy selection: the candidates see the *pruned* activations while the target stays the original
output, so the target is no longer the centroid and may leave the hull (the check must say so).

    OMP_NUM_THREADS=2 .venv/bin/python experiments/analysis_mlp_layers.py [--epochs 4] [--calib 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from greedyprune.analysis import GroupStatistics, analyze_groups  # noqa: E402
from greedyprune.data import get_dataset  # noqa: E402
from greedyprune.io import load_checkpoint, save_json, save_torch  # noqa: E402
from greedyprune.selection import greedy_select_gram  # noqa: E402

OUT = ROOT / "experiments" / "results" / "analysis_mlp"
WIDTHS = (784, 256, 128, 64, 10)


def load(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened normalised images (S, 784) and labels of a Fashion-MNIST split (greedyprune's loader:
    ``$GREEDYPRUNE_DATA``, the Debian package, or torchvision's download)."""
    data = get_dataset("fashion-mnist", split)
    return data.images.reshape(len(data), -1).float(), data.labels.long()


def build_mlp() -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(WIDTHS) - 1):
        layers.append(nn.Linear(WIDTHS[i], WIDTHS[i + 1]))
        if i < len(WIDTHS) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs_max: int, seconds: float, seed: int) -> dict:
    """Adam, batch 128, ``epochs_max`` epochs (about 3 minutes on 2 busy cores), stopped early at ``seconds``."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start, steps, epochs = time.perf_counter(), 0, 0
    while time.perf_counter() - start < seconds and epochs < epochs_max:
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            idx = perm[i:i + 128]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if time.perf_counter() - start >= seconds:
                break
        epochs += 1
    return {"seconds": round(time.perf_counter() - start, 1), "steps": steps, "epochs_started": epochs}


def linears(model: nn.Sequential) -> list[nn.Linear]:
    return [m for m in model if isinstance(m, nn.Linear)]


@torch.no_grad()
def hidden_activations(model: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """Post-ReLU activations of each hidden layer, float64, (S, N_l)."""
    out, h = [], x
    for layer in list(model)[:-1]:
        h = layer(h)
        if isinstance(layer, nn.ReLU):
            out.append(h.double())
    return out


def group(name: str, h: torch.Tensor, consumer: nn.Linear, producer: nn.Linear, depth: int,
          h_target: torch.Tensor | None = None) -> GroupStatistics:
    """Statistics of the units feeding ``consumer``; target = consumer output (no bias) on ``h_target``."""
    w = consumer.weight.detach().double()          # (out, N)
    ww = w.T @ w                                    # W'W (N, N)
    gram = (h.T @ h) * ww
    if h_target is None:                            # centroid case: T = sum_i c_i
        cross, energy = gram.sum(1), gram.sum()
    else:
        cross = ((h.T @ h_target) * ww).sum(1)
        energy = ((h_target.T @ h_target) * ww).sum()
    scores = producer.weight.detach().double().abs().sum(1)
    return GroupStatistics(name, gram, cross, energy, scores=scores, depth=depth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4, help="training epochs (about 3 minutes on 2 cores)")
    parser.add_argument("--seconds", type=float, default=3600.0, help="training time cap")
    parser.add_argument("--calib", type=int, default=2000, help="calibration images (from the test split)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--save-model", type=Path, default=None, help="also save the trained weights here")
    parser.add_argument("--load-model", type=Path, default=None, help="skip training: load these weights")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    x_train, y_train = load("train")
    x_test, y_test = load("test")
    model = build_mlp()
    if args.load_model is not None:  # {"state": state_dict, "log": training log} from --save-model
        saved = load_checkpoint(args.load_model)
        model.load_state_dict(saved["state"])
        log = {**saved["log"], "loaded_from": str(args.load_model)}
    else:
        log = train(model, x_train, y_train, args.epochs, args.seconds, args.seed)
        if args.save_model is not None:
            save_torch({"state": model.state_dict(), "log": log}, args.save_model)
    model.eval()
    with torch.no_grad():
        log["test_top1"] = round(float((model(x_test).argmax(1) == y_test).float().mean()), 4)
    print(f"trained: {log}")
    calib = x_test[torch.randperm(len(x_test), generator=torch.Generator().manual_seed(1))[:args.calib]]
    hs = hidden_activations(model, calib)
    lin = linears(model)
    groups = [group(f"hidden{l + 1} ({WIDTHS[l + 1]} units)", hs[l], lin[l + 1], lin[l], depth=l + 1)
              for l in range(len(hs))]
    log["dead_units"] = [int((h.abs().sum(0) == 0).sum()) for h in hs]
    start = time.perf_counter()
    report = analyze_groups(groups, args.out, title=f"Fashion-MNIST MLP {'-'.join(map(str, WIDTHS))}: hidden layers")
    log["analysis_seconds"] = round(time.perf_counter() - start, 1)

    # layer 2 after layer 1 was pruned to 25% by re-optimised greedy selection (target stays original)
    g1 = groups[0]
    keep = WIDTHS[1] // 4
    sel = greedy_select_gram(g1.gram, g1.cross, g1.energy, keep, method="reoptimized")
    idx, coef = sel.kept_channels()
    with torch.no_grad():
        w2, b2 = lin[1].weight.double(), lin[1].bias.double()
        z2 = (hs[0][:, idx] * coef) @ w2[:, idx].T + b2
        h2_pruned = torch.relu(z2)
    upstream = [group(f"hidden2 | hidden1 pruned to {keep}", h2_pruned, lin[2], lin[1], depth=2, h_target=hs[1])]
    start = time.perf_counter()
    report2 = analyze_groups(upstream, args.out / "upstream_pruned",
                             title="Layer 2 of the MLP after layer 1 was pruned to 25% (target = original output)")
    log["upstream_analysis_seconds"] = round(time.perf_counter() - start, 1)
    log["layer1_pruned_error"] = float(sel.final_error)

    summary = {"training": log, "summary": report.summary, "upstream_summary": report2.summary, "groups": []}
    for res in report.groups + report2.groups:
        fits = res.fits
        row = {"name": res.curves.name, "N": res.curves.size}
        for method in ("reoptimized", "reoptimized-simplex", "uniform"):
            if method in fits and fits[method].exponential is not None:
                f = fits[method]  # default range n = 1 .. N/2; "sensitivity": n <= N/4, N/2, 3N/4 and all
                row[method] = {"exp_rate": f.exponential.rate, "exp_r2": f.exponential.r2, "power_p": f.power.rate,
                               "power_r2": f.power.r2, "better": f.better, "n_range": list(f.n_range),
                               "verdicts": f.verdicts, "sensitivity": f.sensitivity}
        if "uniform" in res.pick_fits and res.pick_fits["uniform"].power is not None:
            f = res.pick_fits["uniform"]
            row["uniform_per_pick"] = {"power_p": f.power.rate, "power_r2": f.power.r2, "exp_rate": f.exponential.rate,
                                       "exp_r2": f.exponential.r2, "better": f.better, "n_range": list(f.n_range),
                                       "verdicts": f.verdicts}
        row["uniform_distinct_after_N_picks"] = int(res.curves.curves["uniform"].distinct[res.curves.size - 1])
        row["checks"] = {c.bound: c.status for c in res.checks}
        row["informative"] = [c.bound for c in res.checks if c.informative]
        row["resolution"] = {c.bound: c.resolution for c in res.checks if c.status == "pass"}
        row["min_bound"] = {c.bound: c.min_bound for c in res.checks}
        row["below_one_from"] = {c.bound: c.below_one_from for c in res.checks}
        row["r2_over_DT2"] = res.constants.r2_over_DT2
        row["mu2"] = res.constants.mu2
        row["aff_dist2_over_E"] = res.constants.aff_dist2 / res.constants.energy
        summary["groups"].append(row)
    save_json(summary, args.out / "run.json")
    print(f"wrote {args.out}/report.md, run.json and plots/; summary: {report.summary}")


if __name__ == "__main__":
    main()
