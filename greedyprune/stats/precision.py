"""How the per-batch products of the statistics are computed (``precision``); the sums are always float64.

* ``float64``: the batch's activations in float64, products in float64.
* ``float32`` (default): activations and products in float32 (IEEE: a global
  ``torch.set_float32_matmul_precision("medium")`` set by the user does not reach them).
* ``bfloat16``: on a CPU that multiplies bfloat16 natively (AVX-512 BF16 or AMX), the float32 GEMMs
  run in oneDNN's bfloat16 math mode (torch's ``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``):
  operands stay float32 in memory, the GEMM computes with bfloat16 parts of them and sums in float32,
  about twice the float32 rate here (AMD EPYC, AVX-512 BF16: 120 -> 255 GFLOP/s on a Gram). Measured on
  that machine, one product of two float32 numbers is off by ~1e-5 relative (the parts carry about 16
  bits; a plain rounding to bfloat16 would be off by up to 4e-3), and over the thousands of positions
  a batch gives, the errors of a Gram or cross product average to ~4e-6 of its largest entry, against
  ~7e-7 for float32. Before first use a probe product is checked against float64 (:func:`native_bfloat16`):
  a oneDNN that rounds more coarsely (error above :data:`PROBE_TOLERANCE`) is not used. Elsewhere (other
  CPUs, torch builds without the setting) the products are float32, exactly as with ``float32``; on a GPU
  they are float32 GEMMs as torch's CUDA settings make them (TF32 if the user enabled it), for every
  ``precision`` but ``float64``: this module only sets the CPU's.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Iterator

import torch

PRECISIONS = ("float32", "float64", "bfloat16")
# Largest relative error of the probe product (:func:`native_bfloat16`) for the bfloat16 mode to be used.
PROBE_TOLERANCE = 1e-4


def product_dtype(precision: str) -> torch.dtype:
    """The dtype activations are cast to before the products (bfloat16 rounding happens inside the GEMM)."""
    return torch.float64 if precision == "float64" else torch.float32


def _cpu_matmul_setting():
    """torch's per-backend float32 matmul setting for CPU GEMMs (oneDNN), or None in torch builds without it."""
    mkldnn = getattr(torch.backends, "mkldnn", None)
    setting = getattr(mkldnn, "matmul", None)
    return setting if hasattr(setting, "fp32_precision") else None


@functools.lru_cache(maxsize=None)
def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively, torch lets float32 GEMMs use it, and a probe product in
    that mode (``X X^T``, ``X`` 16 x 4096 of 4/3 -- not a sum of two bfloat16 numbers) is within
    :data:`PROBE_TOLERANCE` of float64."""
    setting = _cpu_matmul_setting()
    if setting is None or not hasattr(torch, "cpu") or not hasattr(torch.cpu, "get_capabilities"):
        return False
    capabilities = torch.cpu.get_capabilities()
    if not (capabilities.get("avx512_bf16", False) or capabilities.get("amx_bf16", False)):
        return False
    probe = torch.full((16, 4096), 4 / 3, dtype=torch.float32)
    exact = float(probe[0, 0].double()) ** 2 * probe.shape[1]
    previous = setting.fp32_precision
    setting.fp32_precision = "bf16"
    try:
        got = (probe @ probe.T).double()
    finally:
        setting.fp32_precision = previous
    return bool(((got - exact).abs().max() / exact) <= PROBE_TOLERANCE)


def effective(precision: str, device: torch.device | str = "cpu") -> str:
    """The precision the products really get on ``device`` (``bfloat16`` off a CPU with native support: float32)."""
    if precision == "bfloat16" and (torch.device(device).type != "cpu" or not native_bfloat16()):
        return "float32"
    return precision


@contextlib.contextmanager
def products_in(precision: str) -> Iterator[None]:
    """Run the enclosed float32 CPU matmuls as ``precision`` asks (module docstring); the previous setting
    is restored on the way out, also after an error. Float64 products and other devices are untouched.
    torch's setting is process-wide: float32 matmuls other threads run meanwhile see it too."""
    setting = _cpu_matmul_setting()
    if setting is None:
        yield
        return
    previous = setting.fp32_precision
    setting.fp32_precision = "bf16" if effective(precision) == "bfloat16" else "ieee"
    try:
        yield
    finally:
        setting.fp32_precision = previous
