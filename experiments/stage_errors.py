"""Where does each method's error go? Stage-by-stage comparison of pruned and original networks.

Prunes a trained model with ``reoptimized`` (which allocates the widths) and the other methods at the
same widths, runs the original and each pruned network side by side on held-out test images, and after
every stage (see :func:`stage_names`: the stem, each residual block / inverted residual, the logits)
reports, over the batch:

* ``error``: ||o - p||^2 / ||o - mean(o)||^2, the relative discrepancy of the pruned output p;
* ``variance_ratio``: ||p - mean(p)||^2 / ||o - mean(o)||^2 (below 1: the pruned features are shrunk);
* ``slope``: <p - mean(p), o - mean(o)> / ||o - mean(o)||^2, the regression slope of p on o;
* ``mean_shift``: the part of ``error`` due to the batch means differing.

A least-squares refit minimises the first number layer by layer, and in doing so shrinks its output
towards the mean (its fitted variance is the target's minus the loss); the numbers show how that
shrinkage reaches the logits. Each method is also measured with its BatchNorm statistics re-estimated
on the calibration images (``<method>+bn``, ``recalibrate_bn``), which undoes shrinkage.
Writes ``experiments/results/stage_errors_<model>.json``.

    python experiments/stage_errors.py --model resnet18-fmnist --flops 0.5
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from greedyprune.data import calibration_batches, get_dataset, subset
from greedyprune.io import save_json
from greedyprune.models import trained_model
from greedyprune.paths import results_dir
from greedyprune.prune import Pruner
from greedyprune.train import evaluate, recalibrate_batchnorm_on


def stage_names(model: torch.nn.Module) -> list[str]:
    """Where the network is cut into stages: qualified module names whose outputs are compared.

    A plain ``nn.Sequential``: each of its layers but the last (whose output is the logits). Otherwise the blocks are the elements of the model's
    top-level ``nn.Sequential`` children, the last child (the classifier) excepted: ResNet's
    ``layer1.0 .. layer4.N``, MobileNet's ``features.0 .. features.N``. ``"stem"`` (the input of the first
    block, when layers run before it) and ``"logits"`` (the model's output) are added by :func:`stage_outputs`.
    """
    if isinstance(model, torch.nn.Sequential):
        return [name for name, _ in model.named_children()][:-1]
    children = list(model.named_children())[:-1]
    return [f"{name}.{inner}" for name, child in children if isinstance(child, torch.nn.Sequential)
            for inner, _ in child.named_children()]


@contextmanager
def recorded(model: torch.nn.Module, names: list[str], stem: bool) -> Iterator[dict[str, torch.Tensor]]:
    """Outputs of the modules ``names`` (and the first one's input as ``"stem"``) while ``model`` runs."""
    seen: dict[str, torch.Tensor] = {}

    def keep(name):
        return lambda module, args, output: seen.setdefault(name, output)

    handles = [model.get_submodule(name).register_forward_hook(keep(name)) for name in names]
    if stem:
        handles.append(model.get_submodule(names[0]).register_forward_pre_hook(
            lambda module, args: seen.setdefault("stem", args[0])))
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def stage_outputs(model: torch.nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Stage name -> ``model``'s output after that stage on ``images``, in forward order, ``"logits"`` last."""
    names = stage_names(model)
    first_child = next(iter(model.named_children()))[0]
    stem = not isinstance(model, torch.nn.Sequential) and not names[0].startswith(f"{first_child}.")
    with recorded(model, names, stem) as seen:
        logits = model(images)
    order = (["stem"] if stem else []) + names
    return {name: seen[name] for name in order if name in seen} | {"logits": logits}


@torch.no_grad()
def stage_errors(original: torch.nn.Module, pruned: torch.nn.Module, images: torch.Tensor) -> list[dict]:
    """The four numbers of the module docstring after every stage (:func:`stage_outputs`), with its name.

    Stages whose output was pruned (so pruned and original differ in shape) get ``None`` for all four.
    """
    rows, pruned_outputs = [], stage_outputs(pruned, images)
    for name, o in stage_outputs(original, images).items():
        p = pruned_outputs[name]
        if o.shape != p.shape:  # a stage whose output channels were pruned (plain chains): nothing to compare
            rows.append({"stage": name} | dict.fromkeys(("error", "variance_ratio", "slope", "mean_shift")))
            continue
        oc, pc = o - o.mean(0), p - p.mean(0)
        spread = oc.pow(2).sum()
        rows.append({"stage": name, "error": float((o - p).pow(2).sum() / spread),
                     "variance_ratio": float(pc.pow(2).sum() / spread),
                     "slope": float((pc * oc).sum() / spread),
                     "mean_shift": float((o.mean(0) - p.mean(0)).pow(2).sum() * o.shape[0] / spread)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18-fmnist")
    parser.add_argument("--flops", type=float, default=0.5)
    parser.add_argument("--methods", default="reoptimized,magnitude,uniform,random")
    parser.add_argument("--calib", type=int, default=512)
    parser.add_argument("--test-images", type=int, default=1000)
    parser.add_argument("--out", default=None, help="JSON path (default: experiments/results/stage_errors_<model>.json)")
    args = parser.parse_args()

    model, _ = trained_model(args.model)
    calibration = calibration_batches("fashion-mnist", args.calib, 64, seed=0)
    test = subset(get_dataset("fashion-mnist", "test"), args.test_images, seed=0)
    images = torch.stack([test[i][0] for i in range(len(test))])
    results = {"model": args.model, "flops_target": args.flops, "calibration_images": args.calib,
               "test_images": len(test), "methods": {}}
    widths = None
    for method in ["reoptimized"] + [m for m in args.methods.split(",") if m != "reoptimized"]:
        budget = {"flops": args.flops} if widths is None else {"widths": widths}
        # refit=None: the stage errors of the selection alone (as recorded), whatever the method's default
        pruned, report = Pruner(model, calibration, method, progress=False, refit=None, **budget).run()
        widths = widths or report.widths()
        for name, net in ((method, pruned), (f"{method}+bn", recalibrate_batchnorm_on(copy.deepcopy(pruned), calibration))):
            rows = stage_errors(model, net, images)
            results["methods"][name] = {"top1": evaluate(net, test)["top1"], "stages": rows}
            print(f"{name:<15} top-1 {100 * results['methods'][name]['top1']:.2f}")
            for key in ("error", "variance_ratio", "slope"):
                print(f"  {key:<15}", " ".join("  - " if r[key] is None else f"{r[key]:.2f}" for r in rows))
    save_json(results, args.out or results_dir() / f"stage_errors_{args.model}.json")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
