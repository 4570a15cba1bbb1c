"""A run folder's checkpoint: written and read back (``--resume``), used to start a new run
(``--init``) and turned into the shipped weights format (``export-weights``).

``checkpoint.pt`` holds plain tensors and JSON strings (it loads with ``weights_only=True``): the
model, the optimiser, the step, the RNG state, the run's config, the last log record and, for runs
trained with ``--ema``, the weight average.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from dinstyle.checkpoint import load_vgg, save_weights
from dinstyle.config import FORMAT_VERSION, TrainConfig
from dinstyle.errors import CheckpointError
from dinstyle.io.files import atomic_path
from dinstyle.model import DinStyleNet
from dinstyle.train.ema import WeightAverage

CKPT_NAME = "checkpoint.pt"


def save_checkpoint(run_dir: Path, model: DinStyleNet, opt: torch.optim.Optimizer, step: int, cfg: TrainConfig,
                    last: dict | None = None, ema: WeightAverage | None = None) -> Path:
    state = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": _to_cpu(opt.state_dict()),
        "rng_cpu": torch.get_rng_state(),
        "config_json": json.dumps(cfg.to_dict()),
        "last_json": json.dumps(last or {}),
        **({"ema": ema.state_dict()} if ema is not None else {}),
    }
    dest = run_dir / CKPT_NAME
    with atomic_path(dest) as tmp:
        torch.save(state, tmp)
    return dest


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj


def load_checkpoint(run_dir: Path) -> dict:
    path = Path(run_dir) / CKPT_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file or pickled code we refuse to run
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint format")
    return state


def init_weights(model: DinStyleNet, source: str | Path) -> list[str]:
    """Start a new run from trained weights (a weights folder or a run folder, whose weight average
    where it has one: what ``export_weights`` would write) of the same or an older configuration;
    returns the names of the tensors that start fresh."""
    from dinstyle.model.net import convert_state

    src = Path(source)
    if (src / CKPT_NAME).is_file():
        ckpt = load_checkpoint(src)
        state = ckpt.get("ema", ckpt["model"])
    else:
        from dinstyle.checkpoint import load_model

        state = load_model(src)[0].state_dict()
    merged, fresh = convert_state(state, model)
    model.load_state_dict(merged)
    return fresh


def export_weights(run_dir: str | Path, dest: str | Path, vgg_path: str | None = None, note: str = "",
                   raw: bool = False) -> Path:
    """Turn a run's checkpoint into the shipped format (config.json + model.safetensors + VGG fp16):
    its weight average where it has one (``--ema``), unless ``raw`` asks for the trained weights."""
    state = load_checkpoint(Path(run_dir))
    cfg = TrainConfig.from_dict(json.loads(state["config_json"]))
    model = DinStyleNet(cfg.model)
    averaged = "ema" in state and not raw
    model.load_state_dict(state["ema"] if averaged else state["model"])
    last = json.loads(state["last_json"])
    trained = {"steps": int(state["step"]), "batch_size": cfg.batch_size, "crop": cfg.crop,
               "style_weight": cfg.style_weight, "content_weight": cfg.content_weight,
               "style_layer_weights": list(cfg.style_layer_weights), "content_zoom": list(cfg.content_zoom),
               "style_view": cfg.style_view, "adaptive_prob": cfg.adaptive_prob, "deformable_prob": cfg.deformable_prob,
               "flat_prob": cfg.flat_prob, "adaptive_flat_prob": cfg.adaptive_flat_prob,
               "color_weight": cfg.color_weight, "palette_weight": cfg.palette_weight,
               "grey_style_weight": cfg.grey_style_weight,
               "grey_contrast_weight": cfg.grey_contrast_weight,
               **({"grey_contrast_temp": cfg.grey_contrast_temp} if cfg.grey_contrast_weight else {}),
               "targets": [Path(t).name for t in cfg.targets],
               "distill_weight": cfg.distill_weight if cfg.targets else 0.0,
               "distill_feature_weight": cfg.distill_feature_weight if cfg.targets else 0.0, "distill_prob": cfg.distill_prob if cfg.targets else 0.0,
               "weight_average": cfg.ema if averaged else 0.0,
               "last_losses": {k: last.get(k) for k in ("loss", "content", "style")},
               "device": last.get("device"), "note": note}
    return save_weights(model, dest, trained=trained, vgg=load_vgg(vgg_path or cfg.vgg))
