"""Work done once per style image: its VGG-19 taps at the fixed training view.

A style is seen in training the way it is at inference, whole and at one size, so its VGG maps
(the weight/bias nets' input) and its channel statistics (the style loss's target) are a pure
function of the image. They are computed the first time a style is drawn and reused from then on:
after one pass over the styles, a training pair costs no style-encoder pass at all.

Maps are stored in float16 (the statistics in float32, from the full-precision features): on a
GPU in device memory; on the CPU in a memory-mapped file, so the page cache holds what fits and
a 1,837-style set at 256 px (about 13 GB) never has to fit in RAM. On the CPU the file and a small
index (which styles are done, their statistics) are kept under a name that hashes everything the
values depend on, so a resumed run, or another run on the same styles, starts with them computed.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from dinstyle.io.files import atomic_path

from dinstyle.config import VGG_TAPS
from dinstyle.model.din import calc_mean_std

Stats = dict[str, tuple[Tensor, Tensor]]  # tap -> (mean, std), each (B, C, 1, 1) float32


class StyleCache:
    """``path``: the CPU cache file (None: in memory). ``keep``: leave the file and its index for the
    next run (the name must then identify the contents: see ``cache_key``)."""

    def __init__(self, n: int, map_taps: tuple[str, ...], device: torch.device, path: Path | None = None,
                 keep: bool = False):
        self.n, self.map_taps, self.device, self.path = n, tuple(map_taps), device, path
        self.keep = keep and path is not None and device.type == "cpu"
        self.valid = torch.zeros(n, dtype=torch.bool)
        self.maps: dict[str, Tensor] = {}
        self.stats: dict[str, tuple[Tensor, Tensor]] = {}
        self.hits = self.misses = 0
        if self.keep:
            self._reopen()

    @property
    def index_path(self) -> Path:
        return self.path.with_name(self.path.name + ".index")

    def _reopen(self) -> None:
        """Map a kept cache file and load its index, if both are there and agree."""
        try:
            idx = load_file(str(self.index_path))
            shapes = json.loads(bytes(idx.pop("shapes").tolist()).decode())
        except Exception:  # missing or damaged index: start afresh
            return
        numel = sum(self.n * int(torch.tensor(shapes[t]).prod()) for t in self.map_taps)
        if set(shapes) != set(self.map_taps) or idx["valid"].numel() != self.n or \
                not self.path.exists() or self.path.stat().st_size != 2 * numel:
            return
        self._map({t: tuple(shapes[t]) for t in self.map_taps}, fresh=False)
        self.valid = idx.pop("valid").bool()
        self.stats = {t: (idx[f"{t}.mean"], idx[f"{t}.std"]) for t in (k[:-5] for k in idx if k.endswith(".mean"))}

    def _map(self, shapes: dict[str, tuple[int, ...]], fresh: bool) -> None:
        numel = {t: self.n * int(torch.tensor(shapes[t]).prod()) for t in self.map_taps}
        if self.path is not None and self.device.type == "cpu":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if fresh and self.path.exists():
                self.path.unlink()
            flat = torch.from_file(str(self.path), shared=True, size=sum(numel.values()), dtype=torch.float16)
        else:
            flat = torch.empty(sum(numel.values()), dtype=torch.float16, device=self.device)
        offset = 0
        for t in self.map_taps:
            self.maps[t] = flat[offset:offset + numel[t]].view(self.n, *shapes[t])
            offset += numel[t]

    def _allocate(self, feats: dict[str, Tensor]) -> None:
        self._map({t: tuple(feats[t].shape[1:]) for t in self.map_taps}, fresh=True)
        for t in VGG_TAPS:
            c = feats[t].shape[1]
            self.stats[t] = (torch.zeros(self.n, c, 1, 1, device=self.device),
                             torch.zeros(self.n, c, 1, 1, device=self.device))

    def save_index(self) -> None:
        """Record which styles are done (kept caches only; called at checkpoints and at the end)."""
        if not self.keep or not self.maps:
            return
        shapes = json.dumps({t: list(self.maps[t].shape[1:]) for t in self.map_taps}).encode()
        tensors = {"valid": self.valid.to(torch.uint8), "shapes": torch.tensor(list(shapes), dtype=torch.uint8)}
        for t, (m, sd) in self.stats.items():
            tensors[f"{t}.mean"], tensors[f"{t}.std"] = m.contiguous(), sd.contiguous()
        with atomic_path(self.index_path) as tmp:
            save_file(tensors, str(tmp))

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
        if self.keep:
            self.save_index()
            self.maps.clear()
            return
        self.maps.clear()
        if self.path is not None and self.path.exists():
            try:
                os.unlink(self.path)
            except OSError:
                pass


def cache_key(*parts) -> str:
    """A short name for what a cache's values depend on (VGG weights, view, the style images, precision)."""
    import hashlib

    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode())
    return h.hexdigest()[:16]
