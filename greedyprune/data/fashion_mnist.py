"""Fashion-MNIST (60,000 train + 10,000 test, 28x28 grey, 10 classes) as in-memory float tensors.

Where the IDX files are looked for, in order:

1. ``root`` (the argument), then ``$GREEDYPRUNE_DATA``, when given;
2. the Debian package folder ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``);
3. torchvision's ``FashionMNIST(download=True)`` into ``<cache>/datasets`` (needs internet).

In each folder the files may be gzipped or not, directly inside or under ``FashionMNIST/raw``
(torchvision's layout). Pixels are scaled to [0, 1] then normalised: ``x' = (x - 0.2860) / 0.3530``.

Splits: ``train`` (60,000), ``test`` (10,000), ``val`` (a fixed held-out 5,000 of the training set,
drawn once with seed :data:`VAL_SEED`) and ``train-minus-val`` (the other 55,000).

The decoded tensors are cached per process and shared by every ``train``/``test`` dataset returned:
do not modify ``dataset.images`` in place (``subset`` and ``select`` make copies).
"""

from __future__ import annotations

import gzip
import os
import threading
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..io import check_regular_file
from ..paths import cache_root
from .registry import register
from .tensor import TensorImageDataset

MEAN, STD = 0.2860, 0.3530
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
VAL_SIZE = 5000
VAL_SEED = 20_190_811
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
SPLITS = ("train", "test", "val", "train-minus-val")

_cache: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}
_lock = threading.Lock()


def _find_file(folder: Path, stem: str) -> Path | None:
    for sub in (folder, folder / "FashionMNIST" / "raw", folder / "fashion-mnist"):
        for name in (stem + ".gz", stem):
            if os.path.lexists(sub / name):  # present, even as a FIFO or a broken link: _read_idx says what is wrong
                return sub / name
    return None


IDX_MAGIC = {"images": 2051, "labels": 2049}  # 0x00000803: ubyte, 3 dims; 0x00000801: ubyte, 1 dim
MAX_IMAGES = 100_000  # more than either Fashion-MNIST file holds: a larger file is refused before it is read
_FIX = "reinstall dataset-fashion-mnist, or point GREEDYPRUNE_DATA at intact IDX files"


def _read_idx(path: Path, kind: str) -> np.ndarray:
    """The payload of an IDX file -- ``(N, 28, 28)`` images or ``(N,)`` labels in 0..9 -- checked against its
    header (magic number, dimensions, length) before anything is allocated; one-line errors otherwise."""
    header = 16 if kind == "images" else 8
    limit = header + MAX_IMAGES * (28 * 28 if kind == "images" else 1)
    check_regular_file(path, "Fashion-MNIST file")  # a FIFO is refused, never opened (no hang)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            raw = handle.read(limit + 1)  # bounded, also for a gzip bomb
    except (OSError, EOFError, zlib.error) as err:
        what = "gzip file" if path.suffix == ".gz" else "file"
        raise UserError(f"{path} is not a readable {what} ({_first(err)}); {_FIX}") from None
    if not raw:
        raise UserError(f"{path} is empty (0 bytes); {_FIX}")
    if len(raw) > limit:
        raise UserError(f"{path} is larger than any Fashion-MNIST {kind} file (more than {MAX_IMAGES:,} items); {_FIX}")
    if len(raw) < header or int.from_bytes(raw[:4], "big") != IDX_MAGIC[kind]:
        raise UserError(f"{path} is not an IDX {kind} file (its header is not the {kind} magic number "
                        f"{IDX_MAGIC[kind]:#010x}); {_FIX}")
    dims = [int.from_bytes(raw[i:i + 4], "big") for i in range(4, header, 4)]
    if kind == "images" and dims[1:] != [28, 28]:
        raise UserError(f"{path} holds {dims[1]}x{dims[2]} images, not 28x28; {_FIX}")
    expected = header + dims[0] * (28 * 28 if kind == "images" else 1)
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise UserError(f"{path} is {state}: its header promises {dims[0]:,} {kind} ({expected:,} bytes) but it holds "
                        f"{len(raw):,} bytes; {_FIX}")
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if kind == "labels" and data.size and int(data.max()) >= len(CLASSES):
        raise UserError(f"{path} holds label {int(data.max())}, outside 0..{len(CLASSES) - 1}; {_FIX}")
    return data


def _first(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:100]


def _load_folder(folder: Path, base: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """uint8 images (N, 28, 28) and labels (N,) from the IDX files in ``folder``, or None if absent."""
    image_stem, label_stem = FILES[base]
    image_file, label_file = _find_file(folder, image_stem), _find_file(folder, label_stem)
    if image_file is None or label_file is None:
        return None
    images, labels = _read_idx(image_file, "images"), _read_idx(label_file, "labels")
    if images.size != labels.size * 28 * 28:
        raise UserError(f"{image_file} holds {images.size // 784:,} images but {label_file} {labels.size:,} labels: "
                        f"the files are mismatched; {_FIX}")
    if not labels.size:
        raise UserError(f"{image_file} holds no images; {_FIX}")
    return torch.from_numpy(images.reshape(-1, 28, 28).copy()), torch.from_numpy(labels.astype(np.int64))


def _download(base: str) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's download into ``<cache>/datasets``, by one process at a time (the others wait for its lock,
    with a timeout, then read what it fetched)."""
    from torchvision.datasets import FashionMNIST

    from ..locking import file_lock
    folder = cache_root() / "datasets"
    with file_lock(folder, "the Fashion-MNIST download"):
        data = FashionMNIST(str(folder), train=(base == "train"), download=True)
    return data.data.to(torch.uint8), data.targets.to(torch.int64)


def candidate_folders(root: str | None) -> list[Path]:
    """The folders searched before falling back to torchvision's download, in order."""
    folders = [Path(p) for p in (root, os.environ.get("GREEDYPRUNE_DATA")) if p]
    folders += [Path(DEBIAN_DIR), cache_root() / "datasets"]
    return folders


def load_raw(base: str, root: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and int64 labels of the ``train`` or ``test`` file pair, from the first place that has them."""
    tried = []
    for folder in candidate_folders(root):
        found = _load_folder(folder, base)
        if found is not None:
            return found
        tried.append(str(folder))
    try:
        return _download(base)
    except Exception as err:  # noqa: BLE001 -- any download failure becomes the one-line message below
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:100]
    raise UserError(f"Fashion-MNIST not found (looked in {', '.join(tried)}; torchvision download failed: {reason}); "
                    "run `apt-get install dataset-fashion-mnist` or set GREEDYPRUNE_DATA to a folder with the IDX files")


def _normalised(base: str, root: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    key = (base, str(Path(root).resolve()) if root else os.environ.get("GREEDYPRUNE_DATA", ""))
    with _lock:
        if key not in _cache:
            images, labels = load_raw(base, root)
            x = images.to(torch.float32).div_(255.0).sub_(MEAN).div_(STD).unsqueeze_(1)
            _cache[key] = (x, labels)
        return _cache[key]


def val_indices() -> torch.Tensor:
    """The fixed 5,000 training-set indices held out as ``val`` (sorted)."""
    perm = torch.randperm(60_000, generator=torch.Generator().manual_seed(VAL_SEED))
    return perm[:VAL_SIZE].sort().values


@register("fashion-mnist")
def fashion_mnist(argument: str | None, split: str = "train", root: str | None = None) -> TensorImageDataset:
    if argument:
        raise UserError(f"fashion-mnist takes no ':' argument (got {argument!r}); use root= or GREEDYPRUNE_DATA for its folder")
    if split not in SPLITS:
        raise UserError(f"unknown Fashion-MNIST split {split!r}; choose one of: {', '.join(SPLITS)}")
    base = "test" if split == "test" else "train"
    images, labels = _normalised(base, root)
    if split in ("train", "test"):
        return TensorImageDataset(images, labels, CLASSES, name=f"fashion-mnist/{split}")
    if images.shape[0] != 60_000:
        raise UserError(f"the Fashion-MNIST training file has {images.shape[0]} images, not 60000; "
                        "the val split needs the full set")
    held = val_indices()
    if split == "val":
        keep = held
    else:
        mask = torch.ones(images.shape[0], dtype=torch.bool)
        mask[held] = False
        keep = mask.nonzero().squeeze(1)
    return TensorImageDataset(images[keep], labels[keep], CLASSES, name=f"fashion-mnist/{split}")
