"""What a pruning run reports: per group and in total; JSON beside the model and a terminal table."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field

import torch


@dataclass
class GroupReport:
    name: str
    channels_before: int
    channels_after: int
    error: float           # relative reconstruction error of the consumer's output (after bias correction)
    seconds: float
    errors: list[float] = field(default_factory=list)  # the selection's error after 1..k picks
    note: str | None = None
    kept: list[int] | None = None   # the kept channels' indices in the original group (None: all kept)
    damping: float = 0.0            # absolute ridge lambda added to diag(G) in this group's selection/refit


@dataclass
class PruneReport:
    method: str
    budget: dict
    groups: list[GroupReport]
    params_before: int = 0
    params_after: int = 0
    flops_before: int = 0
    flops_after: int = 0
    calibration_images: int = 0
    input_shape: list[int] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"
    seed: int = 0
    options: dict = field(default_factory=dict)
    refit: dict | None = None  # greedyprune.refit.RefitReport as a dict (None: no refit)
    refit_skipped: str | None = None  # why the refit asked for (by default or explicitly) did not run
    versions: dict = field(default_factory=lambda: versions())

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PruneReport":
        data = dict(data)
        data["groups"] = [GroupReport(**g) for g in data.get("groups", [])]
        return cls(**data)

    def widths(self) -> dict[str, int]:
        return {g.name: g.channels_after for g in self.groups}

    def table(self) -> str:
        """Readable summary: one line per group, then totals."""
        width = max([len(g.name) for g in self.groups] + [5])
        lines = [f"{'group':<{width}}  {'channels':>13}  {'rel. error':>10}  {'seconds':>7}"]
        for g in self.groups:
            lines.append(f"{g.name:<{width}}  {g.channels_before:>6} -> {g.channels_after:<4}  {g.error:>10.3e}  "
                         f"{g.seconds:>7.2f}" + (f"  ({g.note})" if g.note else ""))
        pr = self.params_after / max(self.params_before, 1)
        fr = self.flops_after / max(self.flops_before, 1)
        lines.append(f"params {self.params_before:,} -> {self.params_after:,} ({pr:.1%});  "
                     f"FLOPs {self.flops_before:,} -> {self.flops_after:,} ({fr:.1%})")
        if "latency_model_kept" in self.options:
            lines.append(f"latency model (node times measured on {self.device}): {self.options['latency_model_kept']:.1%} "
                         f"of the original kept (a model estimate; time the pruned model to know)")
        damping = self.options.get("damping")
        ridge = f", damping {damping:g} x mean diag(G) (lambda per group in the JSON)" if damping else ""
        if self.refit:
            r = self.refit
            lines.append(f"global refit ({r['features']}, {len(r['parameters'])} tensors, {r['iterations']} L-BFGS iterations): "
                         f"relative feature error {r['error_before']:.4f} -> {r['error_after']:.4f} in {r['seconds']:.1f} s"
                         + (f" ({r['note']})" if r.get('note') else ""))
        if self.refit_skipped:
            lines.append(f"refit skipped: {self.refit_skipped}")
        lines.append(f"method {self.method}, {self.calibration_images} calibration images, "
                     f"{self.seconds:.1f} s on {self.device}{ridge}{self._products_note()}")
        return "\n".join(lines)

    def _products_note(self) -> str:
        """How the statistics' products were formed, when not the default float32 (greedyprune.stats.precision)."""
        asked, used = self.options.get("precision", "float32"), self.options.get("products")
        if asked == "bfloat16" and used == "float32":
            return "; precision bfloat16 asked, float32 products used (no native bfloat16 math mode here)"
        return "" if (used or asked) == "float32" else f"; {used or asked} products"


def versions() -> dict:
    import torchvision

    from . import __version__
    return {"greedyprune": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version()}
