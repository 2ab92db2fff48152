"""``precision="bfloat16"``: the statistics' products from bfloat16-rounded operands where the CPU has them natively.

On a CPU without native bfloat16 the option must give exactly the float32 products; with it, the rounding must
really happen (a value between two bfloat16 numbers is read as the nearer one) and the statistics must stay
within 1e-4 of float64 on activations like a network's.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from greedyprune.cli.main import main
from greedyprune.errors import UserError
from greedyprune.modelfile import load_report
from greedyprune.stats import ConsumerStatistics
from greedyprune.stats.columns import add_gram
from greedyprune.stats.consumer import output_columns
from greedyprune.stats.precision import (
    PROBE_TOLERANCE,
    _cpu_matmul_setting,
    effective,
    native_bfloat16,
    products_in,
)


def gram_in(precision: str, x: torch.Tensor) -> torch.Tensor:
    acc = torch.zeros(x.shape[0], x.shape[0], dtype=torch.float64)
    with products_in(precision):
        add_gram(acc, x)
    return acc


def test_bfloat16_mode_is_used_where_native_within_its_tolerance_and_float32_elsewhere():
    # 4/3 in float32 has 24 significant bits: no sum of two bfloat16 numbers, so the mode cannot be exact on it
    x = torch.full((16, 2048), 4 / 3, dtype=torch.float32)
    exact = float(x[0, 0].double()) ** 2 * x.shape[1]
    ieee, reduced = gram_in("float32", x), gram_in("bfloat16", x)
    assert ((ieee - exact).abs().max() / exact) < 1e-5  # float32 sums of equal terms do not cancel their errors
    if native_bfloat16():
        assert effective("bfloat16") == "bfloat16"
        assert not torch.equal(reduced, ieee)  # the mode was in force: it computes differently from IEEE float32
        assert ((reduced - exact).abs().max() / exact) < PROBE_TOLERANCE
    else:
        assert effective("bfloat16") == "float32"
        assert torch.equal(reduced, ieee)


def test_float32_products_are_ieee_whatever_the_global_setting_and_the_setting_is_restored():
    x = torch.full((16, 2048), 4 / 3, dtype=torch.float32)
    exact = gram_in("float32", x)
    before = torch.get_float32_matmul_precision()
    setting = _cpu_matmul_setting()
    try:
        torch.set_float32_matmul_precision("medium")  # a user's global choice: it must not reach float32 products
        previous = setting.fp32_precision if setting is not None else None
        assert torch.equal(gram_in("float32", x), exact)
        if setting is not None:
            assert setting.fp32_precision == previous
        with pytest.raises(RuntimeError, match="inside"):
            with products_in("bfloat16"):
                raise RuntimeError("inside")
        if setting is not None:  # restored after the error
            assert setting.fp32_precision == previous
    finally:
        torch.set_float32_matmul_precision(before)


@pytest.mark.parametrize("kernel, stride, padding", [(1, 1, 0), (3, 1, 1), (3, 2, 1)])
def test_bfloat16_statistics_are_within_1e4_of_float64(kernel, stride, padding):
    torch.manual_seed(0)
    conv = nn.Conv2d(24, 16, kernel, stride=stride, padding=padding)
    stats = {p: ConsumerStatistics(conv, product_dtype=torch.float64 if p == "float64" else torch.float32)
             for p in ("float64", "float32", "bfloat16")}
    for _ in range(3):  # post-ReLU activations with a mean: centring cancels part of the uncentred Gram
        x = torch.relu(torch.randn(8, 24, 16, 16) + 0.3)
        t = output_columns(conv, conv(x).detach() + 0.1 * torch.randn(8, 16, 16 // stride, 16 // stride))
        for precision, s in stats.items():
            with products_in(precision):
                s.add_batch(x, t)
    reference = stats["float64"].statistics()
    for precision in ("float32", "bfloat16"):
        got = stats[precision].statistics()
        for name in ("gram", "cross"):
            error = (getattr(got, name) - getattr(reference, name)).norm() / getattr(reference, name).norm()
            assert error < (1e-6 if precision == "float32" else 1e-4), (precision, name, float(error))
    if native_bfloat16():  # the mode was in force: bfloat16 differs from float32 by more than float32 from float64
        gap = (stats["bfloat16"].statistics().gram - stats["float32"].statistics().gram).norm()
        assert gap > (stats["float32"].statistics().gram - reference.gram).norm()


def test_prune_with_bfloat16_products_from_python_and_the_command_line(tmp_path, capsys):
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    batches = list(torch.randn(32, 3, 32, 32).split(16))
    from greedyprune import prune
    runs = {p: prune(model, batches, keep=0.5, streams=True, precision=p, progress=False, refit=None)
            for p in ("float32", "bfloat16")}
    assert runs["bfloat16"][1].options["products"] == effective("bfloat16")
    assert runs["float32"][1].options["products"] == "float32"
    errors = {p: [g.error for g in report.groups] for p, (_, report) in runs.items()}
    assert [g.channels_after for g in runs["bfloat16"][1].groups] == [g.channels_after for g in runs["float32"][1].groups]
    assert torch.allclose(torch.tensor(errors["bfloat16"]), torch.tensor(errors["float32"]), rtol=1e-2, atol=1e-6)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        a, b = runs["float32"][0](x), runs["bfloat16"][0](x)
    assert ((a - b).norm() / a.norm()) < 1e-3
    torch.save(model.state_dict(), tmp_path / "w.pth")
    out = tmp_path / "p.pt"
    assert main(["prune", "--model", "resnet18", "--weights", str(tmp_path / "w.pth"), "--data", "random:3x32x32",
                 "--calib", "16", "--keep", "0.5", "--refit", "none", "--no-progress", "--precision", "bfloat16",
                 "--out", str(out)]) == 0, capsys.readouterr().err
    options = load_report(out)["options"]
    assert (options["precision"], options["products"]) == ("bfloat16", effective("bfloat16"))


def test_an_unknown_precision_is_refused_in_one_line():
    with pytest.raises(UserError, match="precision must be one of float32, float64, bfloat16, got 'bf16'"):
        from greedyprune import Pruner
        Pruner(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3)), [torch.randn(2, 3, 8, 8)],
               keep=0.5, precision="bf16")


def test_report_table_says_which_products_ran():
    from greedyprune.report import PruneReport
    common = dict(method="reoptimized", budget={}, groups=[], params_before=1, flops_before=1)
    table = {asked_used: PruneReport(**common, options={"precision": asked_used[0], "products": asked_used[1]}).table()
             for asked_used in [("float32", "float32"), ("bfloat16", "bfloat16"), ("bfloat16", "float32"),
                                ("float64", "float64")]}
    assert "products" not in table[("float32", "float32")]
    assert table[("bfloat16", "bfloat16")].endswith("; bfloat16 products")
    assert "precision bfloat16 asked, float32 products used" in table[("bfloat16", "float32")]
    assert table[("float64", "float64")].endswith("; float64 products")


def test_bfloat16_is_reported_as_float32_off_the_cpu():
    assert effective("bfloat16", "cuda") == "float32" and effective("bfloat16", torch.device("meta")) == "float32"
    assert effective("float64", "cuda") == "float64" and effective("float32", "cpu") == "float32"
    assert effective("bfloat16", "cpu") == ("bfloat16" if native_bfloat16() else "float32")
