"""The training objective: the content path's output for a batch and the weighted sum of its terms.

Terms (each weight 0 leaves its term out, and with both VGG weights 0 the VGG never runs on the
output): content (relu4_1 MSE) and style (VGG channel statistics) from ``model.losses``, the colour
term (``losses.color_loss``), the palette term, the luma style and contrast terms (``train.luma``) and, on the batches that carry a teacher's targets, the distillation
terms (``train.distill``: pixels and differences; VGG maps against the teacher's). Also the reduced-precision settings the objective runs under.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from dinstyle.config import TrainConfig
from dinstyle.errors import OptionError
from dinstyle.model import DinStyleNet, VGGEncoder
from dinstyle.model.losses import color_loss, content_loss, palette_loss, style_loss_stats
from dinstyle.train.distill import FEATURE_TAPS, distill_loss, feature_distill_loss
from dinstyle.train.luma import grey, luma_contrast_loss, luma_style_loss, output_stats


def cpu_has_bf16() -> bool:
    """bf16 matrix units (AMX) or AVX512-BF16: oneDNN then runs the VGG ~2.5x faster in bf16."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:
        return False


def resolve_amp(amp: str, device: torch.device) -> str:
    if amp not in ("auto", "bf16", "fp16", "none"):
        raise OptionError(f"--amp {amp}: use auto, bf16, fp16 or none")
    if amp == "auto":
        return "bf16" if device.type == "cuda" or cpu_has_bf16() else "none"
    if amp == "fp16" and device.type != "cuda":
        raise OptionError("--amp fp16 is for GPUs; on the CPU use bf16 or none")
    return amp


def autocast(device: torch.device, amp: str):
    if amp == "none":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if amp == "fp16" else torch.bfloat16)



class StyleTransferLoss(nn.Module):
    """The training objective as one module (so DistributedDataParallel can wrap it): DIN
    parameters from the style's VGG maps -> content path (``paint``) -> the weighted terms.
    Returns (total, content, style, output, distill); distill (the weighted sum of the distillation
    terms over their weights) is None without a target.

    ``amp`` runs the VGG in reduced precision; the content path joins it on GPUs only (on CPUs
    its depthwise convs are ~4x slower in bf16 than in float32)."""

    def __init__(self, model: DinStyleNet, vgg: VGGEncoder, cfg: TrainConfig, amp: str = "none",
                 device: torch.device | None = None):
        super().__init__()
        self.model, self.vgg = model, vgg
        self.content_weight, self.style_weight = cfg.content_weight, cfg.style_weight
        self.color_weight, self.distill_weight = cfg.color_weight, cfg.distill_weight
        self.feature_weight, self.palette_weight = cfg.distill_feature_weight, cfg.palette_weight
        self.grey_weight = cfg.grey_style_weight
        self.contrast_weight, self.contrast_temp = cfg.grey_contrast_weight, cfg.grey_contrast_temp
        # the last step's luma terms, detached, for the log: {"grey": ..., "contrast": ...} (those that ran)
        self.last_terms: dict[str, torch.Tensor] = {}
        self.layer_weights = tuple(cfg.style_layer_weights)
        self.pad = cfg.pad
        self.amp = amp
        self.device = device or torch.device("cpu")

    @property
    def uses_vgg(self) -> bool:
        return bool(self.content_weight or self.style_weight)

    def paint(self, content: torch.Tensor, style_maps: dict[str, torch.Tensor], mode: str) -> torch.Tensor:
        """The content path on replicate-padded crops, as the engine runs it (output: the crop)."""
        with autocast(self.device, self.amp):  # the weight/bias nets: 1x1 convs on large style maps, fast in bf16 on CPUs too
            params = self.model.style_params(style_maps, mode)
        with autocast(self.device, self.amp) if self.device.type == "cuda" else nullcontext():
            p = self.pad
            x = torch.nn.functional.pad(content, (p, p, p, p), mode="replicate") if p else content
            if p and all(v % self.model.multiple == 0 for v in (p, *content.shape[-2:])):  # decode the crop, not its margin
                return self.model(x, params, window=(p, p, *content.shape[-2:]))
            out = self.model(x, params)
            return out[..., p:-p, p:-p] if p else out

    def forward(self, content: torch.Tensor, style_maps: dict[str, torch.Tensor],
                style_stats: dict[str, tuple[torch.Tensor, torch.Tensor]], mode: str = "standard",
                style_rgb: torch.Tensor | None = None, color_gen: torch.Generator | None = None,
                target: torch.Tensor | None = None, grey_stats: dict | None = None,
                style_ids: torch.Tensor | None = None):
        zero = content.new_zeros(())
        self.last_terms = {}
        if self.uses_vgg:
            with torch.no_grad(), autocast(self.device, self.amp):
                cf = self.vgg(content, taps=("relu4_1",))
        out = self.paint(content, style_maps, mode)
        lc = ls = zero
        total = zero
        features = target is not None and self.feature_weight > 0
        if self.uses_vgg or features:
            with autocast(self.device, self.amp):
                of = self.vgg(out) if self.uses_vgg else self.vgg(out, taps=FEATURE_TAPS)
        if self.uses_vgg:
            lc = content_loss(of, cf).mean()
            ls = style_loss_stats(of, style_stats, layer_weights=self.layer_weights).mean()
            total = self.content_weight * lc + self.style_weight * ls
        if self.color_weight and style_rgb is not None:
            total = total + self.color_weight * color_loss(out, style_rgb, generator=color_gen).mean()
        if self.palette_weight and style_rgb is not None:
            total = total + self.palette_weight * palette_loss(out, style_rgb, generator=color_gen).mean()
        if (self.grey_weight or self.contrast_weight) and grey_stats is not None:
            with autocast(self.device, self.amp):
                gs = output_stats(self.vgg(grey(out)))  # once for both terms
            if self.grey_weight:
                lg = luma_style_loss(self.vgg, out, grey_stats, self.layer_weights, stats=gs).float().mean()
                total = total + self.grey_weight * lg
                self.last_terms["grey"] = lg.detach()
            if self.contrast_weight:
                lk = luma_contrast_loss(gs, grey_stats, self.contrast_temp, style_ids).mean()
                total = total + self.contrast_weight * lk
                self.last_terms["contrast"] = lk.detach()
        ld = None
        if target is not None and (self.distill_weight or features):
            weighted = zero
            if self.distill_weight:
                weighted = weighted + self.distill_weight * distill_loss(out, target).mean()
            if features:
                with torch.no_grad(), autocast(self.device, self.amp):
                    tf = self.vgg(target, taps=FEATURE_TAPS)
                weighted = weighted + self.feature_weight * feature_distill_loss(of, tf).mean()
            total = total + weighted
            ld = weighted / (self.distill_weight + self.feature_weight)
        return total, lc, ls, out, ld


class TermMeans:
    """Means of the objective's optional terms (its ``last_terms``) over the steps that had each,
    between two log lines; ``means`` reads them back in one host sync and starts afresh."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums[k] + v.float() if k in self.sums else v.float().clone()
            self.counts[k] = self.counts.get(k, 0) + 1

    def means(self) -> dict[str, float]:
        if not self.sums:
            return {}
        vals = torch.stack(list(self.sums.values())).tolist()
        out = {k: v / self.counts[k] for k, v in zip(self.sums, vals)}
        self.sums, self.counts = {}, {}
        return out


def style_targets(vgg: VGGEncoder, style: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict]:
    """VGG maps and channel statistics of a batch of style images (computed on the fly)."""
    from dinstyle.model.din import calc_mean_std

    with torch.no_grad():
        f = vgg(style)
    return f, {t: calc_mean_std(v) for t, v in f.items()}


def train_step(net: nn.Module, opt: torch.optim.Optimizer, content: torch.Tensor, style_maps, style_stats,
               mode: str = "standard", scaler: torch.amp.GradScaler | None = None,
               style_rgb: torch.Tensor | None = None, color_gen: torch.Generator | None = None,
               target: torch.Tensor | None = None, grey_stats: dict | None = None,
               style_ids: torch.Tensor | None = None):
    """One optimisation step of ``net`` (a StyleTransferLoss, maybe DDP-wrapped). Returns the
    (total, content, style) losses, and the distillation term where the batch has a target, as
    detached tensors (no host sync), and the output."""
    loss, lc, ls, out, ld = net(content, style_maps, style_stats, mode, style_rgb, color_gen, target, grey_stats,
                                style_ids)
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    terms = [loss, lc, ls] + ([ld] if ld is not None else [])
    return torch.stack([t.detach().float() for t in terms]), out
