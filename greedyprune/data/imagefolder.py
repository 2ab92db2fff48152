"""ImageNet-style folders (``DIR/<class>/<image>``) through torchvision's :class:`ImageFolder`.

``imagefolder:DIR`` with split ``train`` reads ``DIR/train`` when it exists, else ``DIR``; ``val`` reads
``DIR/val`` (else ``DIR``); ``test`` reads ``DIR/test``, else ``DIR/val``, else ``DIR``.
Preprocessing is ImageNet's evaluation transform: resize the short side to 256, center-crop 224,
scale to [0, 1], normalise with the ImageNet mean/std (``image_size`` scales 256/224 together).

Unreadable images: by default the first one stops the run with a one-line error naming the file.
With ``skip_bad_images=True`` an unreadable image is replaced by the next readable one (in index
order) and its path is added to ``dataset.skipped`` (in the process that read it: with loader workers
the count stays in the workers); :meth:`ImageFolderDataset.verify` checks every file up front and drops
the bad ones instead, returning their paths.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from PIL import Image
from torchvision import transforms
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from ..errors import UserError
from .registry import register

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_SPLIT_FOLDERS = {"train": ("train",), "val": ("val",), "test": ("test", "val")}
# PIL's UnidentifiedImageError is an OSError; a decompression bomb (more than Image.MAX_IMAGE_PIXELS pixels,
# about 89 million) is refused at open, before its pixels are decoded: the warning PIL gives below twice that
# limit is turned into this error too, so no image is ever decoded above the limit
_READ_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning)


def imagenet_transform(image_size: int = 224) -> transforms.Compose:
    resize = round(image_size * 256 / 224)
    return transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(image_size), transforms.ToTensor(),
                               transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:120]


def _reason(err: BaseException) -> str:
    """Why PIL could not read a file, without the file-object repr PIL puts in its message."""
    text = _first_line(err)
    if isinstance(err, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"too large to decode: {text.split(', could be')[0].rstrip('.')}"
    return "not a readable image file" if "cannot identify image file" in text else text


def _open_checked(path: str):
    """``Image.open(path)``, refusing a file that is not a regular file (a FIFO would block the read forever)
    and any image above PIL's pixel limit (a decompression bomb), both as read errors."""
    if not os.path.isfile(path):
        raise OSError(f"not a regular file ({_kind(path)})")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


def _kind(path: str) -> str:
    import stat
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "a broken link"
    return "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"


def _load_rgb(path: str):
    with _open_checked(path) as image:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return image.convert("RGB")


class ImageFolderDataset(ImageFolder):
    """torchvision :class:`ImageFolder` that reports (or skips and counts) unreadable images."""

    def __init__(self, root: str | os.PathLike, image_size: int = 224, skip_bad_images: bool = False):
        super().__init__(str(root), transform=imagenet_transform(image_size), loader=_load_rgb, allow_empty=True)
        self.skip_bad_images = skip_bad_images
        self.skipped: set[str] = set()

    def _read(self, index: int):
        path, target = self.samples[index]
        image = self.loader(path)
        return self.transform(image), target

    def __getitem__(self, index: int):
        n = len(self.samples)
        for step in range(n):
            i = (index + step) % n
            try:
                return self._read(i)
            except _READ_ERRORS as err:
                path = self.samples[i][0]
                if not self.skip_bad_images:
                    raise UserError(f"cannot read image {path} ({_reason(err)}); delete or replace it, "
                                    "or pass --skip-bad-images (skip_bad_images=True) to skip them") from None
                self.skipped.add(path)
        raise UserError(f"no image under {self.root} could be read ({len(self.skipped)} unreadable); check the folder")

    def verify(self) -> list[str]:
        """Open every image, drop the unreadable ones (or raise, without ``skip_bad_images``); return their paths."""
        bad = []
        for path, _ in self.samples:
            try:
                with _open_checked(path) as image:
                    image.verify()
            except _READ_ERRORS as err:
                if not self.skip_bad_images:
                    raise UserError(f"cannot read image {path} ({_reason(err)}); delete or replace it, "
                                    "or pass --skip-bad-images (skip_bad_images=True) to skip them") from None
                bad.append(path)
        if bad:
            drop = set(bad)
            self.samples = [s for s in self.samples if s[0] not in drop]
            self.imgs = self.samples
            self.targets = [t for _, t in self.samples]
            self.skipped.update(bad)
        if not self.samples:
            raise UserError(f"no readable image under {self.root}; check the folder")
        return bad


def split_folder(directory: str | os.PathLike, split: str) -> Path:
    """The folder that holds ``split`` of an ImageFolder dataset rooted at ``directory``."""
    base = Path(directory).expanduser()
    if not base.is_dir():
        raise UserError(f"image folder {base} does not exist; give imagefolder:DIR with DIR/<class>/<image> (or DIR/train, DIR/val)")
    if split not in _SPLIT_FOLDERS:
        raise UserError(f"unknown image-folder split {split!r}; choose one of: {', '.join(_SPLIT_FOLDERS)}")
    for name in _SPLIT_FOLDERS[split]:
        if (base / name).is_dir():
            return base / name
    return base


def _check_layout(folder: Path) -> None:
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"image folder {folder} has no class sub-folders; expected {folder}/<class>/<image>.jpg")
    for cls in classes:
        for _, _, files in os.walk(cls, followlinks=True):
            if any(f.lower().endswith(IMG_EXTENSIONS) for f in files):
                return
    raise UserError(f"image folder {folder} has {len(classes)} class folders but no images "
                    f"({', '.join(IMG_EXTENSIONS)}); check the path")


@register("imagefolder")
def imagefolder(argument: str | None, split: str = "train", root: str | None = None, image_size: int = 224,
                skip_bad_images: bool = False) -> ImageFolderDataset:
    if not argument:
        raise UserError("imagefolder needs a folder: use the spec imagefolder:DIR")
    folder = split_folder(argument, split)
    _check_layout(folder)
    return ImageFolderDataset(folder, image_size=image_size, skip_bad_images=skip_bad_images)
