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


def _sqrtm(c: np.ndarray, inverse: bool = False) -> np.ndarray:
    vals, vecs = np.linalg.eigh(c)
    vals = np.maximum(vals, 1e-6)
    return (vecs * (vals ** (-0.5 if inverse else 0.5))) @ vecs.T


def match_colors(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Recolour ``source`` so its RGB mean and covariance match ``target``'s (linear histogram
    matching, as in Gatys et al.'s colour-preserving style transfer). uint8 in, uint8 out."""
    s = source.reshape(-1, 3).astype(np.float64)
    t = target.reshape(-1, 3).astype(np.float64)
    ms, mt = s.mean(0), t.mean(0)
    cs, ct = np.cov(s, rowvar=False) + np.eye(3) * 1e-3, np.cov(t, rowvar=False) + np.eye(3) * 1e-3
    a = _sqrtm(ct) @ _sqrtm(cs, inverse=True)
    out = (s - ms) @ a.T + mt
    return np.clip(out + 0.5, 0, 255).astype(np.uint8).reshape(source.shape)

