"""Palette transfer: move a stylized image's colours onto its painting's palette.

The network lays the painting's strokes, but its colours come out muted where the painting is
saturated (Starry Night pink-violet rather than blue and yellow). This stage moves the output's
colour distribution onto the painting's by iterative distribution transfer (Pitié, Kokaram and
Dahyot 2005): along each of a fixed set of rotated colour axes, the output's 1-D distribution is
quantile-matched to the painting's, and the rotations are repeated so the 3-D distributions meet.
Where each output colour goes is decided by its rank, so the network's light and dark, and its
strokes, keep their places; their colours move, and their lightness ``LIGHTNESS`` of the way to
the painting's (a dark painting darkens the picture, a pale one lightens it, in the same order).
The tone guidance before it (``tone.py``) gives the picture the photo's broad light and dark, so
the two together keep the photo's shading and take the painting's range.

The transfer is fitted on a sample of the output's pixels against a sample of the painting's
(``Palette.of``: 4,096 pixels, what a style pack stores), pushed through a 17^3 colour lookup table
and applied by trilinear lookup (``PaletteMap``), so its cost barely grows with the image: the
lookup is one pass over the pixels. Deterministic: fixed rotations, evenly spaced samples.

Images in and out are (H, W, 3) uint8 RGB arrays; nothing here knows the network.
"""
from __future__ import annotations

import cv2
import numpy as np

from dinstyle.config import LUMA

PALETTE_PIXELS = 4096  # pixels of the painting kept as its palette (a style pack stores them)
FIT_PIXELS = 8192  # pixels of the output the transfer is fitted on
LUT_SIZE = 17  # lookup-table nodes per colour axis
LEVELS = 129  # quantiles matched per axis and rotation
ROUNDS = 8  # rotations of the colour axes
CHUNK = 1 << 20  # pixels looked up at a time (bounded memory at 4K and beyond)
LIGHTNESS = 0.7  # share of the painting's lightness distribution taken (0: the network's light and dark stay)
_LUMA = np.array(LUMA)  # adding grey shifts only the luma


def _rotations(n: int) -> np.ndarray:
    """``n`` fixed 3x3 rotations: the identity (the RGB axes), then seeded random ones."""
    rng = np.random.default_rng(20051017)
    mats = [np.eye(3)]
    while len(mats) < n:
        qm, r = np.linalg.qr(rng.normal(size=(3, 3)))
        mats.append(qm * np.sign(np.diag(r)))
    return np.stack(mats)


_ROTATIONS = _rotations(ROUNDS)
_LEVELS = np.linspace(0, 1, LEVELS)


def _sample(rgb: np.ndarray, n: int) -> np.ndarray:
    """About ``n`` pixels of an (H, W, 3) or (M, 3) uint8 array, evenly spaced (deterministic)."""
    flat = rgb.reshape(-1, 3)
    if len(flat) <= n:
        return np.ascontiguousarray(flat)
    return np.ascontiguousarray(flat[np.linspace(0, len(flat) - 1, n).round().astype(np.int64)])


def _identity_nodes() -> np.ndarray:
    """The lookup table's nodes as (S^3, 3) RGB in [0, 1], ordered [b][g][r]."""
    v = np.linspace(0, 1, LUT_SIZE)
    b, g, r = np.meshgrid(v, v, v, indexing="ij")
    return np.stack([r, g, b], -1).reshape(-1, 3)


def _quantiles(x: np.ndarray) -> np.ndarray:
    """(3, m) -> (3, LEVELS): each row's quantiles at ``_LEVELS`` (linear, as numpy's default),
    from one sort (numpy's quantile partitions once per level)."""
    srt = np.sort(x, axis=1)
    pos = _LEVELS * (x.shape[1] - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, x.shape[1] - 1)
    return srt[:, lo] + (pos - lo) * (srt[:, hi] - srt[:, lo])


def _knots(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 1-D map src[i] -> dst[i] with ties merged: a value that fills several quantiles (a flat
    area, a clipped channel) goes to the mean of their targets, the middle of its share, not to
    one end of it."""
    knots, first, count = np.unique(src, return_index=True, return_counts=True)
    return knots, np.add.reduceat(dst, first) / count


class Palette:
    """A painting's palette: ``pixels`` (n, 3) uint8, a sample of its pixels (``of`` takes
    ``PALETTE_PIXELS``; a style pack stores them). Its quantiles along the transfer's axes are
    computed once and reused for every image."""

    def __init__(self, pixels: np.ndarray):
        pixels = np.asarray(pixels)
        if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != 3 or len(pixels) < 1:
            raise ValueError(f"a palette is (n, 3) uint8 pixels, got {pixels.dtype} {pixels.shape}")
        self.pixels = pixels
        self._targets: np.ndarray | None = None

    @classmethod
    def of(cls, rgb: np.ndarray) -> "Palette":
        """The palette of an (H, W, 3) uint8 image."""
        return cls(_sample(rgb, PALETTE_PIXELS))

    @classmethod
    def mix(cls, items: list[tuple["Palette", float]]) -> "Palette":
        """The palette of blended styles: each palette's pixels in proportion to its weight (one
        palette with all the weight is returned as it is)."""
        items = [(p, w) for p, w in items if w > 0]
        if len(items) == 1:
            return items[0][0]
        total = sum(w for _, w in items)
        parts = []
        for p, w in items:  # exactly n rows each (repeated where a palette holds fewer), so shares follow the weights
            n = max(1, round(PALETTE_PIXELS * w / total))
            parts.append(p.pixels[np.linspace(0, len(p.pixels) - 1, n).round().astype(np.int64)])
        return cls(np.concatenate(parts))

    def targets(self) -> np.ndarray:
        """(ROUNDS, 3, LEVELS): the palette's quantiles along each rotation's axes."""
        if self._targets is None:
            t = self.pixels.astype(np.float64) / 255
            self._targets = np.stack([_quantiles(rot.T @ t.T) for rot in _ROTATIONS])
        return self._targets


class PaletteMap:
    """A colour mapping as a lookup table: ``table`` (S, S, S, 3) float32, RGB in [0, 1], indexed
    [b][g][r]. ``fit`` builds one from an output and a palette; ``apply`` maps images."""

    def __init__(self, table: np.ndarray):
        self.table = table

    @classmethod
    def identity(cls) -> "PaletteMap":
        return cls(_identity_nodes().reshape(LUT_SIZE, LUT_SIZE, LUT_SIZE, 3).astype(np.float32))

    @classmethod
    def fit(cls, rgb: np.ndarray, palette: Palette, amount: float = 1.0, lightness: float = LIGHTNESS) -> "PaletteMap":
        """The transfer of ``rgb``'s colours (an image or pixels, uint8) onto ``palette``'s, taken
        ``amount`` of the way (0 = identity, 1 = the whole transfer). Each rotation matches the
        sample's quantiles along its three axes to the palette's, moving the table's nodes alike.
        Then each node's luma is set back ``1 - lightness`` of the way to its own (a grey shift:
        hue and saturation stay the painting's), so that share of the network's light and dark,
        which carry the photo's structure and the strokes' contrast, is kept."""
        x = _sample(rgb, FIT_PIXELS).astype(np.float64).T / 255  # (3, m): rows contiguous
        start = _identity_nodes().T  # (3, S^3)
        nodes = start
        for rot, dst in zip(_ROTATIONS, palette.targets()):
            xs, ns = rot.T @ x, rot.T @ nodes  # coordinates along the rotated axes
            src = _quantiles(xs)  # (3, LEVELS)
            for k in range(3):
                knots, to = _knots(src[k], dst[k])
                xs[k] = np.interp(xs[k], knots, to)
                ns[k] = np.interp(ns[k], knots, to)
            x, nodes = rot @ xs, rot @ ns
        nodes = nodes.clip(0, 1)
        nodes += _LUMA @ (start - nodes) * (1.0 - float(lightness))
        table = start + float(amount) * (nodes.clip(0, 1) - start)
        return cls(np.ascontiguousarray(table.T.reshape(LUT_SIZE, LUT_SIZE, LUT_SIZE, 3), np.float32))

    def toward(self, other: "PaletteMap", weight: float) -> "PaletteMap":
        """This map moved ``weight`` of the way to ``other`` (0 = this one): smoothing over frames."""
        return PaletteMap(self.table + np.float32(weight) * (other.table - self.table))

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> the mapped (H, W, 3) uint8: trilinear lookup, as two bilinear lookups
        (OpenCV's remap) in the table's b-slices laid side by side, blended along b; in blocks of
        rows (bounded memory at any size)."""
        size = LUT_SIZE
        lut = np.ascontiguousarray(self.table.transpose(1, 0, 2, 3).reshape(size, size * size, 3))  # [g][b*S + r]
        v = np.arange(256, dtype=np.float32) * np.float32((size - 1) / 255)  # a channel value -> table units
        b0 = np.minimum(np.floor(v), size - 2)
        col0, frac = (b0 * size).astype(np.float32), (v - b0).astype(np.float32)
        out = np.empty_like(rgb)
        step = min(max(1, CHUNK // max(1, rgb.shape[1])), 16384)  # remap takes fewer than 32,767 rows
        for y0 in range(0, rgb.shape[0], step):
            part = rgb[y0:y0 + step]
            if part.shape[1] > 32000:  # remap's limit on a side: map the pixels as narrower rows
                out[y0:y0 + step] = self._apply_flat(part)
                continue
            r, g, b = cv2.split(part)
            mx, my, t = col0[b] + v[r], v[g], frac[b]
            lo = cv2.remap(lut, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            hi = cv2.remap(lut, mx + np.float32(size), my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            hi -= lo
            hi *= t[..., None]
            hi += lo
            out[y0:y0 + step] = cv2.convertScaleAbs(hi, alpha=255.0)
        return out

    def _apply_flat(self, part: np.ndarray) -> np.ndarray:
        """``apply`` for rows too long for remap: the pixels as rows of 4,000 (the map is per pixel)."""
        flat = part.reshape(-1, 3)
        n = len(flat)
        padded = np.zeros((-(-n // 4000) * 4000, 3), np.uint8)
        padded[:n] = flat
        return self.apply(padded.reshape(-1, 4000, 3)).reshape(-1, 3)[:n].reshape(part.shape)


def transfer_palette(rgb: np.ndarray, palette: Palette, amount: float = 1.0) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 with its colours moved ``amount`` of the way onto ``palette``'s."""
    return PaletteMap.fit(rgb, palette, amount).apply(rgb)


class PaletteSmoother:
    """Palette maps smoothed over time (video): each frame's fitted map is blended into the running
    one (one per ``key``: a mask's regions), so colours change only as fast as the scene does. Feed
    frames in order."""

    def __init__(self, momentum: float):
        self.momentum = momentum
        self.state: dict[int, PaletteMap] = {}

    def __call__(self, fitted: PaletteMap, key: int = 0) -> PaletteMap:
        prev = self.state.get(key)
        self.state[key] = fitted if prev is None else prev.toward(fitted, 1.0 - self.momentum)
        return self.state[key]
