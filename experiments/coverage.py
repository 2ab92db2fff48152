"""Which torchvision classification families greedyprune prunes (issue 15), through the public API only.

For every family (the 18 CNN families of torchvision, plus ViT as a stated exception or a success) a
user's model -- ``torchvision.models.get_model(NAME, weights=None)``, random weights, BatchNorm statistics
randomised, *no* greedyprune spec -- is pruned with ``greedyprune.prune(model, images, flops=F, refit=None)`` on
random images at the model's input size, each family in a fresh process (with a time limit, so a hang or
a crash is a row, not the end of the run). Per family:

* prunes: yes, or the one-line reason it was refused (or how it failed);
* output shape: the pruned model's output has the dense model's shape;
* load round trip: ``greedyprune.save`` then ``greedyprune.load`` (no extra arguments) gives the same
  state dict and the same outputs as the pruned model;
* FLOPs kept, parameters kept (``greedyprune.metrics``), prune time, number of channel groups.

Writes ``OUT/coverage.json`` (resumable: families that pruned are not run again unless ``--rerun``) and
``OUT/coverage.md`` (the Markdown table for README).

    python experiments/coverage.py                               # all families, 224 px (299 Inception V3)
    python experiments/coverage.py --families ResNet,VGG --size 64 --images 8 --out /tmp/coverage   # smoke run
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import queue as queue_module
import re
import resource
import tempfile
import time
import warnings
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
# (family, torchvision builder); "ViT" is the stated exception-or-success, not one of the 18 CNN families
FAMILIES = [("ResNet", "resnet50"), ("Wide ResNet", "wide_resnet50_2"), ("ResNeXt", "resnext50_32x4d"),
            ("VGG", "vgg16"), ("AlexNet", "alexnet"), ("SqueezeNet", "squeezenet1_1"), ("DenseNet", "densenet121"),
            ("GoogLeNet", "googlenet"), ("Inception V3", "inception_v3"), ("MobileNetV2", "mobilenet_v2"),
            ("MobileNetV3 small", "mobilenet_v3_small"), ("MobileNetV3 large", "mobilenet_v3_large"),
            ("MNASNet", "mnasnet1_0"), ("EfficientNet", "efficientnet_b0"), ("EfficientNet V2", "efficientnet_v2_s"),
            ("RegNet X", "regnet_x_400mf"), ("RegNet Y", "regnet_y_400mf"), ("ShuffleNetV2", "shufflenet_v2_x1_0"),
            ("ConvNeXt", "convnext_tiny"), ("ViT", "vit_b_16")]
# EfficientNet and EfficientNet V2 are one family of the 18 ("EfficientNet (+V2)")
FAMILY_OF = {"EfficientNet V2": "EfficientNet"}
EXCEPTIONS = {"ViT"}


def one_line(err: BaseException) -> str:
    text = (str(err).strip().splitlines() or [""])[0][:240]
    return text if type(err).__name__ == "UserError" else f"{type(err).__name__}: {text}"


def user_model(name: str, seed: int = 0) -> torch.nn.Module:
    """What a user brings: ``torchvision.models.get_model(name, weights=None)``, random BN statistics, eval mode."""
    import torchvision
    from random_models import randomize_batchnorm
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GoogLeNet / Inception's init_weights notice
        model = torchvision.models.get_model(name, weights=None)
    return randomize_batchnorm(model)


def input_size(model: torch.nn.Module, name: str, size: int | None) -> int:
    """``--size``, else the model's input size; a vision transformer's fixed ``image_size`` always wins."""
    if isinstance(getattr(model, "image_size", None), int):
        return model.image_size
    if size:
        return size
    from greedyprune.models import input_shape
    return input_shape(name)[1]


def check(model: torch.nn.Module, batches: list[torch.Tensor], flops: float, folder: str) -> dict:
    """Prune ``model`` at ``flops`` through the public API; the coverage row's measurements (raises on refusal)."""
    import greedyprune
    from greedyprune.metrics import count_flops, count_parameters
    example = batches[0][:1]
    with torch.no_grad():
        dense_out = model(example)
    start = time.perf_counter()
    # refit=None: the rows record selection + surgery (what the table's prune times measured); the default
    # global refit of greedy methods would add its own passes (and skips itself where no nn.Linear runs)
    pruned, report = greedyprune.prune(model, batches, flops=flops, refit=None, progress=False)
    seconds = time.perf_counter() - start
    row = {"prunes": True, "prune_s": seconds, "groups": len(report.groups),
           "flops_kept": count_flops(pruned, example) / count_flops(model, example),
           "params_kept": count_parameters(pruned) / count_parameters(model)}
    with torch.no_grad():
        out = pruned.eval()(example)
    row["output_shape_ok"] = tuple(out.shape) == tuple(dense_out.shape)
    path = os.path.join(folder, "pruned.pt")
    try:
        greedyprune.save(path, pruned, report)
        loaded = greedyprune.load(path)
        with torch.no_grad():
            again = loaded.eval()(example)
        a, b = pruned.state_dict(), loaded.state_dict()
        same_state = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        row["load_equal"] = bool(same_state and torch.equal(out, again))
        if not row["load_equal"]:
            row["load_reason"] = "state dicts differ" if not same_state else \
                f"outputs differ by {float((out - again).abs().max()):.2e}"
    except Exception as err:  # save/load refused or failed: recorded, the row stands
        row["load_equal"], row["load_reason"] = False, one_line(err).replace(path, "pruned.pt")
    return row


def run_family(args, family: str, name: str, out) -> None:
    """Fresh process: one family's row onto ``out``."""
    torch.set_num_threads(args.threads)
    if args.memory_gb:  # a family that needs more fails in its row instead of waking the machine's OOM killer
        limit = int(args.memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    row = {"family": family, "model": name}
    try:
        model = user_model(name)
        size = input_size(model, name, args.size)
        row["input"] = size
        images = torch.randn(args.images, 3, size, size, generator=torch.Generator().manual_seed(0))
        with tempfile.TemporaryDirectory() as folder:
            row.update(check(model, list(images.split(args.batch)), args.flops, folder))
    except MemoryError:
        row.update({"prunes": False, "reason": f"out of memory (more than the {args.memory_gb:g} GB --memory-gb limit)"})
    except Exception as err:
        reason = one_line(err)
        if "can't allocate memory" in str(err):
            size = re.search(r"allocate (\d+) bytes", str(err))
            asked = f": one allocation of {int(size.group(1)) / 2**30:.1f} GB" if size else ""
            reason = f"out of memory under the {args.memory_gb:g} GB --memory-gb limit{asked}"
        row.update({"prunes": False, "reason": reason})
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put(row)


def in_child(args, family: str, name: str) -> dict:
    """``run_family`` in a fresh process; a hang (``--timeout``) or a death (crash, abort) becomes a failed row."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    child = context.Process(target=run_family, args=(args, family, name, out))
    child.start()
    deadline = time.monotonic() + args.timeout
    row = None
    while row is None and time.monotonic() < deadline:
        try:
            row = out.get(timeout=2)
        except queue_module.Empty:
            if not child.is_alive():  # died without a result (killed, aborted on a failed allocation, ...)
                try:
                    row = out.get(timeout=2)  # unless the result was still in the pipe
                except queue_module.Empty:
                    break
    if row is None and child.is_alive():
        child.kill()
        row = {"family": family, "model": name, "prunes": False, "reason": f"no result within {args.timeout:.0f} s"}
    child.join()
    if row is None:
        row = {"family": family, "model": name, "prunes": False,
               "reason": f"the process died (exit code {child.exitcode}; e.g. out of memory under the "
                         f"{args.memory_gb:g} GB --memory-gb limit)"}
    return row


def markdown(rows: list[dict], flops: float, images: int) -> str:
    def pct(value):
        return f"{value:.1%}" if isinstance(value, float) else "--"

    lines = [f"| family | model | input | prunes at flops={flops} | output shape | load round trip | FLOPs kept | "
             f"params kept | prune time ({images} images) |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        prunes = "yes" if row.get("prunes") else f"no: {row.get('reason', '?')}"
        shape = {True: "right", False: "WRONG"}.get(row.get("output_shape_ok"), "--")
        load = {True: "equal", False: f"no: {row.get('load_reason', '?')}"}.get(row.get("load_equal"), "--")
        seconds = f"{row['prune_s']:.1f} s" if "prune_s" in row else "--"
        lines.append(f"| {row['family']} | `{row['model']}` | {row.get('input', '--')} | {prunes} | {shape} | {load} | "
                     f"{pct(row.get('flops_kept'))} | {pct(row.get('params_kept'))} | {seconds} |")
    return "\n".join(lines) + "\n"


def summary(rows: list[dict]) -> str:
    """``N of 18 CNN families prune`` (a family counts when every one of its models prunes, right shape, equal load)."""
    ok: dict[str, bool] = {}
    for row in rows:
        if row["family"] in EXCEPTIONS:
            continue
        family = FAMILY_OF.get(row["family"], row["family"])
        good = bool(row.get("prunes") and row.get("output_shape_ok") and row.get("load_equal"))
        ok[family] = ok.get(family, True) and good
    vit = [r for r in rows if r["family"] in EXCEPTIONS]
    text = f"{sum(ok.values())} of {len(ok)} CNN families prune (right output shape, equal load round trip)"
    if vit:
        text += "; ViT: " + ("prunes" if vit[0].get("prunes") else f"refused: {vit[0].get('reason', '?')}")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="all", help="comma-separated family names (default: all)")
    parser.add_argument("--flops", type=float, default=0.5)
    parser.add_argument("--images", type=int, default=32, help="calibration images")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=None, help="input size for every family (default: each model's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per family before it is a failed row")
    parser.add_argument("--memory-gb", type=float, default=10.0,
                        help="address-space limit of each family's process, GB (0: none; torch itself maps ~3.5)")
    parser.add_argument("--rerun", action="store_true", help="run families already in OUT/coverage.json again")
    parser.add_argument("--out", default=str(RESULTS), help="folder for coverage.json and coverage.md")
    args = parser.parse_args()
    from greedyprune.io import atomic_write, save_json
    wanted = None if args.families == "all" else {f.strip() for f in args.families.split(",")}
    unknown = sorted((wanted or set()) - {f for f, _ in FAMILIES})
    if unknown:
        raise SystemExit(f"unknown families {unknown}; choose from {', '.join(f for f, _ in FAMILIES)}")
    path = Path(args.out) / "coverage.json"
    settings = {"flops": args.flops, "images": args.images, "size": args.size}
    done, others = {}, {}
    if path.exists():
        import json
        saved = json.loads(path.read_text())
        if saved.get("settings") == settings:
            # rows of families not asked for stay as they are; without --rerun, families that pruned are
            # kept and failures are tried again
            others = {row["family"]: row for row in saved.get("rows", [])}
            if not args.rerun:
                done = {family: row for family, row in others.items() if row.get("prunes")}
    result = {"settings": settings, "threads": args.threads, "torch": torch.__version__,
              "machine": platform.machine(), "load_average_before": os.getloadavg(), "rows": []}
    for family, name in FAMILIES:
        if wanted is not None and family not in wanted:
            if family in others:
                result["rows"].append(others[family])
            continue
        row = done.get(family) or in_child(args, family, name)
        result["rows"].append(row)
        status = "prunes" if row.get("prunes") else f"refused/failed: {row.get('reason')}"
        print(f"{family:<18} {name:<20} {status}" + (f"; FLOPs {row['flops_kept']:.1%}, params {row['params_kept']:.1%}, "
                                                      f"{row['prune_s']:.1f} s, shape "
                                                      f"{'right' if row['output_shape_ok'] else 'WRONG'}, load "
                                                      f"{'equal' if row['load_equal'] else row.get('load_reason')}"
                                                      if row.get("prunes") else ""), flush=True)
        result["load_average_after"] = os.getloadavg()
        result["summary"] = summary(result["rows"])
        save_json(result, path)  # after every family: a killed run resumes
    table = markdown(result["rows"], args.flops, args.images)
    with atomic_write(Path(args.out) / "coverage.md", "w") as handle:
        handle.write(table + "\n" + result["summary"] + "\n")
    print(result["summary"])
    print(f"wrote {path} and {Path(args.out) / 'coverage.md'}")


if __name__ == "__main__":
    main()
