"""Work done once per style image: its VGG-19 taps at the fixed training view.

A style is seen in training the way it is at inference, whole and at one size, so its VGG maps
(the weight/bias nets' input) and its channel statistics (the style loss's target) are a pure
function of the image. They are computed the first time a style is drawn and reused from then on:
after one pass over the styles, a training pair costs no style-encoder pass at all.

Maps are stored in float16 (the statistics in float32, from the full-precision features): on a
GPU in device memory; on the CPU in a memory-mapped file, so the page cache holds what fits and
a 1,837-style set at 256 px (about 13 GB) never has to fit in RAM.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from dinstyle.config import VGG_TAPS
from dinstyle.model.din import calc_mean_std

Stats = dict[str, tuple[Tensor, Tensor]]  # tap -> (mean, std), each (B, C, 1, 1) float32


class StyleCache:
    def __init__(self, n: int, map_taps: tuple[str, ...], device: torch.device, path: Path | None = None):
        self.n, self.map_taps, self.device, self.path = n, tuple(map_taps), device, path
        self.valid = torch.zeros(n, dtype=torch.bool)
        self.maps: dict[str, Tensor] = {}
        self.stats: dict[str, tuple[Tensor, Tensor]] = {}
        self.hits = self.misses = 0

    def _allocate(self, feats: dict[str, Tensor]) -> None:
        offset = 0
        numel = {t: self.n * feats[t][0].numel() for t in self.map_taps}
        if self.path is not None and self.device.type == "cpu":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                self.path.unlink()
            flat = torch.from_file(str(self.path), shared=True, size=sum(numel.values()), dtype=torch.float16)
        else:
            flat = torch.empty(sum(numel.values()), dtype=torch.float16, device=self.device)
        for t in self.map_taps:
            self.maps[t] = flat[offset:offset + numel[t]].view(self.n, *feats[t].shape[1:])
            offset += numel[t]
        for t in VGG_TAPS:
            c = feats[t].shape[1]
            self.stats[t] = (torch.zeros(self.n, c, 1, 1, device=self.device),
                             torch.zeros(self.n, c, 1, 1, device=self.device))

    def lookup(self, idx: Tensor, compute: Callable[[Tensor], dict[str, Tensor]]) -> tuple[dict[str, Tensor], Stats]:
        """Maps (float16) and statistics of the styles ``idx`` (B,), running ``compute(missing
        indices) -> VGG taps`` for the styles not seen yet."""
        idx = idx.cpu()
        missing = torch.unique(idx[~self.valid[idx]])
        if len(missing):
            feats = compute(missing)
            if not self.maps:
                self._allocate(feats)
            dev_missing = missing.to(self.device)
            for t in self.map_taps:
                self.maps[t][dev_missing] = feats[t].to(self.device, torch.float16)
            for t in VGG_TAPS:
                m, s = calc_mean_std(feats[t])
                self.stats[t][0][dev_missing] = m.to(self.device)
                self.stats[t][1][dev_missing] = s.to(self.device)
            self.valid[missing] = True
        self.misses += len(missing)
        self.hits += len(idx) - len(missing)
        di = idx.to(self.device)
        return ({t: self.maps[t][di] for t in self.map_taps},
                {t: (self.stats[t][0][di], self.stats[t][1][di]) for t in VGG_TAPS})

    def close(self) -> None:
        self.maps.clear()
        if self.path is not None and self.path.exists():
            try:
                os.unlink(self.path)
            except OSError:
                pass
