"""Tone guidance: the output's broad light and dark moved towards the photo's.

The network lays the painting's strokes, but at full strength it also re-lights the picture:
a shaded cheek becomes a dark stippled patch, a soft background breaks into dark and light
blotches. This stage splits the output's luma at a Gaussian of ``TONE_SIGMA`` pixels and moves
the coarse part ``amount`` of the way to the photo's coarse luma; the finer part (the strokes, the
line work) stays the network's. The shift is grey (the same on R, G and B), so the chroma is kept
except where a channel clips; it runs before the palette transfer, which moves the colours (and
part of the lightness range) onto the painting's in the same order of light and dark.

The scale is in output pixels, not a share of the image: the marks the network lays have a fixed
size in pixels at any resolution (its reach is fixed), so the split between "strokes" and "tone"
stays where it is at 512 px and at 4K.

Images in and out are (H, W, 3) uint8 RGB arrays; nothing here knows the network.
"""
from __future__ import annotations

import cv2
import numpy as np

from dinstyle.config import LUMA

TONE_SIGMA = 8.0  # px: finer than this is stroke (kept), coarser is tone (moved to the photo's)
ROWS = 2048  # rows blurred at a time beyond this height, with a 3-sigma overlap (bounded memory at 8K)
_LUMA = np.array(LUMA, np.float32)


def _radius(sigma: float) -> int:
    return int(np.ceil(3 * sigma))


def _coarse(y: np.ndarray, sigma: float) -> np.ndarray:
    k = 2 * _radius(sigma) + 1
    return cv2.GaussianBlur(y, (k, k), sigma, borderType=cv2.BORDER_REPLICATE)


def guide_tone(rgb: np.ndarray, photo: np.ndarray, amount: float, sigma: float = TONE_SIGMA) -> np.ndarray:
    """``rgb`` (the network's output) with its luma coarser than ``sigma`` px moved ``amount`` of
    the way (0 = unchanged, 1 = the photo's) to ``photo``'s, the same size. A new array."""
    if rgb.shape != photo.shape:
        raise ValueError(f"tone guidance: output {rgb.shape} and photo {photo.shape} differ in size")
    if amount == 0:
        return rgb.copy()
    out = np.empty_like(rgb)
    h = rgb.shape[0]
    r = _radius(sigma)  # rows of context a block's blur reads beyond it
    for y0 in range(0, h, ROWS):
        y1 = min(h, y0 + ROWS)
        c0, c1 = max(0, y0 - r), min(h, y1 + r)
        o = rgb[c0:c1].astype(np.float32)
        shift = _coarse(photo[c0:c1].astype(np.float32) @ _LUMA, sigma) - _coarse(o @ _LUMA, sigma)
        o += np.float32(amount) * shift[..., None]
        o += 0.5
        out[y0:y1] = np.clip(o[y0 - c0:y1 - c0], 0, 255).astype(np.uint8)
    return out
