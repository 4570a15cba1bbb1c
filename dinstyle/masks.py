"""Region masks: a grey-level image whose levels pick a style per region (numpy + OpenCV)."""
from __future__ import annotations

import warnings

import cv2
import numpy as np

from dinstyle.errors import OptionError


def mask_levels(grey: np.ndarray, k: int) -> np.ndarray:
    """Grey levels (H, W) uint8 -> region index 0..k-1, levels split evenly over 0..255:
    with 2 regions dark -> 0 and light -> 1; with 3, black / mid-grey / white."""
    return np.clip(np.rint(grey.astype(np.float32) * (k - 1) / 255.0), 0, k - 1).astype(np.int64)


def region_weights(grey: np.ndarray, k: int, size: tuple[int, int], feather: float = 0.0,
                   source: str = "mask") -> np.ndarray:
    """Soft weights (k, H, W) float32 summing to 1 for an image of ``size`` = (width, height).

    A mask of another size is resized (nearest) with a warning; ``feather`` is the Gaussian sigma,
    in output pixels, of the soft edge between regions."""
    if k < 2:
        raise OptionError("--mask needs at least two styles (use --style none for a region kept as it is)")
    if feather < 0:
        raise OptionError(f"--feather {feather}: must be >= 0")
    w, h = size
    if grey.shape != (h, w):
        warnings.warn(f"{source}: {grey.shape[1]}x{grey.shape[0]} resized to the image's {w}x{h}", stacklevel=2)
        grey = cv2.resize(grey, (w, h), interpolation=cv2.INTER_NEAREST)
    labels = mask_levels(grey, k)
    onehot = np.stack([(labels == i).astype(np.float32) for i in range(k)])
    if feather > 0:
        onehot = np.stack([cv2.GaussianBlur(m, (0, 0), feather) for m in onehot])
        onehot /= np.maximum(onehot.sum(0, keepdims=True), 1e-6)
    return onehot
