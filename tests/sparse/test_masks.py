import pytest
import torch
from torch import nn

from greedyprune.errors import UserError
from greedyprune.io import load_checkpoint, save_torch
from greedyprune.sparse import (apply_masks, get_masks, load_masked_state_dict, mask_module, mask_optimizer_state,
                                prunable_weights, raw_weight, remove_masks, weight_shapes)
from greedyprune.sparse.select import random_masks


def tiny(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10), nn.ReLU(),
                         nn.Linear(10, 3))


def half_masks(model, seed=1):
    shapes = weight_shapes(model)
    g = torch.Generator().manual_seed(seed)
    return random_masks(shapes, {n: max(1, s.numel() // 2) for n, s in shapes.items()}, g)


def test_masked_weights_are_zero_in_forward_and_gradient():
    model = tiny()
    masks = half_masks(model)
    apply_masks(model, masks)
    for name, module in prunable_weights(model).items():
        assert torch.equal(module.weight[~masks[name]], torch.zeros(int((~masks[name]).sum())))
    x = torch.randn(5, 1, 8, 8)
    model(x).square().sum().backward()
    for name, mask in masks.items():
        grad = raw_weight(model, name).grad
        assert torch.equal(grad[~mask], torch.zeros_like(grad[~mask]))
        assert grad[mask].abs().sum() > 0


@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True),
    lambda p: torch.optim.Adam(p, lr=1e-2),
    lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
])
def test_masked_weights_stay_zero_through_optimizer_steps(make_opt):
    model = tiny()
    opt = make_opt(model.parameters())  # built before masking: same parameter objects
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    for _ in range(3):  # dense steps first: optimizer state is non-zero everywhere
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    masks = half_masks(model)
    apply_masks(model, masks)
    mask_optimizer_state(opt, model)
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for name, mask in masks.items():
        raw = raw_weight(model, name).detach()
        assert torch.equal(raw[~mask], torch.zeros_like(raw[~mask]))
        for value in opt.state[raw_weight(model, name)].values():
            if value.shape == raw.shape:
                assert torch.equal(value[~mask], torch.zeros_like(value[~mask]))
        assert int(prunable_weights(model)[name].weight.count_nonzero()) <= int(mask.sum())


def test_masks_save_and_load_with_weights_only(tmp_path):
    model = tiny()
    apply_masks(model, half_masks(model))
    save_torch(model.state_dict(), tmp_path / "m.pt")
    fresh = tiny(seed=5)
    load_masked_state_dict(fresh, load_checkpoint(tmp_path / "m.pt"))
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(model(x), fresh(x))
    for name, mask in get_masks(model).items():
        assert torch.equal(get_masks(fresh)[name], mask)
    with pytest.raises(UserError):
        load_masked_state_dict(nn.Sequential(nn.Linear(2, 2)), load_checkpoint(tmp_path / "m.pt"))


def test_loading_an_unmasked_state_unmasks_a_masked_model():
    source = tiny(seed=3)
    target = tiny()
    masks = half_masks(target)
    masks.pop("5.weight")  # the last layer stays unmasked in the target, as in the state
    apply_masks(target, masks)
    partly = tiny(seed=4)
    apply_masks(partly, {"0.weight": masks["0.weight"]})  # a state with one mask, the other layers plain
    for state, masked in [(source.state_dict(), set()), (partly.state_dict(), {"0.weight"})]:
        load_masked_state_dict(target, state)
        assert set(get_masks(target)) == masked
        x = torch.randn(3, 1, 8, 8)
        reference = source if not masked else partly
        assert torch.equal(target(x), reference(x))
        for name, module in prunable_weights(target).items():
            assert torch.equal(module.weight, prunable_weights(reference)[name].weight), name
        apply_masks(target, masks)  # masked again for the next case


def test_remove_masks_bakes_zeros_and_reapply_replaces():
    model = tiny()
    masks = half_masks(model)
    apply_masks(model, masks)
    apply_masks(model, masks)  # re-applying replaces the buffer instead of stacking parametrizations
    assert len(prunable_weights(model)["0.weight"].parametrizations.weight) == 1
    x = torch.randn(2, 1, 8, 8)
    before = model(x)
    remove_masks(model)
    assert get_masks(model) == {}
    assert torch.equal(before, model(x))
    assert int(model[0].weight.count_nonzero()) == int(masks["0.weight"].sum())


def test_dense_gradient_capture_matches_unmasked_model():
    model, dense = tiny(), tiny()
    masks = half_masks(model)
    apply_masks(model, masks)
    with torch.no_grad():  # same effective weights in both
        for name, module in prunable_weights(dense).items():
            module.weight.copy_(prunable_weights(model)[name].weight)
    for name in masks:
        mask_module(model, name).capture_grad = True
    x = torch.randn(4, 1, 8, 8)
    model(x).sum().backward()
    dense(x).sum().backward()
    for name, module in prunable_weights(dense).items():
        torch.testing.assert_close(mask_module(model, name).dense_grad, module.weight.grad)


def test_bad_masks_are_user_errors():
    model = tiny()
    with pytest.raises(UserError, match="does not match"):
        apply_masks(model, {"nope.weight": torch.ones(1)})
    with pytest.raises(UserError, match="shape"):
        apply_masks(model, {"0.weight": torch.ones(2, 2)})
    with pytest.raises(UserError, match="only 0 and 1"):
        apply_masks(model, {"5.weight": torch.full((3, 10), 0.5)})
