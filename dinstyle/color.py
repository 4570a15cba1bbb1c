"""Colour control on uint8 RGB arrays (numpy only)."""
from __future__ import annotations

import numpy as np

# BT.601 full-range RGB <-> YCbCr
_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_TO_RGB = np.linalg.inv(_TO_YCC)


def rgb_to_ycc(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ _TO_YCC.T.astype(np.float32)


def ycc_to_rgb(ycc: np.ndarray) -> np.ndarray:
    return np.clip(ycc @ _TO_RGB.T.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)


def keep_luminance_of(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Preserve colour: the stylized image's luminance with the content's chroma (Cb, Cr)."""
    s, c = rgb_to_ycc(stylized), rgb_to_ycc(content)
    c[..., 0] = s[..., 0]
    return ycc_to_rgb(c)
