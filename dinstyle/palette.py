"""Palette transfer: move a stylized image's colours onto its painting's palette.

The network lays the painting's strokes, but its colours come out muted where the painting is
saturated (Starry Night pink-violet rather than blue and yellow). This stage moves the output's
colour distribution onto the painting's by iterative distribution transfer (Pitié, Kokaram and
Dahyot 2005): along each of a fixed set of rotated colour axes, the output's 1-D distribution is
quantile-matched to the painting's, and the rotations are repeated so the 3-D distributions meet.
Where each output colour goes is decided by its rank, so the network's light and dark, and its
strokes, keep their places; only their colours move.

The transfer is fitted on a sample of the output's pixels against a sample of the painting's
(``Palette.of``: 4,096 pixels, what a style pack stores), pushed through a 33^3 colour lookup table
and applied by trilinear lookup (``PaletteMap``), so its cost barely grows with the image: the
lookup is one pass over the pixels. Deterministic: fixed rotations, evenly spaced samples.

Images in and out are (H, W, 3) uint8 RGB arrays; nothing here knows the network.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

PALETTE_PIXELS = 4096  # pixels of the painting kept as its palette (a style pack stores them)
FIT_PIXELS = 16384  # pixels of the output the transfer is fitted on
LUT_SIZE = 33  # lookup-table nodes per colour axis
LEVELS = 129  # quantiles matched per axis and rotation
ROUNDS = 8  # rotations of the colour axes
CHUNK = 1 << 20  # pixels looked up at a time (bounded memory at 4K and beyond)
LIGHTNESS = 0.0  # share of the painting's lightness distribution taken (0: the network's light and dark stay)
_LUMA = np.array([0.299, 0.587, 0.114])  # BT.601: the weights sum to 1, so adding grey shifts only the luma


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
_RAMP = np.arange(LEVELS) * 1e-9  # ties (flat areas) -> strictly increasing knots


def _sample(rgb: np.ndarray, n: int) -> np.ndarray:
    """About ``n`` pixels of an (H, W, 3) or (M, 3) uint8 array, evenly spaced (deterministic)."""
    flat = rgb.reshape(-1, 3)
    if len(flat) <= n:
        return np.ascontiguousarray(flat)
    return np.ascontiguousarray(flat[np.linspace(0, len(flat) - 1, n).round().astype(np.int64)])


def _identity_nodes() -> np.ndarray:
    """The lookup table's nodes as (S^3, 3) RGB in [0, 1], ordered [b][g][r] (grid_sample's D, H, W)."""
    v = np.linspace(0, 1, LUT_SIZE)
    b, g, r = np.meshgrid(v, v, v, indexing="ij")
    return np.stack([r, g, b], -1).reshape(-1, 3)


def _table(nodes: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(nodes.T.reshape(3, LUT_SIZE, LUT_SIZE, LUT_SIZE), np.float32))


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
            self._targets = np.stack([np.quantile(t @ rot, _LEVELS, axis=0).T for rot in _ROTATIONS])
        return self._targets


class PaletteMap:
    """A colour mapping as a lookup table: ``table`` (3, S, S, S) float32, RGB in [0, 1], indexed
    [channel][b][g][r]. ``fit`` builds one from an output and a palette; ``apply`` maps images."""

    def __init__(self, table: torch.Tensor):
        self.table = table

    @classmethod
    def identity(cls) -> "PaletteMap":
        return cls(_table(_identity_nodes()))

    @classmethod
    def fit(cls, rgb: np.ndarray, palette: Palette, amount: float = 1.0, lightness: float = LIGHTNESS) -> "PaletteMap":
        """The transfer of ``rgb``'s colours (an image or pixels, uint8) onto ``palette``'s, taken
        ``amount`` of the way (0 = identity, 1 = the whole transfer). Each rotation matches the
        sample's quantiles along its three axes to the palette's, moving the table's nodes alike.
        Then each node's luma is set back ``1 - lightness`` of the way to its own (a grey shift:
        hue and saturation stay the painting's), so the network's light and dark, which carry the
        photo's structure and the strokes' contrast, are kept."""
        x = _sample(rgb, FIT_PIXELS).astype(np.float64) / 255
        start = _identity_nodes()
        nodes = start
        for rot, dst in zip(_ROTATIONS, palette.targets()):
            xs, ns = x @ rot, nodes @ rot
            src = np.quantile(xs, _LEVELS, axis=0).T + _RAMP  # (3, LEVELS)
            for k in range(3):
                xs[:, k] = np.interp(xs[:, k], src[k], dst[k])
                ns[:, k] = np.interp(ns[:, k], src[k], dst[k])
            x, nodes = xs @ rot.T, ns @ rot.T
        nodes = nodes.clip(0, 1)
        nodes += ((start - nodes) @ _LUMA * (1.0 - float(lightness)))[:, None]
        return cls(_table(start + float(amount) * (nodes.clip(0, 1) - start)))

    def toward(self, other: "PaletteMap", weight: float) -> "PaletteMap":
        """This map moved ``weight`` of the way to ``other`` (0 = this one): smoothing over frames."""
        return PaletteMap(torch.lerp(self.table, other.table, float(weight)))

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> the mapped (H, W, 3) uint8 (trilinear lookup, in chunks of pixels)."""
        flat = rgb.reshape(-1, 3)
        out = np.empty_like(flat)
        lut = self.table[None]  # (1, 3, S, S, S)
        scale = torch.tensor(2 / 255)
        for i in range(0, len(flat), CHUNK):
            px = torch.from_numpy(np.array(flat[i:i + CHUNK], np.float32)).mul_(scale).sub_(1)  # (m, 3) in [-1, 1]
            y = F.grid_sample(lut, px.view(1, 1, 1, -1, 3), mode="bilinear", padding_mode="border",
                              align_corners=True).view(3, -1)  # (3, m), [0, 1]
            out[i:i + CHUNK] = y.mul_(255).add_(0.5).clamp_(0, 255).to(torch.uint8).T.numpy()
        return out.reshape(rgb.shape)


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
