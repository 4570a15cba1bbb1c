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
from dinstyle.io import memory
from dinstyle.io.files import atomic_path, check_input_file, path_problem, q

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
FORMAT_BY_EXT = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
                 ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF"}
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


def _to_rgb(im: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Any mode -> an RGB (or L, for grey 16-bit/float) image and the alpha channel ("L") or None."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
        a = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if a.max() > 255 else 255.0
        return Image.fromarray(np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L"), None
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        g = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0) + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(g, "L"), None
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        return rgba.convert("RGB"), rgba.getchannel("A")
    return (im if im.mode == "RGB" else im.convert("RGB")), None


def _decode_need(im: Image.Image, shrink: bool) -> int:
    """Bytes decoding ``im`` takes at its peak: Pillow's own buffer (RGB is held as 4 bytes a pixel),
    the conversion to RGB (+ alpha) and, unless ``shrink`` resizes first, the numpy copies."""
    w, h = im.size
    held = 1 if im.mode in ("1", "L", "P") else 2 if im.mode.startswith("I;16") else 4
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "I;16N", "F"):
        held += 17  # float64 copies on the way to 8 bits
    alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    convert = 0 if im.mode == "RGB" else 9 if alpha else 4
    return w * h * (held + convert + (0 if shrink else 6 + 2 * alpha))


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS, max_size: int | None = None) -> LoadedImage:
    """Decode an image file; raises InputError with a one-line reason on any problem.

    ``max_size`` downscales (long side, Lanczos) while reading: a JPEG is decoded at 1/2, 1/4 or
    1/8 scale where that still covers the size (draft mode), and no full-size copy is made. An image
    that needs more memory than is available is refused before decoding."""
    path = check_input_file(path, "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise InputError(f"{q(path)}: {w}x{h} is too large ({w * h / 1e6:.0f} MP > {max_pixels / 1e6:.0f} MP limit)")
                fmt = im.format
                shrink = bool(max_size) and max(w, h) > max_size
                if shrink and fmt == "JPEG":
                    im.draft(None, fit_size(w, h, max_size))
                need = _decode_need(im, shrink)
                if not memory.fits(need):
                    hint = "" if shrink else "; use --max-size"
                    raise InputError(f"{q(path)}: {w}x{h} is too large to decode here ({memory.describe(need)}){hint}")
                im.load()
                ImageOps.exif_transpose(im, in_place=True)
                rgb_im, alpha_im = _to_rgb(im)
                size = fit_size(rgb_im.width, rgb_im.height, max_size)
                if size != rgb_im.size:
                    rgb_im = rgb_im.resize(size, Image.Resampling.LANCZOS)
                    alpha_im = None if alpha_im is None else alpha_im.resize(size, Image.Resampling.LANCZOS)
                if rgb_im.mode != "RGB":
                    rgb_im = rgb_im.convert("RGB")
                rgb = np.array(rgb_im)
                alpha = None if alpha_im is None else np.array(alpha_im)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{q(path)}: image is too large (decompression-bomb guard)") from None
    except UnidentifiedImageError:
        raise InputError(f"{q(path)}: not an image file (or an unsupported format)") from None
    except MemoryError:
        raise InputError(f"{q(path)}: not enough memory to decode this image; use --max-size") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise InputError(f"{q(path)}: cannot decode image ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None
    if rgb.ndim != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise InputError(f"{q(path)}: image has no pixels")
    return LoadedImage(rgb=rgb, alpha=alpha, format=fmt, path=path)


def write_image(path: str | Path, rgb: np.ndarray, alpha: np.ndarray | None = None, quality: int = 95) -> Path:
    """Write ``rgb`` (H, W, 3) uint8 (+ optional alpha) atomically; format from the extension."""
    path = Path(path)
    fmt = FORMAT_BY_EXT.get(path.suffix.lower())
    if fmt is None:
        raise OptionError(f"{q(path)}: unknown output image extension (use one of {', '.join(sorted(FORMAT_BY_EXT))})")
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


def list_images(folder: str | Path) -> list[Path]:
    """Every image file under ``folder`` (sub-folders too), sorted; InputError if there is none."""
    p = Path(folder)
    if not p.is_dir():
        raise InputError(f"{p}: not a folder of images")
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise InputError(f"{p}: no images found")
    return files


def expand_inputs(items: list[str], recursive: bool = False) -> tuple[list[Path], list[str]]:
    """Files, folders and glob patterns -> (image files in order, problems for missing items)."""
    files: list[Path] = []
    problems: list[str] = []
    for item in items:
        p = Path(item)
        problem = path_problem(p)
        if problem is None and p.is_dir():
            it = p.rglob("*") if recursive else p.iterdir()
            found = sorted(f for f in it if f.is_file() and f.suffix.lower() in IMAGE_EXTS and not f.name.startswith("."))
            if not found:
                problems.append(f"{q(p)}: folder has no images")
            files += found
        elif problem is None:
            files.append(p)
        elif any(ch in item for ch in "*?["):
            found = sorted(Path(f) for f in glob.glob(item, recursive=True) if os.path.isfile(f))
            if not found:
                problems.append(f"{q(item)}: pattern matches no files")
            files += found
        else:
            problems.append(problem)
    seen: set[Path] = set()
    unique = []
    for f in files:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(f)
    return unique, problems
