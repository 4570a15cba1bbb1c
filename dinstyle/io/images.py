"""Read and write images as uint8 numpy arrays with Pillow. No torch here.

Reading handles EXIF orientation, grayscale, palette, CMYK, 16-bit and alpha; the alpha channel
is returned separately so it can be put back on the output.
"""
from __future__ import annotations

import glob
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dinstyle.errors import InputError, OptionError
from dinstyle.io.files import atomic_path, check_input_file

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
FORMAT_BY_EXT = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
                 ".tif": "TIFF", ".tiff": "TIFF", ".gif": "PNG"}
EXT_BY_FORMAT = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png", "webp": ".webp", "bmp": ".bmp", "tiff": ".tif"}
# Refuse images above this many pixels instead of allocating blindly (~24k x 24k).
MAX_PIXELS = 600_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


@dataclass
class LoadedImage:
    rgb: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray | None  # (H, W) uint8 or None
    format: str | None  # Pillow format name of the source ("JPEG", "PNG", ...)
    path: Path


def _to_uint8_rgb(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    alpha = None
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
        a = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if a.max() > 255 else 255.0
        g = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2), None
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        g = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0) + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2), None
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        arr = np.asarray(rgba)
        alpha = arr[:, :, 3].copy()
        return np.ascontiguousarray(arr[:, :, :3]), alpha
    if im.mode in ("RGB;16", "BGR;16"):
        im = im.convert("RGB")
    return np.asarray(im.convert("RGB")).copy(), None


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Decode an image file; raises InputError with a one-line reason on any problem."""
    path = check_input_file(path, "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise InputError(f"{path}: {w}x{h} is too large ({w * h / 1e6:.0f} MP > {max_pixels / 1e6:.0f} MP limit)")
                fmt = im.format
                im.load()
                im = ImageOps.exif_transpose(im)
                rgb, alpha = _to_uint8_rgb(im)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{path}: image is too large (decompression-bomb guard)") from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file (or an unsupported format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise InputError(f"{path}: cannot decode image ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None
    if rgb.ndim != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise InputError(f"{path}: image has no pixels")
    return LoadedImage(rgb=rgb, alpha=alpha, format=fmt, path=path)


def write_image(path: str | Path, rgb: np.ndarray, alpha: np.ndarray | None = None, quality: int = 95) -> Path:
    """Write ``rgb`` (H, W, 3) uint8 (+ optional alpha) atomically; format from the extension."""
    path = Path(path)
    fmt = FORMAT_BY_EXT.get(path.suffix.lower())
    if fmt is None:
        raise OptionError(f"{path}: unknown output image extension (use one of {', '.join(sorted(FORMAT_BY_EXT))})")
    im = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if alpha is not None and fmt in ("PNG", "WEBP", "TIFF"):
        im.putalpha(Image.fromarray(alpha, "L"))
    kw = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    with atomic_path(path) as tmp:
        im.save(tmp, format=fmt, **kw)
    return path


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W, 3) uint8 to (width, height) ``size`` with a good filter."""
    if (rgb.shape[1], rgb.shape[0]) == tuple(size):
        return rgb
    return np.array(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def fit_size(w: int, h: int, max_side: int | None) -> tuple[int, int]:
    """(w, h) scaled down so the long side is at most ``max_side`` (never up)."""
    if not max_side or max(w, h) <= max_side:
        return w, h
    s = max_side / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


def expand_inputs(items: list[str], recursive: bool = False) -> tuple[list[Path], list[str]]:
    """Files, folders and glob patterns -> (image files in order, problems for missing items)."""
    files: list[Path] = []
    problems: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            it = p.rglob("*") if recursive else p.iterdir()
            found = sorted(f for f in it if f.is_file() and f.suffix.lower() in IMAGE_EXTS and not f.name.startswith("."))
            if not found:
                problems.append(f"{p}: folder has no images")
            files += found
        elif p.exists():
            files.append(p)
        elif any(ch in item for ch in "*?["):
            found = sorted(Path(f) for f in glob.glob(item, recursive=True) if os.path.isfile(f))
            if not found:
                problems.append(f"{item}: pattern matches no files")
            files += found
        else:
            problems.append(f"{p}: no such file")
    seen: set[Path] = set()
    unique = []
    for f in files:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(f)
    return unique, problems
