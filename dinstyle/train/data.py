"""Training data held in memory, and a map from step number to batch.

Every image is decoded once into a uint8 "bank" tensor on the training device (the CPU or the
GPU). Every batch is a pure function of (seed, step, rank): which images, the crop's zoom,
position and flip, and the DIN mode — so resume is exact. Crops, zoom and flips are one batched
``grid_sample`` on the device: no decoding processes compete with training for the CPU's cores,
and a GPU assembles its batches without the host.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from dinstyle.errors import InputError
from dinstyle.io.images import list_images


def decode_square(src: bytes | Path, size: int) -> np.ndarray:
    """Decode an image, scale its short side to ``size`` and keep the centre square -> (size, size, 3) uint8."""
    try:
        with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
            im = im.convert("RGB")
            w, h = im.size
            s = size / min(w, h)
            if s != 1.0:
                im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.Resampling.BICUBIC,
                               reducing_gap=2.0)
            a = np.asarray(im)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        name = "image bytes" if isinstance(src, bytes) else str(src)
        raise InputError(f"{name}: not a readable image ({type(e).__name__})") from None
    y, x = (a.shape[0] - size) // 2, (a.shape[1] - size) // 2
    return np.array(a[y:y + size, x:x + size], copy=True)


class ImageBank:
    """A set of training images decoded once: ``images`` (N, 3, S, S) uint8 on one device."""

    def __init__(self, images: torch.Tensor, names: Sequence[str]):
        self.images, self.names = images, list(names)

    @classmethod
    def decode(cls, sources: Sequence[bytes | Path], size: int, names: Sequence[str] | None = None,
               threads: int = 2) -> "ImageBank":
        """Decode files or encoded bytes (Pillow releases the GIL while decoding: threads help)."""
        out = torch.empty(len(sources), size, size, 3, dtype=torch.uint8)

        def one(i: int) -> None:
            out[i] = torch.from_numpy(decode_square(sources[i], size))

        with ThreadPoolExecutor(max(1, threads)) as pool:
            list(pool.map(one, range(len(sources))))
        names = names if names is not None else [Path(s).name if not isinstance(s, bytes) else str(i)
                                                 for i, s in enumerate(sources)]
        return cls(out.permute(0, 3, 1, 2).contiguous(), names)

    @classmethod
    def from_folder(cls, folder: str | Path, size: int, threads: int = 2) -> "ImageBank":
        files = list_images(folder)
        return cls.decode(files, size, [f.name for f in files], threads)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def size(self) -> int:
        return self.images.shape[-1]

    def to(self, device: torch.device) -> "ImageBank":
        return ImageBank(self.images.to(device), self.names)


@dataclass
class Plan:
    """What step ``step`` trains on (drawn on the CPU, applied on the device)."""

    step: int
    mode: str
    content: torch.Tensor  # (B,) index into the photo bank, or into the flat bank where ``flat``
    flat: torch.Tensor  # (B,) bool
    content_view: torch.Tensor  # (B, 4): zoom, y, x in [0, 1], flip (0/1)
    style: torch.Tensor  # (B,) index into the style bank
    style_view: torch.Tensor  # (B, 4); unused when styles are seen whole
    pairs: torch.Tensor | None = None  # (B,) index into the teacher's pairs on distillation steps (content/style follow)


def draw_plan(step: int, *, seed: int, batch_size: int, n_content: int, n_style: int, n_flat: int = 0,
              flat_prob: float = 0.0, adaptive_prob: float = 0.0, deformable_prob: float = 0.0,
              adaptive_flat_prob: float | None = None, content_zoom: tuple[float, float] = (0.5, 1.0),
              style_zoom: tuple[float, float] = (0.5, 1.0), rank: int = 0,
              style_p: np.ndarray | None = None) -> Plan:
    """The batch of ``step``: a pure function of its arguments (``style_p``: probabilities of
    drawing each style; default uniform)."""
    # the mode must agree across ranks (DDP needs the same graph), so it is drawn from (seed, step) only
    r = np.random.default_rng([seed, int(step)]).random()
    mode = "adaptive" if r < adaptive_prob else ("deformable" if r < adaptive_prob + deformable_prob else "standard")
    rng = np.random.default_rng([seed, int(step)] + ([rank] if rank else []))
    fp = (flat_prob if adaptive_flat_prob is None else adaptive_flat_prob) if mode == "adaptive" else flat_prob
    flat = (rng.random(batch_size) < fp) if n_flat else np.zeros(batch_size, bool)
    content = np.where(flat, rng.integers(0, max(n_flat, 1), batch_size), rng.integers(0, n_content, batch_size))
    style = rng.integers(0, n_style, batch_size) if style_p is None else rng.choice(n_style, batch_size, p=style_p)

    def views(zoom):
        lo, hi = zoom
        z = np.exp(rng.uniform(np.log(lo), np.log(hi), batch_size))  # zoom drawn evenly on a log scale
        return np.stack([z, rng.random(batch_size), rng.random(batch_size), rng.random(batch_size) < 0.5], 1)

    cv, sv = views(content_zoom), views(style_zoom)
    return Plan(int(step), mode, torch.from_numpy(content), torch.from_numpy(flat), torch.from_numpy(cv).float(),
                torch.from_numpy(style), torch.from_numpy(sv).float())


def texture_energy(images: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """Mean local contrast of each uint8 image (B, 3, S, S): the 5x5 standard deviation of its grey
    levels, averaged over the image (0..255). Flat art scores ~0, busy brushwork 20-30."""
    out = []
    for i in range(0, images.shape[0], chunk):
        luma = torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)
        g = (images[i:i + chunk].float() * luma).sum(1, keepdim=True)
        m = F.avg_pool2d(g, 5, 1, 2, count_include_pad=False)
        v = (F.avg_pool2d(g * g, 5, 1, 2, count_include_pad=False) - m * m).clamp_min(0)
        out.append(v.sqrt().mean((1, 2, 3)))
    return torch.cat(out).cpu()


def style_probabilities(energy: torch.Tensor, power: float) -> np.ndarray | None:
    """Draw styles in proportion to (texture energy / its median) ** power (0: uniformly). Painting
    collections hold many smooth, flat works; users' paintings are often the busiest ones."""
    if power == 0:
        return None
    e = energy.double().clamp_min(1e-3)
    w = (e / e.median()) ** power
    return (w / w.sum()).numpy()


def crop_views(images: torch.Tensor, view: torch.Tensor, crop: int) -> torch.Tensor:
    """Crops of ``crop`` x ``crop`` pixels from square uint8 images (B, 3, S, S): each ``view`` row
    (zoom, y, x, flip) says how many output pixels per source pixel (the region is crop/zoom source
    pixels wide, at most the whole image), where the region lies (0..1 of the free range) and
    whether to mirror it. One bilinear ``grid_sample`` for the batch -> (B, 3, crop, crop) float in [0, 1]."""
    b, _, s, _ = images.shape
    view = view.to(images.device, torch.float32)
    half = (crop / view[:, 0] / s).clamp(max=1.0)  # half-extent of the region in [-1, 1] coordinates
    cy = (view[:, 1] * 2 - 1) * (1 - half)
    cx = (view[:, 2] * 2 - 1) * (1 - half)
    sx = torch.where(view[:, 3] > 0.5, -half, half)
    theta = torch.zeros(b, 2, 3, device=images.device)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, cx, half, cy
    grid = F.affine_grid(theta, [b, 3, crop, crop], align_corners=False)
    x = images.float().div_(255)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False).clamp_(0, 1)


def whole_views(images: torch.Tensor, size: int) -> torch.Tensor:
    """Whole images (B, 3, S, S) uint8 scaled to ``size`` x ``size`` -> float [0, 1] (how a style is seen at inference)."""
    x = images.float().div_(255)
    if images.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=size < images.shape[-1]).clamp_(0, 1)
    return x
