"""``train(cfg, run_dir)``: one readable, resumable training loop.

A run folder holds:
    train_config.json   the TrainConfig (with its ModelConfig)
    checkpoint.pt       model + optimiser + step + RNG (+ the weight average, ``--ema``): train.checkpoints
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from dinstyle.checkpoint import load_vgg
from dinstyle.config import TrainConfig
from dinstyle.errors import CheckpointError, OptionError
from dinstyle.io.files import atomic_write_bytes
from dinstyle.io.images import write_image
from dinstyle.model import DinStyleNet
from dinstyle.runtime import resolve_device
from dinstyle.train.batches import Batches
from dinstyle.train.data import ImageBank
from dinstyle.train.checkpoints import init_weights, load_checkpoint, save_checkpoint
from dinstyle.train.distill import TargetSet
from dinstyle.train.ema import WeightAverage
from dinstyle.train.objective import (StyleTransferLoss, TermMeans, cpu_has_bf16, resolve_amp, style_targets,  # noqa: F401
                                      train_step)
from dinstyle.train.options import check_contrast_temp, check_ema, resume_config

GUARD_STEPS = 20  # steps timed per variant when an optional speed path is tried
TRAIN_CONFIG_NAME = "train_config.json"
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
    distill: float = float("nan")  # the distillation term (NaN: no distillation steps since the last event)


def make_optimizer(model: DinStyleNet, cfg: TrainConfig) -> torch.optim.Adam:
    param_nets = [p for n, p in model.named_parameters() if n.startswith("dins.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("dins.")]
    return torch.optim.Adam([{"params": rest, "lr": cfg.lr, "base_lr": cfg.lr},
                             {"params": param_nets, "lr": cfg.lr * cfg.param_lr_mult,
                              "base_lr": cfg.lr * cfg.param_lr_mult}])


def lr_factor(cfg: TrainConfig, step: int, warm_from: int = 0) -> float:
    """Inverse-time decay (AdaIN/MicroAST) times a linear warm-up over ``cfg.warmup`` steps from ``warm_from``."""
    warm = min(1.0, (step - warm_from + 1) / cfg.warmup) if cfg.warmup > 0 else 1.0
    return warm / (1.0 + cfg.lr_decay * step)


def set_lr(opt: torch.optim.Optimizer, cfg: TrainConfig, step: int, warm_from: int = 0) -> None:
    f = lr_factor(cfg, step, warm_from)
    for g in opt.param_groups:
        g["lr"] = g["base_lr"] * f


def _preview(path: Path, content: torch.Tensor, style: torch.Tensor, out: torch.Tensor, n: int = 4) -> None:
    rows = []
    for i in range(min(n, content.shape[0])):
        trip = [t[i].detach().float().clamp(0, 1).cpu() for t in (content, style, out)]
        rows.append(torch.cat(trip, dim=2))
    grid = (torch.cat(rows, dim=1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    write_image(path, grid, quality=90)


def load_banks(cfg: TrainConfig, device: torch.device) -> dict[str, ImageBank]:
    """Decode the run's images once: {"content", "style"} and "flat" when flat images are mixed in."""
    want_flat = bool(cfg.flat_dir or cfg.data_pack) and (cfg.flat_prob > 0 or bool(cfg.adaptive_flat_prob))
    if cfg.data_pack:
        from dinstyle.train.datapack import read_data_pack

        groups = read_data_pack(cfg.data_pack)
        banks = {g: ImageBank.decode(blobs, cfg.bank_size, names, cfg.workers)
                 for g, (blobs, names) in groups.items() if g in ("content", "style") or (g == "flat" and want_flat)}
        if "content" not in banks or "style" not in banks:
            raise CheckpointError(f"{cfg.data_pack}: the data pack needs content and style images")
    else:
        if not cfg.content_dir or not cfg.style_dir:
            raise OptionError("give --content DIR and --style DIR (or --data-pack FILE)")
        banks = {"content": ImageBank.from_folder(cfg.content_dir, cfg.bank_size, cfg.workers),
                 "style": ImageBank.from_folder(cfg.style_dir, cfg.bank_size, cfg.workers)}
        if want_flat and cfg.flat_dir:
            banks["flat"] = ImageBank.from_folder(cfg.flat_dir, cfg.bank_size, cfg.workers)
    return {k: b.to(device) for k, b in banks.items()}


def _maybe_compile(model: DinStyleNet, how: str, device: torch.device):
    """torch.compile the content path where asked ("on") or where it may pay ("auto" on CUDA);
    returns the compiled forward or None. A failure here or in the first steps falls back to eager."""
    if how == "off" or (how == "auto" and device.type != "cuda"):
        return None
    try:
        return torch.compile(model)
    except Exception:  # an optional speed path must never stop the run
        return None


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False, max_steps: int | None = None,
          on_event: Callable[[TrainEvent], None] | None = None, overrides: dict | None = None, *,
          init: str | Path | None = None, time_budget: float | None = None,
          checkpoint_seconds: float | None = None) -> dict:
    """Train (or continue training) into ``run_dir``. Stops after ``cfg.steps`` total steps, after
    ``max_steps`` more steps, when ``time_budget`` seconds (counted from this call) would be
    exceeded, or on SIGINT/SIGTERM, always leaving a checkpoint. On resume the run's saved config is
    kept, except the schedule/machine settings and any ``overrides``. ``init`` starts a new run
    from trained weights (see ``init_weights``). Returns the last loss record."""
    t_call = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = None
    if resume:
        state = load_checkpoint(run_dir)
        # the run keeps what defines it (its step count too, unless overrides give one); see resume_config
        cfg = resume_config(TrainConfig.from_dict(json.loads(state["config_json"])), cfg, overrides)
    if cfg.batch_size < 1 or cfg.crop < 16 or cfg.steps < 1:
        raise OptionError("batch size must be >= 1, crop >= 16 and steps >= 1")
    weights = (cfg.style_weight, cfg.content_weight, cfg.color_weight, cfg.palette_weight, cfg.grey_style_weight,
               cfg.grey_contrast_weight)
    if not cfg.lr > 0 or not all(math.isfinite(w) and w >= 0 for w in weights):
        raise OptionError("--lr must be > 0 and the loss weights finite and >= 0")
    check_contrast_temp(cfg.grey_contrast_temp)
    if not (cfg.style_weight or cfg.content_weight or cfg.color_weight or cfg.palette_weight or cfg.grey_style_weight
            or cfg.grey_contrast_weight or (cfg.targets and (cfg.distill_weight or cfg.distill_feature_weight))):
        raise OptionError("every loss weight is 0: nothing to train")
    if (cfg.targets and cfg.distill_prob < 1 or not cfg.targets) and not (
            cfg.style_weight or cfg.content_weight or cfg.grey_style_weight):
        raise OptionError("steps without a teacher's targets need --style-weight, --grey-style-weight or --content-weight > 0"
                          + (" (the luma contrast term only tells paintings apart)" if cfg.grey_contrast_weight else ""))
    check_ema(cfg.ema)
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
    start = warm_from = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        for g, lr in zip(opt.param_groups, (cfg.lr, cfg.lr * cfg.param_lr_mult)):
            g["base_lr"] = lr  # --lr given on resume takes effect (otherwise the same value)
        torch.set_rng_state(state["rng_cpu"])
        start = warm_from = int(state["step"])
    elif init is not None:
        init_weights(model, init)
    if main:
        atomic_write_bytes(run_dir / TRAIN_CONFIG_NAME, (json.dumps(cfg.to_dict(), indent=2) + "\n").encode())
    amp = resolve_amp(cfg.amp, device)
    scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
    channels_last = amp == "bf16" or device.type == "cuda"  # oneDNN/cuDNN run bf16 convs fastest in NHWC
    if channels_last:
        vgg = vgg.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    ema = WeightAverage(model, cfg.ema) if cfg.ema and main else None  # rank 0 alone saves it
    if ema is not None and state is not None and "ema" in state:
        ema.load_state_dict(state["ema"])  # a run that had none starts its average here

    banks = load_banks(cfg, device)
    targets = None
    if cfg.targets:
        targets, banks["style"] = TargetSet.load(cfg.targets, banks["style"], cfg.bank_size, cfg.workers)
        targets = targets.to(device)
    cache_dir = Path(cfg.style_cache_dir) if cfg.style_cache_dir else run_dir
    cache_dir.mkdir(parents=True, exist_ok=True)
    batches = Batches(cfg, banks, vgg, model, device, amp, rank, cache_dir, targets)
    batches.channels_last = channels_last
    loss_mod = StyleTransferLoss(model, vgg, cfg, amp, device)
    net: nn.Module = loss_mod
    if world > 1:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None,
                                                  broadcast_buffers=False)  # the only buffer is the VGG's constant mean
    compiled = _maybe_compile(model, cfg.compile, device) if world == 1 else None
    end = cfg.steps if max_steps is None else min(cfg.steps, start + max_steps)

    stop = {"flag": False}

    def _handler(signum, frame):  # finish the step, checkpoint, leave
        stop["flag"] = True

    old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    log_f = open(run_dir / LOG_NAME, "a") if main else open(os.devnull, "w")
    last: dict = json.loads(state["last_json"]) if state is not None else {}
    step = start
    t0, n_img = time.perf_counter(), 0
    t_ckpt = time.perf_counter()
    acc = torch.zeros(4, device=device)  # total, content, style, distill
    terms = TermMeans()  # the luma terms, each over the steps that had it
    n_acc = n_distill = 0
    step_times: list[float] = []
    ckpt_cost = 0.5  # seconds a checkpoint takes (measured at each save)
    speed = {"eager": None, "compiled": None}
    colors = bool(cfg.color_weight or cfg.palette_weight)  # the style's RGB points feed the colour / palette terms
    try:
        model.train()
        while step < end and not stop["flag"]:
            ts = time.perf_counter()
            if time_budget is not None and not step_times and ts - t_call > 0.6 * time_budget:
                stop["budget"] = True  # start-up alone took most of the budget: leave room to save
                break
            set_lr(opt, cfg, step, warm_from if resume else 0)
            plan = batches.plan(step)
            content = batches.content(plan)
            if channels_last:
                content = content.contiguous(memory_format=torch.channels_last)
            style_imgs, maps, stats = batches.style(plan)
            style_rgb = batches.style_colors(plan, style_imgs) if colors else None
            color_gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step) if colors else None
            target = batches.target(plan)
            grey = batches.style_grey_stats(plan, style_imgs) if cfg.uses_grey else None
            # optional speed path: 20 eager steps, then 20 compiled ones; the faster is kept
            use_compiled = compiled is not None and (speed["compiled"] is True or (
                speed["compiled"] is None and step - start >= GUARD_STEPS))
            if use_compiled:
                loss_mod.model = compiled
            try:
                losses, out = train_step(net, opt, content, maps, stats, plan.mode, scaler, style_rgb, color_gen, target, grey,
                                         plan.style)
            except Exception as e:
                if not use_compiled:
                    raise
                loss_mod.model = model  # the compiled path failed: go on in eager mode
                speed["compiled"] = False
                last["compile"] = f"off ({type(e).__name__})"
                losses, out = train_step(net, opt, content, maps, stats, plan.mode, scaler, style_rgb, color_gen, target, grey,
                                         plan.style)
            finally:
                loss_mod.model = model
            if ema is not None:
                ema.update(model)
            acc[:len(losses)] += losses
            terms.add(loss_mod.last_terms)
            n_acc += 1
            n_distill += len(losses) > 3
            step += 1
            n_img += cfg.batch_size
            if device.type == "cuda" and step - start <= 40:
                torch.cuda.synchronize()
            dt_step = time.perf_counter() - ts
            step_times.append(dt_step)
            if compiled is not None and speed["compiled"] is None and step - start in (GUARD_STEPS, 2 * GUARD_STEPS):
                median = sorted(step_times[-10:])[len(step_times[-10:]) // 2]
                if step - start == GUARD_STEPS:
                    speed["eager"] = median
                else:
                    speed["compiled"] = median < speed["eager"]
                    last["compile"] = "on" if speed["compiled"] else "off (slower)"
            if step % cfg.log_every == 0 or step == end:
                # the host syncs (losses, then the optional terms), every log_every steps
                vals = (acc / n_acc).tolist()
                extra = terms.means()
                distill = vals.pop() * n_acc / n_distill if n_distill else None
                acc.zero_()
                n_acc = n_distill = 0
                if not all(math.isfinite(v) for v in vals):
                    raise CheckpointError(f"training diverged at step {step} (loss {vals[0]}); "
                                          "resume from the last checkpoint with a lower --lr or --style-weight")
                dt = time.perf_counter() - t0
                last = {"step": step, "loss": round(vals[0], 6), "content": round(vals[1], 6),
                        "style": round(vals[2], 6), **({"distill": round(distill, 6)} if distill is not None else {}),
                        **{k: round(v, 6) for k, v in extra.items()},
                        "lr": opt.param_groups[0]["lr"],
                        "images_per_s": round(n_img / max(dt, 1e-9), 2), "mode": plan.mode, "device": device.type,
                        "amp": amp, "time": time.time(),
                        **({"compile": last["compile"]} if "compile" in last else {})}
                if batches.cache is not None:
                    last["style_cache_hits"] = round(batches.cache.hits / max(1, batches.cache.hits + batches.cache.misses), 3)
                log_f.write(json.dumps(last) + "\n")
                log_f.flush()
                t0, n_img = time.perf_counter(), 0
                if on_event:
                    on_event(TrainEvent(step, cfg.steps, vals[0], vals[1], vals[2], last["images_per_s"],
                                        distill=float("nan") if distill is None else distill))
            if main and cfg.preview_every and step % cfg.preview_every == 0:
                with torch.no_grad():
                    simgs = style_imgs if style_imgs is not None else batches.style_images(plan.style[:4])
                    if simgs.shape[-1] != content.shape[-1]:
                        simgs = torch.nn.functional.interpolate(simgs.float(), size=content.shape[-2:], mode="bilinear",
                                                                align_corners=False)
                    _preview(run_dir / "previews" / f"step_{step:07d}.jpg", content, simgs, out)
            due = step % cfg.checkpoint_every == 0 or (
                checkpoint_seconds is not None and time.perf_counter() - t_ckpt >= checkpoint_seconds)
            if main and due:
                tc = time.perf_counter()
                save_checkpoint(run_dir, model, opt, step, cfg, last, ema)
                batches.save()
                ckpt_cost = max(ckpt_cost, time.perf_counter() - tc)
                t_ckpt = time.perf_counter()
            if time_budget is not None:  # room for one more step and the final checkpoint?
                typical = max(step_times[-20:][1:] or step_times)
                if time.perf_counter() - t_call + 1.5 * typical + 1.5 * ckpt_cost >= time_budget:
                    stop["budget"] = True
                    break
    finally:
        if main:
            save_checkpoint(run_dir, model, opt, step, cfg, last, ema)
        batches.close()
        log_f.close()
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()
        for s, h in old.items():
            signal.signal(s, h)
        if on_event:
            on_event(TrainEvent(step, cfg.steps, last.get("loss", float("nan")), last.get("content", float("nan")),
                                last.get("style", float("nan")), 0.0, "stopped" if stop["flag"] else "done"))
    return {**last, "step": step, "seconds": round(time.perf_counter() - t_call, 1),
            "stopped_by": "signal" if stop["flag"] else ("time budget" if stop.get("budget") else "steps")}
