"""The whole ``ye2020`` procedure: layers from input to output, each grown then fine-tuned; resumable.

Per layer (see :mod:`.select` for the growth and :mod:`.layers` for masks and surgery): cache the check
subset's activations at the layer's input, grow the chosen set on fresh labelled mini-batches, remove
the other channels (folding the uniform weight ``N/n`` into the model), then fine-tune the whole
network for ``finetune_epochs`` (released: 0.1 epoch, SGD lr 2.5e-3, no momentum, weight decay 4e-5).
After each layer the model and the outcomes are written to ``run_dir/ye2020.pt``; a rerun continues
after the last finished layer. An optional final fine-tune (released: 150 epochs) ends the run.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Iterator

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..data.loaders import batch_loader
from ..errors import UserError
from ..io import load_checkpoint, save_torch
from ..metrics import count_flops, count_parameters
from ..pipeline.networks import Networks
from ..report import GroupReport, PruneReport
from ..surgery import Layout
from ..train import TrainConfig, train
from ..train.augment import augment_batch
from ..train.checkpoint import resolve_device
from ..walk.execute import positions
from ..partial import CutRunner
from .order import layers_in_order
from .layers import Mask
from .options import Ye2020Options
from .select import LayerOutcome, grow_layer

CHECKPOINT = "ye2020.pt"


def fresh_batches(dataset: Dataset, batch_size: int, seed: int, augment: str,
                  device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless labelled mini-batches: seeded shuffled passes over ``dataset``, each batch augmented."""
    generator, step = torch.Generator().manual_seed(seed), 0
    while True:
        order = torch.randperm(len(dataset), generator=generator).tolist()
        for x, y in batch_loader(dataset, order, batch_size, drop_last=True):
            yield augment_batch(x.to(device), augment, seed, step), torch.as_tensor(y).to(device)
            step += 1


def check_subset(dataset: Dataset, images: int, batch: int, device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Every ``len/images``-th training image (the released code: every 200th), in batches."""
    stride = max(1, len(dataset) // images)
    xs, ys = zip(*batch_loader(dataset, list(range(0, len(dataset), stride))[:images], batch))
    return [x.to(device) for x in xs], [torch.as_tensor(y).to(device) for y in ys]


def _fine_tune(model: nn.Module, dataset: Dataset, options: Ye2020Options, epochs: float, seed: int,
               final: bool) -> None:
    if epochs <= 0:
        return
    config = (TrainConfig(epochs=epochs, batch_size=256, lr=0.1, momentum=0.9, nesterov=True, weight_decay=4e-5,
                          schedule="cosine", label_smoothing=0.1, augment=options.augment, seed=seed) if final else
              TrainConfig(epochs=epochs, batch_size=options.batch_size, lr=options.finetune_lr, momentum=0.0,
                          nesterov=False, weight_decay=options.weight_decay, schedule="constant",
                          augment=options.augment, seed=seed))
    train(model, dataset, config, progress=False)
    model.eval()


def ye2020_prune(model: nn.Module, train_set: Dataset, options: Ye2020Options | None = None, *,
                 run_dir: str | Path | None = None, device: str | None = None,
                 progress: bool = True) -> tuple[nn.Module, PruneReport]:
    """Prune ``model`` by the released procedure of Ye et al. (ICML 2020); returns ``(pruned, report)``.

    Needs *labelled training data* (``train_set`` yields ``(image, label)``): channels are scored by the
    cross-entropy of the whole network. The widths are the procedure's own (its stop rule), not a budget.
    """
    options = (options or Ye2020Options()).validate()
    device = resolve_device(device or "cpu")
    example = check_subset(train_set, 1, 1, device)[0][0]
    networks = Networks.build(model, device, example)
    original, pruned, nodes = networks.original, networks.pruned, networks.nodes
    pos, layout = positions(nodes), Layout(pruned)
    layers = layers_in_order(original, nodes, networks.groups, options.streams, pos)
    if not layers:
        raise UserError(f"{type(model).__name__} has no channel groups ye2020 can prune")
    names = [layer.name for layer in layers]
    done: list[LayerOutcome] = []
    path = Path(run_dir) / CHECKPOINT if run_dir is not None else None
    if path is not None and path.exists():
        saved = load_checkpoint(path)
        if saved.get("options") != dataclasses.asdict(options) or saved.get("names") != names:
            raise UserError(f"{path} holds a ye2020 run with other options or another model; use another run_dir")
        done = [LayerOutcome(**o) for o in saved["done"]]
        for layer, outcome in zip(layers, done):  # replay the surgery (shapes and layout), then the weights
            if len(outcome.kept) < layer.width:
                layer.materialize(pruned, layout, torch.tensor(outcome.kept), layer.width / len(outcome.kept))
        pruned.load_state_dict(saved["state_dict"])
        pruned.to(device).eval()
    check = check_subset(train_set, options.check_images, 256, device)
    bar = tqdm(total=len(layers), initial=len(done), desc="ye2020", disable=not progress)
    for index, layer in enumerate(layers):
        if index < len(done):
            continue
        seed = options.seed * 1000 + index
        runner = CutRunner(pruned, nodes, pos, layer.start)
        mask = Mask(torch.ones(layer.width, device=device))
        handles = layer.install(pruned, layout, mask)
        try:
            cuts = [runner.values(x) for x in check[0]]
            outcome = grow_layer(runner, mask, layer.name, layer.kind, layer.width,
                                 fresh_batches(train_set, options.batch_size, seed, options.augment, device),
                                 (cuts, check[1]), options.candidates, options.tolerance, options.precheck,
                                 torch.Generator().manual_seed(seed), bar if progress else None, options.stack)
        finally:
            for handle in handles:
                handle.remove()
        del cuts
        if len(outcome.kept) < layer.width:
            layer.materialize(pruned, layout, torch.tensor(outcome.kept), layer.width / len(outcome.kept))
        tuning, cpu = time.perf_counter(), time.process_time()
        _fine_tune(pruned, train_set, options, options.finetune_epochs, seed, final=False)
        outcome.finetune_seconds = time.perf_counter() - tuning
        outcome.finetune_cpu_seconds = time.process_time() - cpu
        done.append(outcome)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_torch({"format": "greedyprune-ye2020/1", "options": dataclasses.asdict(options), "names": names,
                        "done": [dataclasses.asdict(o) for o in done],
                        "state_dict": {k: v.detach().cpu() for k, v in pruned.state_dict().items()}}, path)
        bar.update(1)
    bar.close()
    final = time.perf_counter()
    _fine_tune(pruned, train_set, options, options.final_epochs, options.seed, final=True)
    seconds = sum(o.seconds + o.finetune_seconds for o in done) + time.perf_counter() - final
    widths = {layer.name: layer.width for layer in layers}
    return pruned.eval(), _report(original, pruned, example, done, widths, options, seconds)


def _report(original, model, example, done, widths_before, options, seconds) -> PruneReport:
    groups = [GroupReport(o.name, widths_before[o.name], len(o.kept), 1 - o.final_top1 / max(o.start_top1, 1e-12),
                          o.seconds, note=f"ye2020: {o.steps} steps, {o.checks} checks; check top-1 "
                                         f"{o.start_top1:.4f} -> {o.final_top1:.4f} (the error column is the "
                                         "relative top-1 drop on the check subset)", kept=o.kept)
              for o in done]
    return PruneReport(method="ye2020", budget={"tolerance": options.tolerance}, groups=groups,
                       params_before=count_parameters(original), params_after=count_parameters(model),
                       flops_before=count_flops(original, example), flops_after=count_flops(model, example),
                       calibration_images=options.check_images, input_shape=list(example.shape[1:]),
                       device=str(next(model.parameters()).device), seed=options.seed, seconds=seconds,
                       options={"ye2020": dataclasses.asdict(options),
                                "selection_seconds": sum(o.seconds for o in done),
                                "finetune_seconds": sum(o.finetune_seconds for o in done),
                                "selection_cpu_seconds": sum(o.cpu_seconds for o in done),
                                "finetune_cpu_seconds": sum(o.finetune_cpu_seconds for o in done)})
