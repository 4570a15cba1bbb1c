"""``train(cfg, run_dir)``: one readable, resumable training loop.

A run folder holds:
    train_config.json   the TrainConfig (with its ModelConfig)
    checkpoint.pt       model + optimiser + step + RNG (plain tensors; loads with weights_only=True)
    log.jsonl           one line of losses every ``log_every`` steps
    previews/step_N.jpg content | style | output grids
"""
from __future__ import annotations

import json
import math
import os
import signal
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from dinstyle.checkpoint import load_vgg, save_weights
from dinstyle.config import FORMAT_VERSION, TrainConfig
from dinstyle.errors import CheckpointError, OptionError
from dinstyle.io.files import atomic_path, atomic_write_bytes
from dinstyle.io.images import write_image
from dinstyle.model import DinStyleNet, VGGEncoder
from dinstyle.runtime import resolve_device
from dinstyle.train.data import StepBatches, list_images
from dinstyle.train.losses import content_loss, style_loss

CKPT_NAME = "checkpoint.pt"
CONFIG_NAME = "train_config.json"
LOG_NAME = "log.jsonl"


@dataclass
class TrainEvent:
    step: int
    total: int
    loss: float
    content: float
    style: float
    images_per_s: float
    kind: str = "log"  # log | checkpoint | preview | done | stopped


def make_optimizer(model: DinStyleNet, cfg: TrainConfig) -> torch.optim.Adam:
    param_nets = [p for n, p in model.named_parameters() if n.startswith("dins.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("dins.")]
    return torch.optim.Adam([{"params": rest, "lr": cfg.lr, "base_lr": cfg.lr},
                             {"params": param_nets, "lr": cfg.lr * cfg.param_lr_mult,
                              "base_lr": cfg.lr * cfg.param_lr_mult}])


def set_lr(opt: torch.optim.Optimizer, cfg: TrainConfig, step: int) -> None:
    for g in opt.param_groups:
        g["lr"] = g["base_lr"] / (1.0 + cfg.lr_decay * step)


def _autocast(device: torch.device, amp: str):
    if device.type != "cuda" or amp == "none":
        return nullcontext()
    dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    return torch.autocast("cuda", dtype=dtype)


class StyleTransferLoss(nn.Module):
    """The training objective as one module (so DistributedDataParallel can wrap it):
    style path -> content path -> VGG losses. Returns (total, content, style)."""

    def __init__(self, model: DinStyleNet, vgg: VGGEncoder, cfg: TrainConfig):
        super().__init__()
        self.model, self.vgg = model, vgg
        self.content_weight, self.style_weight = cfg.content_weight, cfg.style_weight

    def forward(self, content: torch.Tensor, style: torch.Tensor, mode: str = "standard"):
        with torch.no_grad():
            sf = self.vgg(style)
            cf = self.vgg(content, taps=("relu4_1",))
        out = self.model(content, self.model.style_params(sf, mode))
        of = self.vgg(out)
        lc = content_loss(of, cf).mean()
        ls = style_loss(of, sf).mean()
        return self.content_weight * lc + self.style_weight * ls, lc, ls


def train_step(net: nn.Module, opt: torch.optim.Optimizer, content: torch.Tensor, style: torch.Tensor,
               mode: str = "standard", amp: str = "none", scaler: torch.amp.GradScaler | None = None) -> dict[str, float]:
    """One optimisation step of ``net`` (a StyleTransferLoss, maybe DDP-wrapped) on [0, 1] batches."""
    with _autocast(content.device, amp):
        loss, lc, ls = net(content, style, mode)
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    return {"loss": loss.item(), "content": lc.item(), "style": ls.item()}


def save_checkpoint(run_dir: Path, model: DinStyleNet, opt: torch.optim.Optimizer, step: int, cfg: TrainConfig,
                    last: dict | None = None) -> Path:
    state = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": _to_cpu(opt.state_dict()),
        "rng_cpu": torch.get_rng_state(),
        "config_json": json.dumps(cfg.to_dict()),
        "last_json": json.dumps(last or {}),
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


def _preview(path: Path, content: torch.Tensor, style: torch.Tensor, out: torch.Tensor, n: int = 4) -> None:
    rows = []
    for i in range(min(n, content.shape[0])):
        trip = [t[i].detach().float().clamp(0, 1).cpu() for t in (content, style, out)]
        rows.append(torch.cat(trip, dim=2))
    grid = (torch.cat(rows, dim=1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    write_image(path, grid, quality=90)


def _worker_ignores_stop_signals(_worker_id: int) -> None:
    """Ctrl-C or SIGTERM sent to the whole process group (``kill``/``pkill`` of the command, a job
    scheduler) must stop the run at a step boundary: the main process checkpoints and then shuts its
    data workers down; a worker dying first would interrupt the step in the middle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _worker_died(e: RuntimeError) -> bool:
    """PyTorch reports a data worker killed from outside as a RuntimeError, raised wherever the
    main process happens to be (fetching the next batch or in the middle of a step)."""
    return "DataLoader worker" in str(e)


def _batches(loader, stop: dict):
    """Iterate the loader; a data worker killed from outside ends the run like a stop signal:
    checkpoint and leave, no traceback."""
    it = iter(loader)
    while True:
        try:
            yield next(it)
        except StopIteration:
            return
        except RuntimeError as e:
            if not _worker_died(e):
                raise
            stop["flag"] = True
            return


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False, max_steps: int | None = None,
          on_event: Callable[[TrainEvent], None] | None = None, overrides: dict | None = None) -> dict:
    """Train (or continue training) into ``run_dir``. Stops after ``cfg.steps`` total steps, after
    ``max_steps`` more steps, or on SIGINT/SIGTERM, always leaving a checkpoint. On resume the run's
    saved config is kept, except the schedule/machine settings and any ``overrides``.
    Returns the last loss record."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = None
    if resume:
        state = load_checkpoint(run_dir)
        saved = TrainConfig.from_dict(json.loads(state["config_json"]))
        # keep what defines the run; allow the schedule and machine settings to change
        saved.steps, saved.device, saved.workers, saved.amp = cfg.steps, cfg.device, cfg.workers, cfg.amp
        saved.checkpoint_every, saved.preview_every, saved.log_every = cfg.checkpoint_every, cfg.preview_every, cfg.log_every
        saved.content_dir, saved.style_dir = cfg.content_dir or saved.content_dir, cfg.style_dir or saved.style_dir
        for k, v in (overrides or {}).items():  # e.g. larger crops when a run moves to a GPU
            setattr(saved, k, v)
        cfg = saved
    if cfg.batch_size < 1 or cfg.crop < 16 or cfg.steps < 1:
        raise OptionError("batch size must be >= 1, crop >= 16 and steps >= 1")
    if cfg.deformable_prob > 0 and not cfg.model.deform_kernel:
        raise OptionError("--deformable-prob needs a model with deformable layers (--deform-kernel 3)")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(cfg.device)
    if world > 1:  # launched by torchrun: one process per GPU (or CPU worker, gloo)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
    main = rank == 0
    torch.manual_seed(cfg.seed)
    model = DinStyleNet(cfg.model).to(device)
    vgg = load_vgg(cfg.vgg).to(device)
    opt = make_optimizer(model, cfg)
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        for g, lr in zip(opt.param_groups, (cfg.lr, cfg.lr * cfg.param_lr_mult)):
            g["base_lr"] = lr  # --lr given on resume takes effect (otherwise the same value)
        torch.set_rng_state(state["rng_cpu"])
        start = int(state["step"])
    if main:
        atomic_write_bytes(run_dir / CONFIG_NAME, (json.dumps(cfg.to_dict(), indent=2) + "\n").encode())
    amp = cfg.amp if cfg.amp != "auto" else ("bf16" if device.type == "cuda" else "none")
    scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True

    net: nn.Module = StyleTransferLoss(model, vgg, cfg)
    if world > 1:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    # each rank draws its own batches (rank 0 the same ones as a single-process run): a sharded sampler
    dataset = StepBatches(list_images(cfg.content_dir), list_images(cfg.style_dir), cfg.batch_size, cfg.crop, cfg.seed,
                          list_images(cfg.flat_dir) if cfg.flat_dir and (cfg.flat_prob > 0 or cfg.adaptive_flat_prob) else None,
                          cfg.flat_prob, cfg.adaptive_prob, rank=rank, deformable_prob=cfg.deformable_prob,
                          adaptive_flat_prob=cfg.adaptive_flat_prob)
    end = cfg.steps if max_steps is None else min(cfg.steps, start + max_steps)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=range(start, end), num_workers=cfg.workers,
        pin_memory=device.type == "cuda", prefetch_factor=4 if cfg.workers > 0 else None,
        persistent_workers=False, worker_init_fn=_worker_ignores_stop_signals)

    stop = {"flag": False}

    def _handler(signum, frame):  # finish the step, checkpoint, leave
        stop["flag"] = True

    old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    log_f = open(run_dir / LOG_NAME, "a") if main else open(os.devnull, "w")
    last: dict = json.loads(state["last_json"]) if state is not None else {}
    step = start
    t0, n_img = time.perf_counter(), 0
    try:
        model.train()
        for batch in _batches(loader, stop):
            step = batch["step"]
            set_lr(opt, cfg, step)
            content = batch["content"].to(device, non_blocking=True).float().div_(255)
            style = batch["style"].to(device, non_blocking=True).float().div_(255)
            if device.type == "cuda":
                content = content.contiguous(memory_format=torch.channels_last)
                style = style.contiguous(memory_format=torch.channels_last)
            mode = batch["mode"]
            try:
                losses = train_step(net, opt, content, style, mode, amp, scaler)
            except RuntimeError as e:
                if not _worker_died(e):
                    raise
                stop["flag"] = True
                break  # the finally block checkpoints the steps completed so far
            if not all(math.isfinite(v) for v in losses.values()):
                raise CheckpointError(f"training diverged at step {step} (loss {losses['loss']}); "
                                      "resume from the last checkpoint with a lower --lr or --style-weight")
            step += 1
            n_img += cfg.batch_size
            if step % cfg.log_every == 0 or step == end:
                dt = time.perf_counter() - t0
                last = {"step": step, **{k: round(v, 6) for k, v in losses.items()},
                        "lr": opt.param_groups[0]["lr"], "images_per_s": round(n_img / max(dt, 1e-9), 2),
                        "mode": mode, "device": device.type, "time": time.time()}
                log_f.write(json.dumps(last) + "\n")
                log_f.flush()
                t0, n_img = time.perf_counter(), 0
                if on_event:
                    on_event(TrainEvent(step, cfg.steps, losses["loss"], losses["content"], losses["style"],
                                        last["images_per_s"]))
            if main and cfg.preview_every and step % cfg.preview_every == 0:
                with torch.no_grad():
                    model.eval()
                    out = model(content[:4], model.style_params(vgg(style[:4]), mode))
                    model.train()
                _preview(run_dir / "previews" / f"step_{step:07d}.jpg", content, style, out)
            if main and step % cfg.checkpoint_every == 0:
                save_checkpoint(run_dir, model, opt, step, cfg, last)
            if stop["flag"]:
                break
    finally:
        if main:
            save_checkpoint(run_dir, model, opt, step, cfg, last)
        log_f.close()
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()
        for s, h in old.items():
            signal.signal(s, h)
        if on_event:
            on_event(TrainEvent(step, cfg.steps, last.get("loss", float("nan")), last.get("content", float("nan")),
                                last.get("style", float("nan")), 0.0, "stopped" if stop["flag"] else "done"))
    return {**last, "step": step}


def export_weights(run_dir: str | Path, dest: str | Path, vgg_path: str | None = None, note: str = "") -> Path:
    """Turn a run's checkpoint into the shipped format (config.json + model.safetensors + VGG fp16)."""
    state = load_checkpoint(Path(run_dir))
    cfg = TrainConfig.from_dict(json.loads(state["config_json"]))
    model = DinStyleNet(cfg.model)
    model.load_state_dict(state["model"])
    last = json.loads(state["last_json"])
    trained = {"steps": int(state["step"]), "batch_size": cfg.batch_size, "crop": cfg.crop,
               "style_weight": cfg.style_weight, "content_weight": cfg.content_weight,
               "adaptive_prob": cfg.adaptive_prob, "deformable_prob": cfg.deformable_prob, "flat_prob": cfg.flat_prob, "adaptive_flat_prob": cfg.adaptive_flat_prob,
               "last_losses": {k: last.get(k) for k in ("loss", "content", "style")},
               "device": last.get("device"), "note": note}
    return save_weights(model, dest, trained=trained, vgg=load_vgg(vgg_path or cfg.vgg))
