"""``greedyprune prune --method ye2020``: the authors' procedure, which needs labelled training data, not a budget."""

from __future__ import annotations

from ..errors import UserError


def run_ye2020(options) -> None:
    """Check the flags, load the *labelled* training split of ``--data``, run :func:`greedyprune.ye2020.ye2020_prune`."""
    from ..data import get_dataset
    from ..distributed import world
    from ..modelfile import check_model_outputs, save
    from ..ye2020 import Ye2020Options, ye2020_prune
    from .common import dataset_options, default_device, load_model, report_skipped
    from .defaults import resolve_data
    from .options import unprefixed, with_flags

    if not options.out:
        raise UserError("--out is required: where to write the pruned model (e.g. pruned.pt)")
    given = [f"--{n}" for n in ("keep", "flops", "params") if getattr(options, n) is not None]
    if given:
        raise UserError(f"--method ye2020 picks its own widths (a layer stops growing when top-1 recovers to "
                        f"--ye-tolerance of its start); drop {' '.join(given)}")
    if options.refit == "global" or options.recalibrate_bn:  # --refit auto: ye2020's default is none
        raise UserError("--method ye2020 fine-tunes between layers instead; drop --refit global / --recalibrate-bn")
    if world()[1] > 1:
        raise UserError("--method ye2020 runs in one process; launch it without torchrun")
    ye = unprefixed(Ye2020Options, options, "ye_", seed=options.seed)
    try:
        ye.validate()
    except UserError as err:
        raise with_flags(UserError("ye_" + str(err)), type(options)) from None
    check_model_outputs(options.out)  # OUT and its report OUT.json, before any work
    model = load_model(options.model, options.weights, options.num_classes, seed=options.seed)
    data = resolve_data(options.data, model, "pruning with ye2020")
    train_set = get_dataset(data, "train", **dataset_options(data, options.skip_bad_images))
    image, label = train_set[0]
    if not isinstance(label, int) and not (hasattr(label, "dim") and label.dim() == 0):
        raise UserError(f"--method ye2020 needs labelled training data; {data} gives no class labels")
    pruned, report = ye2020_prune(model, train_set, ye, run_dir=options.ye_run_dir,
                                  device=options.device or default_device(), progress=options.progress)
    report_skipped(train_set)
    if hasattr(model, "greedyprune_spec"):
        pruned.greedyprune_spec = model.greedyprune_spec
    save(options.out, pruned.cpu(), report)
    print(report.table())
    print(f"saved {options.out}")
