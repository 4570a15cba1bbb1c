"""Style packs: one style's DIN parameters, precomputed, in a small safetensors file.

A pack holds, for every DIN layer, the weight and bias predicted from the style image, plus
metadata (source file, the model id it was made with, mode, the size the style was encoded at).
Using a pack skips the style encoder entirely. safetensors stores only tensors and strings, so a
pack can never carry code.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from dinstyle.errors import CheckpointError
from dinstyle.io.files import atomic_path

PACK_EXT = ".dinpack"  # a safetensors file
PACK_FORMAT = "dinstyle-pack"
PACK_VERSION = 1

Params = list[dict[str, torch.Tensor]]


@dataclass
class StylePack:
    params: Params  # per DIN layer {"weight", "bias"}, batch dim 1, float32, CPU
    model_id: str
    mode: str
    source: str
    style_size: int
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return Path(self.source).stem or "style"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        tensors = {}
        for i, p in enumerate(self.params):
            for k, v in p.items():
                tensors[f"din{i}.{k}"] = v.detach().float().cpu().contiguous()
        meta = {"format": PACK_FORMAT, "version": str(PACK_VERSION), "model_id": self.model_id, "mode": self.mode,
                "source": self.source, "style_size": str(self.style_size), "layers": str(len(self.params)),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "extra": json.dumps(self.extra)}
        with atomic_path(path, suffix=".tmp") as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return path


def is_pack(path: str | Path) -> bool:
    """A pack by extension, or a safetensors file that says it is one."""
    p = Path(path)
    if p.suffix.lower() == PACK_EXT:
        return True
    if p.suffix.lower() != ".safetensors" or not p.is_file():
        return False
    try:
        with safe_open(str(p), "pt") as f:
            return (f.metadata() or {}).get("format") == PACK_FORMAT
    except (SafetensorError, OSError, ValueError):
        return False


def load_pack(path: str | Path) -> StylePack:
    """Read and validate a pack (format, version, finite values). Model checks: ``check_pack``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such style pack")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a readable style pack ({str(e).splitlines()[0][:120]})") from None
    if meta.get("format") != PACK_FORMAT:
        raise CheckpointError(f"{path}: not a dinstyle style pack")
    if meta.get("version") != str(PACK_VERSION):
        raise CheckpointError(f"{path}: style pack version {meta.get('version')} is not supported "
                              f"(this dinstyle reads version {PACK_VERSION}); run `dinstyle precompute` again")
    try:
        n = int(meta["layers"])
        params = [{k.split(".", 1)[1]: v.float() for k, v in tensors.items() if k.startswith(f"din{i}.")}
                  for i in range(n)]
        if any("weight" not in p or "bias" not in p for p in params):
            raise KeyError("weight/bias")
        style_size = int(meta.get("style_size", "0"))
        extra = json.loads(meta.get("extra", "{}"))
    except (KeyError, ValueError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: incomplete style pack ({e})") from None
    for i, p in enumerate(params):
        for k, v in p.items():
            if not torch.isfinite(v).all():
                raise CheckpointError(f"{path}: layer {i} {k} holds NaN or infinite values")
    return StylePack(params=params, model_id=meta.get("model_id", ""), mode=meta.get("mode", "standard"),
                     source=meta.get("source", path.name), style_size=style_size, extra=extra)


def check_pack(pack: StylePack, path: str | Path, model_id: str, expected: Params) -> None:
    """Refuse a pack made by another model, or whose tensors do not fit this one."""
    if pack.model_id != model_id:
        raise CheckpointError(f"{path}: style pack was made by model {pack.model_id or '?'}, but the loaded model is "
                              f"{model_id}; run `dinstyle precompute` again with these weights")
    if len(pack.params) != len(expected):
        raise CheckpointError(f"{path}: style pack has {len(pack.params)} layers, the model has {len(expected)}")
    for i, (p, e) in enumerate(zip(pack.params, expected)):
        if set(p) != set(e):
            raise CheckpointError(f"{path}: layer {i} holds {sorted(p)}, the model expects {sorted(e)}")
        for k in e:
            got, want = tuple(p[k].shape), tuple(e[k].shape)
            if pack.mode == "adaptive":  # the maps' size follows the style image's size
                got, want = got[:2] + (len(got),), want[:2] + (len(want),)
            if got != want:
                raise CheckpointError(f"{path}: layer {i} {k} has shape {tuple(p[k].shape)}, expected {tuple(e[k].shape)}")


def blend_params(items: list[tuple[Params, float]]) -> Params:
    """Weighted blend of DIN parameters (weights normalised to sum to 1)."""
    total = sum(w for _, w in items)
    if not items or not math.isfinite(total) or total <= 0:
        raise ValueError("style weights must be positive")
    out = []
    for layer in range(len(items[0][0])):
        first = items[0][0][layer]
        out.append({k: sum(_fit(p[layer][k], first[k]) * (w / total) for p, w in items) for k in first})
    return out


def _fit(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Spatially-adaptive maps of styles with other aspect ratios are resized to the first one's."""
    if t.dim() == 4 and t.shape[-2:] != like.shape[-2:]:
        return F.interpolate(t, size=like.shape[-2:], mode="bilinear", align_corners=False)
    return t
