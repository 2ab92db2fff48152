"""``greedyprune eval``: top-1, parameters, FLOPs and measured latency of a model."""

from __future__ import annotations

from dataclasses import dataclass

from .options import opt

MAX_LATENCY_BATCH = 1024  # copies of one image timed together; more is refused before allocating

HELP = "evaluate a model: top-1 on held-out data, parameters, FLOPs, CPU/GPU latency"


@dataclass
class Options:
    model: str | None = opt(None, "model file (pruned or trained) or a model name (resnet50, timm:NAME, ...)",
                            positional=True)
    weights: str | None = opt(None, "weights file for a model name")
    num_classes: int | None = opt(None, "classes of a model name (default: the model's, or what --weights holds)")
    data: str | None = opt(None, "dataset spec; its test split (val for imagefolder) is used (default: the model's "
                                 "dataset; ImageNet-shaped models without --data: random images, with a warning)")
    limit: int = opt(0, "evaluate on a seeded subset of this many images (0: all)")
    batch_size: int = opt(256, "evaluation batch size", between=(1, None))
    latency_batch: int = opt(8, "batch size for the latency measurement (at most 1024)", between=(1, MAX_LATENCY_BATCH))
    device: str = opt("cpu", "cpu or cuda")
    skip_bad_images: bool = opt(False, "imagefolder data: skip (and count) unreadable images instead of stopping")


def run(options: Options) -> None:
    import json

    from ..data import get_dataset, num_classes, subset
    from ..errors import UserError
    from ..metrics import count_flops, count_parameters, measure_latency
    from ..stats.check import checked_forward
    from ..train import evaluate, resolve_device
    from .common import dataset_options, eval_split, load_model, report_skipped
    from .defaults import data_options, resolve_data

    if options.limit < 0:
        raise UserError(f"--limit must be at least 1 image (0: all), got {options.limit}")
    device = resolve_device(options.device)
    model = load_model(options.model, options.weights, options.num_classes).to(device)
    data = resolve_data(options.data, model, "evaluating")
    dataset = get_dataset(data, eval_split(data), **dataset_options(data, options.skip_bad_images),
                          **data_options(data, model, fit_labels=options.data is None))
    if options.limit > len(dataset):  # an explicit value the data cannot meet is refused, never clamped
        raise UserError(f"--limit {options.limit} asks for more images than {data} has ({len(dataset)}); "
                        f"use --limit {len(dataset)} or fewer (0: all)")
    if options.limit:
        dataset = subset(dataset, options.limit, 0)
    example = dataset[0][0].unsqueeze(0).to(device)
    out = checked_forward(model.eval(), example, "the evaluation images")
    classes = num_classes(dataset)
    if out.ndim != 2 or out.shape[1] < classes:
        raise UserError(f"the model has {out.shape[-1]} outputs but {data} has {classes} classes; evaluate it on "
                        "data with the classes it was built for (--num-classes sets a model name's classes)")
    metrics = evaluate(model, dataset, options.batch_size, device)
    report_skipped(dataset)
    result = {"model": options.model, "data": data, "images": metrics["n"], "top1": metrics["top1"],
              "loss": metrics["loss"], "params": count_parameters(model), "flops": count_flops(model, example),
              "latency_s": measure_latency(model, example, options.latency_batch), "latency_batch": options.latency_batch,
              "device": str(device)}
    print(f"top-1 {100 * result['top1']:.2f}% on {result['images']} images; params {result['params']:,}; "
          f"FLOPs {result['flops']:,}; latency {1e3 * result['latency_s']:.1f} ms / batch of {options.latency_batch}")
    print(json.dumps(result))
