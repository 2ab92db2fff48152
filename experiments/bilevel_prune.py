"""Accuracy vs sparsity of BiP (as its released code runs it) against magnitude pruning + fine-tuning and IMP.

All methods start from the same cached trained network (``greedyprune.models.trained_model``) and get
the same training budget: ``--epochs`` passes of weight steps (batch 128) after pruning starts.

* ``magnitude-ft``: global magnitude mask at the target sparsity, then fine-tuning for the whole budget
  with the shared loop (SGD + Nesterov momentum, cosine, weight decay 5e-4, label smoothing 0.1 as in
  the pretraining recipe).
* ``imp-ft``: iterative magnitude pruning from the trained network: ``--imp-rounds`` global rounds
  with densities ``d^(r/R)``, each followed by fine-tuning for budget/R (same recipe); pruned weights
  never return (``greedyprune.sparse.prune_surviving``).
* ``bip``: :func:`greedyprune.baselines.bip.bip_prune`, first-order, as BiP's released code: the
  implicit term ``lr2 (grad_s l)^2`` with lr2 = 1e-4, SGD momentum 0.9 on both levels, the weights'
  step cosine-annealed, the scores' step x0.1 at 75% and x0.01 at 90%, weight decay 1e-4 on both.
  Each weight step also draws a score batch (twice the samples of a fine-tuning step).
* ``bip-gamma``: the same with the derived implicit term ``G m G / gamma_IG``, gamma_IG tuned on the
  validation split (BiP's step sizes from ``bip``'s tuning).
* ``frozen-mask``: control -- ``bip`` with score step 0: the magnitude mask never changes and only the
  lower level trains. ``bip`` minus this control is what learning the mask adds with the same optimiser.
* ``bip-mrbo`` / ``bip-vrbo`` (optional, ``--methods``): the MRBO / VRBO solvers with the reference
  implicit term and their own update rules (no momentum, no schedules).

Step sizes: ``--tune`` evaluates a grid per method at 95% sparsity on the *validation* split (first
seed) and merges the winners into results/bilevel_prune_tuned.json; the main run reads them and runs
every seed of ``--seeds`` (the trained network is the same, a seed changes the minibatch draws and the
data order). Test accuracy is reported only by the main run. Each row also records
``overlap_magnitude`` (the share of its kept weights the global magnitude mask keeps too) and, for
masks learned by a method, ``mask_ft_test_acc``: that mask on the dense trained weights fine-tuned like
``magnitude-ft``. ``term_scale`` records ||implicit term|| / ||direct term|| of the score gradient at the
start (trained weights, magnitude mask, one batch of 512) for each form. Resumable: every run lives
under ``--out``.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/bilevel_prune.py --tune
    OMP_NUM_THREADS=1 .venv/bin/python experiments/bilevel_prune.py --seeds 0,1,2
    OMP_NUM_THREADS=1 .venv/bin/python experiments/bilevel_prune.py --quick   # one sparsity, 0.2 epochs
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import time
from pathlib import Path

import torch

from greedyprune.baselines.bip import BiPOptions, bip_problem, bip_prune
from greedyprune.data import get_dataset
from greedyprune.io import atomic_write, save_json
from greedyprune.models import trained_model
from greedyprune.sparse import apply_masks, get_masks, prunable_weights, raw_weight
from greedyprune.sparse.select import global_topk, prune_surviving
from greedyprune.train import TrainConfig, evaluate, train

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("magnitude-ft", "imp-ft", "bip", "bip-gamma", "frozen-mask", "bip-mrbo", "bip-vrbo")
MAIN = "magnitude-ft,imp-ft,bip,bip-gamma,frozen-mask"
LEARNS_MASK = ("imp-ft", "bip", "bip-gamma", "bip-mrbo", "bip-vrbo")  # these get the mask+FT control
BASE = {  # fixed settings of the BiP-family methods (BiPOptions defaults otherwise: BiP's released code)
    "bip": {"solver": "first-order"},
    "bip-gamma": {"solver": "first-order", "implicit_term": "inverse-gamma"},
    "frozen-mask": {"solver": "first-order", "lr_scores": 0.0},
    "bip-mrbo": {"solver": "mrbo", "mrbo_c": 10.0},
    "bip-vrbo": {"solver": "vrbo"},
}
DEPENDS = {"bip-gamma": "bip"}  # bip-gamma takes bip's tuned lr_weights / lr_scores
DEFAULTS = {"magnitude-ft": {"lr": 0.1}, "imp-ft": {"lr": 0.1}, "bip": {}, "bip-gamma": {"implicit_gamma": 1.0},
            "frozen-mask": {}, "bip-mrbo": {"lr_scores": 20.0, "lr_weights": 0.2},
            "bip-vrbo": {"lr_scores": 1.0, "lr_weights": 0.05}}
GRID = {  # small grids: the machine is shared (a BiP run of 2 epochs took ~8 min under load)
    "magnitude-ft": [{"lr": x} for x in (0.1, 0.4)],
    "imp-ft": [{"lr": x} for x in (0.03, 0.1)],
    # the paper's alpha = 0.01 / beta = 0.1; the CIFAR configs' weight lr 0.1; a larger score step
    "bip": [{"lr_weights": 0.01, "lr_scores": 0.1}, {"lr_weights": 0.1, "lr_scores": 0.1},
            {"lr_weights": 0.1, "lr_scores": 10.0}],
    "bip-gamma": [{"implicit_gamma": g} for g in (1e-2, 1.0, 100.0)],
    "frozen-mask": [{"lr_weights": a} for a in (0.01, 0.1)],
    "bip-mrbo": [{"lr_weights": a, "lr_scores": b} for a, b in ((0.2, 20.0), (0.8, 60.0), (1.6, 60.0))],
    "bip-vrbo": [{"lr_weights": a, "lr_scores": b} for a, b in ((0.05, 0.3), (0.05, 3.0), (0.1, 10.0))],
}
VERSION = 2  # the round-2 methods; a tuned file of another version is ignored


def finetune_config(epochs: float, lr: float, seed: int) -> TrainConfig:
    """The fine-tuning recipe of magnitude-ft / imp-ft / the mask+FT control (batch 128: one weight step per batch)."""
    return TrainConfig(epochs=epochs, batch_size=128, optimizer="sgd", lr=lr, momentum=0.9, nesterov=True,
                       weight_decay=5e-4, schedule="cosine", label_smoothing=0.1, seed=seed, eval_every=10 ** 9,
                       checkpoint_every=200)


def magnitude_masks(model, sparsity: float) -> dict:
    scores = {n: m.weight.detach().abs() for n, m in prunable_weights(model).items()}
    total = sum(s.numel() for s in scores.values())
    return global_topk(scores, total - int(round(sparsity * total)))


def run_magnitude(dense, train_set, sparsity, epochs, lr, seed, out: Path) -> dict:
    model = copy.deepcopy(dense)
    apply_masks(model, magnitude_masks(model, sparsity))
    start = time.perf_counter()
    train(model, train_set, finetune_config(epochs, lr, seed), run_dir=out, progress=False)
    return {"model": model, "seconds": time.perf_counter() - start, "samples": int(epochs * len(train_set))}


def run_imp(dense, train_set, sparsity, epochs, lr, seed, rounds: int, out: Path) -> dict:
    model = copy.deepcopy(dense)
    total = sum(m.weight.numel() for m in prunable_weights(model).values())
    start = time.perf_counter()
    masks = {n: torch.ones_like(m.weight, dtype=torch.bool) for n, m in prunable_weights(model).items()}
    for r in range(1, rounds + 1):
        keep = total - int(round((1 - (1 - sparsity) ** (r / rounds)) * total))
        alive = sum(int(m.sum()) for m in masks.values())
        scores = {n: raw_weight(model, n).detach().abs() for n in masks}
        masks = prune_surviving(scores, masks, (alive - keep) / alive, scope="global")
        apply_masks(model, masks)
        train(model, train_set, finetune_config(epochs / rounds, lr, seed + r), run_dir=out / f"round_{r}",
              progress=False)
        masks = get_masks(model)
    return {"model": model, "seconds": time.perf_counter() - start, "samples": int(epochs * len(train_set))}


def run_bip(dense, train_set, sparsity, epochs, params, seed, out: Path) -> dict:
    options = BiPOptions(sparsity=sparsity, epochs=epochs, seed=seed, **params)
    model, record = bip_prune(dense, train_set, options, out=out, progress=False)
    return {"model": model, "seconds": record["seconds"], "samples": record["samples"], "steps": record["steps"]}


def term_scales(dense, train_set, sparsity: float, params: dict) -> dict:
    """||implicit|| / ||direct|| of the score gradient at the start (trained weights, magnitude mask, 512 images)."""
    out = {}
    forms = {"reference": {}, "inverse-gamma (1e-3, the old default)": {"implicit_term": "inverse-gamma",
                                                                          "gamma": 1e-3}}
    if "implicit_gamma" in params:
        forms[f"inverse-gamma ({params['implicit_gamma']:g}, tuned)"] = {
            "implicit_term": "inverse-gamma", "implicit_gamma": params["implicit_gamma"]}
    for name, extra in forms.items():
        problem = bip_problem(dense, train_set, BiPOptions(sparsity=sparsity, **extra))
        scores, theta = problem.initial()
        batch = problem.sample(512, torch.Generator().manual_seed(0))
        full, _ = problem.bilinear_hypergradient(scores, theta, batch)
        problem.implicit_term = "none"
        direct, _ = problem.bilinear_hypergradient(scores, theta, batch)
        d = torch.cat([x.reshape(-1) for x in direct])
        out[name] = float(torch.cat([(a - b).reshape(-1) for a, b in zip(direct, full)]).norm() / d.norm())
    return out


def run_method(method, dense, train_set, sparsity, epochs, params, seed, imp_rounds, out: Path) -> dict:
    if method == "magnitude-ft":
        return run_magnitude(dense, train_set, sparsity, epochs, params["lr"], seed, out)
    if method == "imp-ft":
        return run_imp(dense, train_set, sparsity, epochs, params["lr"], seed, imp_rounds, out)
    return run_bip(dense, train_set, sparsity, epochs, params, seed, out)


def measured(method, dense, splits, sparsity, epochs, params, seed, imp_rounds, out: Path, eval_on: str,
             mask_ft_lr: float | None = None) -> dict:
    """Run (or reload) one method at one sparsity; record accuracy on ``eval_on`` and the exact sparsity.

    With ``mask_ft_lr``, also the mask-quality control ``mask_ft_<eval_on>_acc``: the method's final
    mask on the *dense trained* weights, fine-tuned with the magnitude-ft recipe for the same budget --
    the same optimiser for every mask, so differences are due to which weights the mask keeps.
    A finished run is reloaded from its folder (the loop and BiP resume instantly).
    """
    done = out / "measured.json"
    row = json.loads(done.read_text()) if done.exists() else None
    if row is not None and (row["params"] != params or row["target_sparsity"] != sparsity):
        raise SystemExit(f"{done} holds a run with other settings; delete {out} or choose another --out")
    key = f"mask_ft_{eval_on}_acc"
    if row is not None and (mask_ft_lr is None or key in row):
        return row
    result = run_method(method, dense, splits["train"], sparsity, epochs, params, seed, imp_rounds, out)
    model = result.pop("model")
    masks = get_masks(model)
    if row is None:
        kept, total = sum(int(m.sum()) for m in masks.values()), sum(m.numel() for m in masks.values())
        reference = magnitude_masks(dense, sparsity)
        both = sum(int((masks[n] & reference[n].to(masks[n].device)).sum()) for n in masks)
        row = {"method": method, "target_sparsity": sparsity, "sparsity": 1 - kept / total, "nonzero": kept,
               "params": params, "seed": seed, **result, "overlap_magnitude": both / kept,
               f"{eval_on}_acc": evaluate(model, splits[eval_on], 1000)["top1"]}
    if mask_ft_lr is not None:
        control = copy.deepcopy(dense)
        apply_masks(control, masks)
        train(control, splits["train"], finetune_config(epochs, mask_ft_lr, seed), run_dir=out / "mask_ft",
              progress=False)
        row[key] = evaluate(control, splits[eval_on], 1000)["top1"]
    save_json(row, done)
    return row


def fingerprint(model) -> str:
    """Short hash of a model's weights."""
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:10]


def settings_key(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]


def summary(rows) -> dict:
    """method -> sparsity -> seed means of test / mask+FT accuracy, their per-seed values, seconds, overlap."""
    out: dict = {}
    for r in rows:
        out.setdefault(r["method"], {}).setdefault(f"{r['target_sparsity']:g}", []).append(r)
    def mean(values):
        return sum(values) / len(values)
    def control(rs):  # the mask+FT control; magnitude-ft and frozen-mask keep the magnitude mask (= magnitude-ft)
        values = [r.get("mask_ft_test_acc") for r in rs]
        return {} if None in values else {"mask_ft_test_acc": mean(values), "mask_ft_test_acc_per_seed": values}
    return {method: {sp: {"seeds": [r["seed"] for r in rs],
                          "test_acc": mean([r["test_acc"] for r in rs]), "test_acc_per_seed": [r["test_acc"] for r in rs],
                          **control(rs), "seconds": mean([r["seconds"] for r in rs]),
                          "seconds_range": [min(r["seconds"] for r in rs), max(r["seconds"] for r in rs)],
                          "overlap_magnitude": mean([r["overlap_magnitude"] for r in rs])}
                     for sp, rs in by.items()} for method, by in out.items()}


def plot(rows, dense_acc, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    table = summary(rows)
    seeds = sorted({r["seed"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    panels = [("test_acc", "each method as run (equal sample budget)"),
              ("mask_ft_test_acc", "its mask on the dense weights + magnitude-ft's fine-tuning")]
    for ax, (key, title) in zip(axes, panels):
        for method in METHODS:
            if method not in table or key not in next(iter(table[method].values())):
                continue
            pts = sorted((float(sp), 100 * v[key], 100 * min(v[key + "_per_seed"]), 100 * max(v[key + "_per_seed"]))
                         for sp, v in table[method].items())
            xs, ys = [100 * p[0] for p in pts], [p[1] for p in pts]
            ax.errorbar(xs, ys, yerr=[[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]], marker="o",
                        capsize=3, label=method)
        ax.axhline(100 * dense_acc, color="grey", linestyle="--", label="dense (trained)")
        ax.set_xlabel("sparsity of Linear weights (%)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"test accuracy (%), mean of seeds {seeds} (bars: range)")
    axes[0].legend(fontsize=8)
    fig.suptitle("LeNet-300-100 on Fashion-MNIST, from the trained network, equal budgets of weight steps")
    fig.tight_layout()
    with atomic_write(path) as handle:
        fig.savefig(handle, format="png", dpi=120)


def full_params(method: str, chosen: dict, point: dict | None = None) -> dict:
    """The settings of ``method``: its fixed BASE, its dependency's tuned steps, then its own (tuned) point."""
    params = dict(BASE.get(method, {}))
    if method in DEPENDS:
        params.update({k: v for k, v in chosen[DEPENDS[method]].items() if k in ("lr_weights", "lr_scores")})
    params.update(chosen[method] if point is None else point)
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet300-100")
    parser.add_argument("--sparsities", default="0.8,0.9,0.95,0.98")
    parser.add_argument("--epochs", type=float, default=2.0, help="budget per method: epochs of weight steps")
    parser.add_argument("--imp-rounds", type=int, default=4)
    parser.add_argument("--seeds", default="0,1,2", help="comma list; --tune uses the first")
    parser.add_argument("--methods", default=MAIN, help=f"comma list of {', '.join(METHODS)}")
    parser.add_argument("--out", default="runs/bilevel_prune", help="run folders (resume)")
    parser.add_argument("--tune", action="store_true", help="choose step sizes on the validation split at 95%%")
    parser.add_argument("--quick", action="store_true", help="one sparsity (0.9), 0.2 epochs, no result files")
    parser.add_argument("--finished-only", action="store_true",
                        help="train nothing: write the result files from the runs already finished under --out and "
                             "list the missing ones (for a run that did not complete)")
    parser.add_argument("--term-scales", action="store_true",
                        help="only measure ||implicit|| / ||direct|| of the score gradient at the start, per form and "
                             "sparsity (results/bilevel_prune_term_scale.json); no training")
    args = parser.parse_args()
    torch.set_num_threads(1)
    methods = [m for m in METHODS if m in args.methods.split(",")]  # dependencies first
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    splits = {s: get_dataset("fashion-mnist", split=s) for s in ("train-minus-val", "val", "test")}
    splits["train"] = splits.pop("train-minus-val")
    print(f"loading (or training once) the cached trained {args.model}", flush=True)
    dense, dense_acc = trained_model(args.model, progress=False)
    dense_id = fingerprint(dense)  # the trained weights themselves (cache folders may be renamed)
    out = Path(args.out) / f"{args.model}-{dense_id}"
    tuned_path = RESULTS / "bilevel_prune_tuned.json"
    tuned = json.loads(tuned_path.read_text()) if tuned_path.exists() else None
    stale = tuned is not None and (tuned.get("dense_fingerprint") != dense_id or tuned.get("version") != VERSION
                                   or tuned.get("epochs") != args.epochs)
    if stale:
        if not (args.tune or args.quick):
            raise SystemExit(f"{tuned_path} was tuned for another model, version or budget; run --tune again")
        tuned = None
    if args.tune:
        tuned = tuned or {"version": VERSION, "sparsity": 0.95, "epochs": args.epochs, "grid": {}, "chosen": {}}
        tuned.update(dense_model=dense.greedyprune_info["path"], dense_fingerprint=dense_id, seed=seeds[0])
        for method in methods:  # merged: methods not tuned now keep their entries
            chosen = {**DEFAULTS, **tuned["chosen"]}
            rows = [measured(method, dense, splits, 0.95, args.epochs, full_params(method, chosen, point), seeds[0],
                             args.imp_rounds, out / "tune" / f"{method}_{settings_key(full_params(method, chosen, point))}",
                             "val") for point in GRID[method]]
            tuned["grid"][method] = rows
            best = max(range(len(rows)), key=lambda i: rows[i]["val_acc"])
            tuned["chosen"][method] = GRID[method][best]
            print(method, [(r["params"], round(100 * r["val_acc"], 2), round(r["seconds"])) for r in rows], flush=True)
            save_json(tuned, tuned_path)
        return
    chosen = {**DEFAULTS, **(tuned["chosen"] if tuned else {})}
    params = {m: full_params(m, chosen) for m in methods}
    sparsities = [0.9] if args.quick else [float(s) for s in args.sparsities.split(",")]
    if args.term_scales:
        gamma = full_params("bip-gamma", chosen)
        scales = {f"{sp:g}": term_scales(dense, splits["train"], sp, gamma) for sp in sparsities}
        print(json.dumps(scales, indent=1))
        save_json({"model": args.model, "dense_fingerprint": dense_id, "batch": 512, "term_scale": scales},
                  RESULTS / "bilevel_prune_term_scale.json")
        return
    epochs = 0.2 if args.quick else args.epochs
    rows, missing = [], []
    for seed in seeds:
        for sparsity in sparsities:
            for method in methods:
                folder = (out / ("quick" if args.quick else "main")
                          / f"{method}_{sparsity:g}_{epochs:g}ep_{settings_key(params[method])}_s{seed}")
                if args.finished_only:
                    done = json.loads((folder / "measured.json").read_text()) if (folder / "measured.json").exists() else {}
                    if not done or (method in LEARNS_MASK and "mask_ft_test_acc" not in done):
                        missing.append({"method": method, "sparsity": sparsity, "seed": seed})
                        print(f"seed {seed} {method:16s} not finished", flush=True)
                        continue
                row = measured(method, dense, splits, sparsity, epochs, params[method], seed, args.imp_rounds,
                               folder, "test", mask_ft_lr=chosen["magnitude-ft"]["lr"] if method in LEARNS_MASK else None)
                rows.append(row)
                control = f"  mask+FT control {100 * row['mask_ft_test_acc']:.2f}%" if "mask_ft_test_acc" in row else ""
                print(f"seed {seed} {method:16s} sparsity {100 * row['sparsity']:.2f}%  test {100 * row['test_acc']:.2f}%  "
                      f"{row['seconds']:.0f} s  {row['samples']} samples  {row.get('steps', '-')} steps  "
                      f"overlap {100 * row['overlap_magnitude']:.1f}%{control}", flush=True)
    if args.quick:
        return
    scales = ("not measured by --finished-only: see bilevel_prune_term_scale.json" if args.finished_only else
              {f"{sp:g}": term_scales(dense, splits["train"], sp, params.get("bip-gamma", {})) for sp in sparsities})
    result = {"model": args.model, "dense_test_acc": dense_acc, "epochs_budget": epochs,
              "dense_model": dense.greedyprune_info["path"], "dense_fingerprint": dense_id,
              "train_samples": len(splits["train"]), "imp_rounds": args.imp_rounds, "seeds": seeds,
              "params": params, "summary": summary(rows), "rows": rows, "term_scale": scales,
              "not_finished": missing,
              "torch_threads": torch.get_num_threads()}
    save_json(result, RESULTS / "bilevel_prune.json")
    plot(rows, dense_acc, RESULTS / "bilevel_prune.png")


if __name__ == "__main__":
    main()
