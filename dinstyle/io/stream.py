"""Images as bytes (pipes, uploads): decoded and encoded with exactly the rules of image files.

The bytes pass through a private temp folder, so every check of ``read_image`` (empty file, not an
image, pixel limit, EXIF, alpha, 16-bit...) and every format rule of ``write_image`` applies, with
the same messages; ``label`` (e.g. "stdin" or an upload's name) stands in for the temp path.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from dinstyle.errors import InputError, OptionError
from dinstyle.io.images import EXT_BY_FORMAT, MAX_PIXELS, LoadedImage, read_image, write_image


def read_image_bytes(data: bytes, label: str = "stdin", max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Decode an image held in memory; raises InputError naming ``label``."""
    with tempfile.TemporaryDirectory(prefix="dinstyle-") as d:
        tmp = Path(d) / "image"
        tmp.write_bytes(data)
        try:
            img = read_image(tmp, max_pixels=max_pixels)
        except InputError as e:
            raise InputError(str(e).replace(str(tmp), label)) from None
    img.path = Path(label)
    return img


def encode_image(rgb: np.ndarray, alpha: np.ndarray | None = None, fmt: str = "png", quality: int = 95) -> bytes:
    """Encode (H, W, 3) uint8 (+ alpha where the format keeps it) as ``fmt`` (png, jpg, webp, ...)."""
    ext = EXT_BY_FORMAT.get(fmt.lower().lstrip("."))
    if ext is None:
        raise OptionError(f"--format {fmt}: unknown (use {', '.join(sorted(set(EXT_BY_FORMAT)))})")
    with tempfile.TemporaryDirectory(prefix="dinstyle-") as d:
        path = write_image(Path(d) / f"image{ext}", rgb, alpha, quality=quality)
        return path.read_bytes()
