"""Training data: two flat folders of images, and a map from step number to batch.

Every batch is a pure function of (seed, step): which images, where to crop, whether to flip and
which DIN mode. That makes resume exact (the run continues with the batch it would have drawn)
and lets DataLoader workers decode ahead without any shared state.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from dinstyle.errors import InputError
from dinstyle.io.images import IMAGE_EXTS


def list_images(folder: str | Path) -> list[Path]:
    p = Path(folder)
    if not p.is_dir():
        raise InputError(f"{p}: not a folder of images")
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise InputError(f"{p}: no images found")
    return files


def load_crop(path: Path, crop: int, rng: np.random.Generator) -> np.ndarray:
    """Open, scale so the short side is in [crop, 2*crop], random crop and flip -> (3, crop, crop) uint8."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        short = min(w, h)
        target = min(max(short, crop), 2 * crop)
        if target != short:
            s = target / short
            im = im.resize((max(crop, round(w * s)), max(crop, round(h * s))), Image.Resampling.BILINEAR)
        a = np.asarray(im)
    y = int(rng.integers(0, a.shape[0] - crop + 1))
    x = int(rng.integers(0, a.shape[1] - crop + 1))
    a = a[y:y + crop, x:x + crop]
    if rng.random() < 0.5:
        a = a[:, ::-1]
    return np.ascontiguousarray(a.transpose(2, 0, 1))


class StepBatches(Dataset):
    """``dataset[step]`` -> {"content", "style": (B, 3, crop, crop) uint8, "mode": DIN mode, "step"}."""

    def __init__(self, content: list[Path], style: list[Path], batch_size: int, crop: int, seed: int,
                 flat: list[Path] | None = None, flat_prob: float = 0.0, adaptive_prob: float = 0.0, rank: int = 0,
                 deformable_prob: float = 0.0, adaptive_flat_prob: float | None = None):
        self.content, self.style, self.flat = content, style, flat or []
        self.batch_size, self.crop, self.seed = batch_size, crop, seed
        self.flat_prob, self.adaptive_prob = flat_prob, adaptive_prob
        self.rank = rank
        self.deformable_prob = deformable_prob
        # the spatially-adaptive mode is for flat-colour art: its steps may draw more of it
        self.adaptive_flat_prob = flat_prob if adaptive_flat_prob is None else adaptive_flat_prob

    def __len__(self) -> int:
        return 1 << 40

    def __getitem__(self, step: int) -> dict:
        rng = np.random.default_rng([self.seed, int(step)] + ([self.rank] if self.rank else []))
        # the mode must agree across ranks (DDP needs the same graph), so it is drawn from (seed, step) only
        r = np.random.default_rng([self.seed, int(step)]).random()
        mode = "adaptive" if r < self.adaptive_prob else (
            "deformable" if r < self.adaptive_prob + self.deformable_prob else "standard")
        rng.random()
        cs, ss = [], []
        flat_prob = self.adaptive_flat_prob if mode == "adaptive" else self.flat_prob
        for _ in range(self.batch_size):
            pool = self.flat if self.flat and rng.random() < flat_prob else self.content
            cs.append(load_crop(pool[int(rng.integers(len(pool)))], self.crop, rng))
            ss.append(load_crop(self.style[int(rng.integers(len(self.style)))], self.crop, rng))
        return {"content": torch.from_numpy(np.stack(cs)), "style": torch.from_numpy(np.stack(ss)),
                "mode": mode, "step": int(step)}
