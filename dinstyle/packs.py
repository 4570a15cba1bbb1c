"""Style packs: one style's DIN parameters, precomputed, in a small safetensors file.

A pack holds, for every DIN layer, the weight and bias predicted from the style image, the
painting's palette (a sample of its pixels, for the palette transfer; packs made before it was
kept load without one), plus metadata (source file, the model id it was made with, mode, the size
the style was encoded at).
Using a pack skips the style encoder entirely. safetensors stores only tensors and strings, so a
pack can never carry code.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from dinstyle.errors import CheckpointError
from dinstyle.io.files import atomic_write_bytes, q
from dinstyle.model.kinds import KINDS, MODES, DinParams

PACK_EXT = ".dinpack"  # a safetensors file
PACK_FORMAT = "dinstyle-pack"
PACK_VERSION = 2  # 2: may hold the painting's palette; 1 (without) is still read
READ_VERSIONS = ("1", "2")
# A pack is untrusted input: nothing its header declares is allocated before it is checked.
MAX_LAYERS = 16  # the model has 3 DIN layers
MAX_PALETTE = 65536  # palette pixels (packs store 4,096)
PALETTE_KEY = "palette"
_NAMES = sorted({name for kind in KINDS.values() for name in kind.tensors})
_KEY = re.compile(r"din(\d{1,3})\.(" + "|".join(_NAMES) + ")")
_FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}


@dataclass
class StylePack:
    params: DinParams  # batch dim 1, float32, CPU; their kind is the pack's mode
    model_id: str
    source: str
    style_size: int
    palette: np.ndarray | None = None  # (n, 3) uint8: a sample of the painting's pixels

    @property
    def mode(self) -> str:
        return self.params.mode

    @property
    def label(self) -> str:
        return Path(self.source).stem or "style"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        tensors = {}
        for i, p in enumerate(self.params):
            for k, v in p.items():
                tensors[f"din{i}.{k}"] = v.detach().float().cpu().contiguous()
        if self.palette is not None:
            tensors[PALETTE_KEY] = torch.from_numpy(np.asarray(self.palette, np.float16).reshape(-1, 3))  # 0..255 exact
        meta = {"format": PACK_FORMAT, "version": str(PACK_VERSION), "model_id": self.model_id, "mode": self.mode,
                "source": self.source, "style_size": str(self.style_size), "layers": str(len(self.params)),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "extra": "{}"}
        atomic_write_bytes(path, save(tensors, metadata=meta))  # a full disk is an OSError here, not a torn file
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


def _read_header(path: Path) -> tuple[dict, dict[str, tuple[int, ...]]]:
    """The pack's metadata and its tensors' shapes, read from the header alone."""
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            keys = list(f.keys())
            if len(keys) > 3 * MAX_LAYERS + 1:
                raise CheckpointError(f"{q(path)}: not a valid style pack ({len(keys)} tensors)")
            shapes, dtypes = {}, set()
            for k in keys:
                sl = f.get_slice(k)
                shapes[k] = tuple(sl.get_shape())
                dtypes.add(sl.get_dtype())
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{q(path)}: not a readable style pack ({str(e).splitlines()[0][:120]})") from None
    if not dtypes <= _FLOAT_DTYPES:
        raise CheckpointError(f"{q(path)}: style pack holds {', '.join(sorted(dtypes - _FLOAT_DTYPES))} tensors, "
                              "expected floating point")
    return meta, shapes


def _layer_shapes(path: Path, meta: dict, shapes: dict[str, tuple[int, ...]]) -> list[dict[str, tuple[int, ...]]]:
    """Per layer {name: shape}, checked against the declared layer count and for empty tensors."""
    try:
        n = int(meta["layers"])
    except (KeyError, ValueError):
        raise CheckpointError(f"{q(path)}: incomplete style pack (no layer count)") from None
    if not 1 <= n <= MAX_LAYERS:
        raise CheckpointError(f"{q(path)}: style pack declares {n} layers (a model has at most {MAX_LAYERS})")
    layers: list[dict[str, tuple[int, ...]]] = [{} for _ in range(n)]
    for k, shape in shapes.items():
        if k == PALETTE_KEY:
            if len(shape) != 2 or shape[1] != 3 or not 1 <= shape[0] <= MAX_PALETTE:
                raise CheckpointError(f"{q(path)}: the style pack's palette has shape {shape}, expected (n, 3), "
                                      f"n <= {MAX_PALETTE}")
            continue
        m = _KEY.fullmatch(k)
        if not m or int(m[1]) >= n:
            raise CheckpointError(f"{q(path)}: unexpected tensor {k[:60]!r} in a {n}-layer style pack")
        if not shape or min(shape) < 1:
            raise CheckpointError(f"{q(path)}: {k} is empty (shape {shape})")
        layers[int(m[1])][m[2]] = shape
    for i, p in enumerate(layers):
        if "weight" not in p or "bias" not in p:
            raise CheckpointError(f"{q(path)}: incomplete style pack (layer {i} has no weight/bias)")
    return layers


def load_pack(path: str | Path, expected: Callable[[str], DinParams] | None = None) -> StylePack:
    """Read and validate a pack (format, version, mode, layers, shapes, finite values); with
    ``expected`` (mode -> the model's parameter shapes) the shapes are checked against the model
    before any tensor is read. Model id and the rest: ``check_pack``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{q(path)}: no such style pack")
    meta, shapes = _read_header(path)
    if meta.get("format") != PACK_FORMAT:
        raise CheckpointError(f"{q(path)}: not a dinstyle style pack")
    if meta.get("version") not in READ_VERSIONS:
        raise CheckpointError(f"{q(path)}: style pack version {str(meta.get('version'))[:20]} is not supported "
                              f"(this dinstyle reads versions {' and '.join(READ_VERSIONS)}); run `dinstyle precompute` again")
    mode = meta.get("mode", "standard")
    if mode not in MODES:
        raise CheckpointError(f"{q(path)}: style pack has an unknown mode {mode[:40]!r} (expected {', '.join(MODES)})")
    layers = _layer_shapes(path, meta, shapes)
    try:
        want = expected(mode) if expected else None
    except CheckpointError as e:
        raise CheckpointError(f"{q(path)}: {e}") from None
    _check_shapes(layers, mode, want, path)
    try:
        style_size = int(meta.get("style_size", "0"))
        if not isinstance(json.loads(meta.get("extra", "{}")), dict):  # reserved; always {} so far
            raise ValueError("extra is not a JSON object")
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"{q(path)}: incomplete style pack ({str(e)[:80]})") from None
    try:
        with safe_open(str(path), "pt") as f:
            params = [{k: f.get_tensor(f"din{i}.{k}").float() for k in layer} for i, layer in enumerate(layers)]
            palette = f.get_tensor(PALETTE_KEY).float() if PALETTE_KEY in shapes else None
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{q(path)}: not a readable style pack ({str(e).splitlines()[0][:120]})") from None
    for i, p in enumerate(params):
        for k, v in p.items():
            if not torch.isfinite(v).all():
                raise CheckpointError(f"{q(path)}: layer {i} {k} holds NaN or infinite values")
    if palette is not None:
        if not (torch.isfinite(palette).all() and palette.min() >= 0 and palette.max() <= 255):
            raise CheckpointError(f"{q(path)}: the style pack's palette holds values outside 0..255")
        palette = palette.round().to(torch.uint8).numpy()
    return StylePack(params=DinParams(mode, params), model_id=meta.get("model_id", "")[:64],
                     source=meta.get("source", path.name)[:255], style_size=style_size, palette=palette)


def _check_shapes(layers: list[dict[str, tuple[int, ...]]], mode: str, expected: DinParams | None, path) -> None:
    """Layers' tensor shapes as the kind allows them, then against the model's (``expected``)."""
    kind = KINDS[mode]
    for i, p in enumerate(layers):
        problem = kind.layer_problem(p)
        if problem:
            raise CheckpointError(f"{q(path)}: layer {i} {problem}")
    if expected is None:
        return
    if len(layers) != len(expected):
        raise CheckpointError(f"{q(path)}: style pack has {len(layers)} layers, the model has {len(expected)}")
    for i, (p, e) in enumerate(zip(layers, expected)):
        if set(p) != set(e):
            raise CheckpointError(f"{q(path)}: layer {i} holds {sorted(p)}, the model expects {sorted(e)}")
        for k in e:
            if not kind.same_shape(tuple(p[k]), tuple(e[k].shape)):
                raise CheckpointError(f"{q(path)}: layer {i} {k} has shape {tuple(p[k])}, these weights expect "
                                      f"{tuple(e[k].shape)} (a pack of other weights?); run `dinstyle precompute` "
                                      "again with these weights")


def check_pack(pack: StylePack, path: str | Path, model_id: str, expected: DinParams) -> None:
    """Refuse a pack made by another model, or whose tensors do not fit this one."""
    if pack.model_id != model_id:
        raise CheckpointError(f"{q(path)}: style pack was made by model {pack.model_id or '?'}, but the loaded model is "
                              f"{model_id}; run `dinstyle precompute` again with these weights")
    _check_shapes([{k: tuple(v.shape) for k, v in p.items()} for p in pack.params], pack.mode, expected, path)

