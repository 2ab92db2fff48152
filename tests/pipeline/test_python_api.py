"""The Python API's input checks: every calibration batch, user hooks, misspelled options (issue 17)."""

import pytest
import torch

import greedyprune
from greedyprune import UserError

from .conftest import small_cnn


def test_mixed_image_sizes_are_refused_naming_the_batch_and_shapes():
    model = small_cnn()
    batches = [torch.randn(4, 1, 16, 16), torch.randn(4, 1, 16, 16), torch.randn(4, 1, 20, 20)]
    with pytest.raises(UserError, match=r"batch 2 holds images of shape \(1, 20, 20\) but batch 0 holds "
                                        r"\(1, 16, 16\)") as info:
        greedyprune.prune(model, batches, keep=0.5, progress=False)
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="batch 1 has shape"):
        greedyprune.prune(model, [torch.randn(4, 1, 16, 16), torch.randn(0, 1, 16, 16)], keep=0.5, progress=False)


def test_user_hooks_do_not_fire_during_pruning_and_are_not_copied():
    model = small_cnn()
    fired = []
    handles = [model.register_forward_hook(lambda *_: fired.append("root")),
               model[4].register_forward_pre_hook(lambda *_: fired.append("pre")),
               model[4].register_forward_hook(lambda *_: fired.append("post"))]
    x = torch.randn(8, 1, 16, 16)
    pruned, report = greedyprune.prune(model, [x[:4], x[4:]], flops=0.6, refit=None, progress=False)
    assert fired == []  # not while collecting statistics, checking the model, or counting FLOPs
    assert report.params_after < report.params_before
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in pruned.modules())
    with torch.no_grad():
        pruned(x)
    assert fired == []
    with torch.no_grad():
        model(x)  # the user's model keeps its hooks
    assert fired == ["pre", "post", "root"]
    for handle in handles:
        handle.remove()


def test_a_misspelled_option_is_an_error():
    with pytest.raises(UserError, match="unknown option.*keeep"):
        greedyprune.prune(small_cnn(), [torch.randn(4, 1, 16, 16)], keeep=0.5)
