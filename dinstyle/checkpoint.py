"""Weights on disk: a folder with config.json + model.safetensors (+ the style encoder's VGG).

    weights/
      config.json                 {"format_version", "model": ModelConfig, "trained": {...}}
      model.safetensors           DinStyleNet state dict (content path + weight/bias nets)
      vgg19_relu4_1.safetensors   style encoder, float16 (CC BY 4.0, Simonyan & Zisserman)

No pickle anywhere: safetensors for tensors, JSON for the rest, ``torch.load(weights_only=True)``
for the original ``.pth`` VGG file and training checkpoints.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dinstyle.config import FORMAT_VERSION, ModelConfig
from dinstyle.errors import CheckpointError
from dinstyle.io.files import atomic_path, atomic_write_bytes
from dinstyle.model import DinStyleNet, VGGEncoder

CONFIG_NAME = "config.json"
MODEL_NAME = "model.safetensors"
VGG_NAME = "vgg19_relu4_1.safetensors"
VGG_PTH_NAME = "vgg19_to_relu4_1.pth"
VGG_ENV = "DINSTYLE_VGG"
WEIGHTS_ENV = "DINSTYLE_WEIGHTS"

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# The shipped weights: inside the installed package (the wheel maps the repository's weights/ to
# dinstyle/weights), or the repository's own top-level weights/ in a checkout.
SHIPPED_WEIGHTS = (Path(__file__).resolve().parent / "weights", PACKAGE_ROOT / "weights")


def default_weights_dir() -> Path:
    """$DINSTYLE_WEIGHTS, else the shipped weights wherever dinstyle is installed or checked out."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env)
    for d in SHIPPED_WEIGHTS:
        if (d / MODEL_NAME).is_file():
            return d
    return next((d for d in SHIPPED_WEIGHTS if d.is_dir()), SHIPPED_WEIGHTS[0])


def _candidates_vgg() -> list[Path]:
    out = []
    env = os.environ.get(VGG_ENV)
    if env:
        out.append(Path(env))
    for base in (Path.cwd(), PACKAGE_ROOT):
        out.append(base.parent / "shared" / "models" / VGG_PTH_NAME)
    out.append(default_weights_dir() / VGG_NAME)
    return out


def find_vgg(path: str | Path | None = None) -> Path:
    """The VGG-19 (to relu4_1) weights to use: ``path``, else $DINSTYLE_VGG, else
    ``../shared/models`` next to the working folder or the package, else the shipped copy."""
    cands = [Path(path)] if path else _candidates_vgg()
    for p in cands:
        if p.is_dir():
            for name in (VGG_NAME, VGG_PTH_NAME):
                if (p / name).is_file():
                    return p / name
        elif p.is_file():
            return p
    where = ", ".join(str(c) for c in cands)
    raise CheckpointError(f"VGG-19 weights not found (looked in: {where}); pass --vgg PATH or set {VGG_ENV}")


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except (SafetensorError, RuntimeError, OSError, ValueError, EOFError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{path}: not a readable weights file ({msg[:160]})") from None
    except Exception as e:  # pickle.UnpicklingError from weights_only: code we refuse to run
        raise CheckpointError(f"{path}: refused to load ({type(e).__name__}); only plain tensors are accepted") from None
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a plain state dict of tensors")
    return obj


def load_vgg(path: str | Path | None = None) -> VGGEncoder:
    """Build the VGG encoder from a ``.pth`` state dict (torchvision layout) or a safetensors file."""
    p = find_vgg(path)
    sd = _read_tensors(p)
    sd = {k if k.startswith("features.") else f"features.{k}": v.float() for k, v in sd.items()}
    vgg = VGGEncoder()
    try:
        vgg.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{p}: not VGG-19-to-relu4_1 weights ({str(e).splitlines()[0][:160]})") from None
    return vgg


def save_vgg_fp16(vgg: VGGEncoder, dest: Path) -> None:
    sd = {k: v.detach().half().contiguous() for k, v in vgg.state_dict().items()}
    with atomic_path(dest) as tmp:
        save_file(sd, str(tmp), metadata={"credit": "VGG-19, K. Simonyan and A. Zisserman, Visual Geometry Group, "
                                          "University of Oxford", "licence": "CC BY 4.0"})


def file_digest(path: Path, n: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


def save_weights(model: DinStyleNet, dest: str | Path, trained: dict | None = None,
                 vgg: VGGEncoder | None = None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (and the VGG copy if given) into ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(dest / MODEL_NAME) as tmp:
        save_file(sd, str(tmp), metadata={"format_version": str(FORMAT_VERSION)})
    cfg = {"format_version": FORMAT_VERSION, "model": model.cfg.to_dict(), "trained": trained or {}}
    atomic_write_bytes(dest / CONFIG_NAME, (json.dumps(cfg, indent=2) + "\n").encode())
    if vgg is not None:
        save_vgg_fp16(vgg, dest / VGG_NAME)
    return dest


def read_config(weights_dir: Path) -> dict:
    path = Path(weights_dir) / CONFIG_NAME
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing (a weights folder needs {CONFIG_NAME} and {MODEL_NAME})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(cfg, dict) or cfg.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported weights format {cfg.get('format_version') if isinstance(cfg, dict) else '?'} "
                              f"(this dinstyle reads version {FORMAT_VERSION})")
    return cfg


def load_model(weights_dir: str | Path | None = None) -> tuple[DinStyleNet, dict]:
    """Rebuild the network from ``config.json`` and strictly load ``model.safetensors``.

    Returns (model, info) where info has "model_id" (hash of the weights file), "trained" and "path".
    """
    wdir = Path(weights_dir) if weights_dir else default_weights_dir()
    if wdir.is_file():
        wdir = wdir.parent
    cfg = read_config(wdir)
    try:
        mcfg = ModelConfig.from_dict(cfg.get("model", {}))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{wdir / CONFIG_NAME}: bad model config ({e})") from None
    model = DinStyleNet(mcfg)
    sd = _read_tensors(wdir / MODEL_NAME)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{wdir / MODEL_NAME}: weights do not fit the config ({str(e).splitlines()[0][:160]})") from None
    bad = [k for k, v in sd.items() if not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{wdir / MODEL_NAME}: non-finite values in {bad[0]}")
    model.eval()
    info = {"model_id": file_digest(wdir / MODEL_NAME), "trained": cfg.get("trained") or {}, "path": str(wdir)}
    return model, info
