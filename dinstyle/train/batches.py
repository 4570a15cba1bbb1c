"""Batches of one training step: a step's plan turned into device tensors (content crops, the
styles' VGG taps from the cache or computed, the styles' colours, and the teacher's target crops on
distillation steps)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from dinstyle.config import TrainConfig
from dinstyle.model import DinStyleNet, VGGEncoder
from dinstyle.train.cache import StyleCache, cache_key
from dinstyle.train.data import (ImageBank, Plan, crop_views, draw_plan, style_probabilities, texture_energy,
                                 whole_views)
from dinstyle.train.distill import TargetSet, draw_pairs, unzoomed
from dinstyle.train.luma import GreyStatsMemo, Stats, grey_stats
from dinstyle.train.objective import autocast, style_targets


class Batches:
    """Turns a step's plan into device tensors: content crops, style images, and the style's VGG
    targets (from the cache for whole-view styles); with a ``TargetSet``, the distillation steps'
    contents, styles and the teacher's targets come from its pairs."""

    def __init__(self, cfg: TrainConfig, banks: dict[str, ImageBank], vgg: VGGEncoder, model: DinStyleNet,
                 device: torch.device, amp: str, rank: int, cache_path: Path | None, targets: TargetSet | None = None):
        self.cfg, self.banks, self.vgg, self.device, self.amp, self.rank = cfg, banks, vgg, device, amp, rank
        self.targets = targets
        self.map_taps = tuple(model.cfg.style_taps)
        use_cache = cfg.style_cache and cfg.style_view > 0
        self.style_p = style_probabilities(texture_energy(banks["style"].images), cfg.style_texture_power) \
            if cfg.style_texture_power else None
        self.cache = None
        if use_cache:
            keep = cache_path is not None and cache_path.is_dir()
            if keep:  # a folder: keep the cache there under a name that says what it holds
                from dinstyle.checkpoint import file_digest, find_vgg

                imgs = banks["style"].images
                key = cache_key(file_digest(find_vgg(cfg.vgg)), cfg.style_view, amp, self.map_taps, banks["style"].names,
                                int(imgs.sum()) if imgs.device.type == "cpu" else 0)
                cache_path = cache_path / f"style-cache-{key}.f16"
            self.cache = StyleCache(len(banks["style"]), self.map_taps, device, cache_path, keep=keep)
        grey_path = None
        if self.cache is not None and self.cache.keep:  # the grey statistics beside the cache, same key
            grey_path = cache_path.with_name(cache_path.name.replace("style-cache-", "grey-stats-").replace(
                ".f16", ".safetensors"))
        self.grey_memo = GreyStatsMemo(len(banks["style"]), device, grey_path) \
            if cfg.style_view > 0 and cfg.uses_grey else None

    def plan(self, step: int) -> Plan:
        c = self.cfg
        plan = draw_plan(step, seed=c.seed, batch_size=c.batch_size, n_content=len(self.banks["content"]),
                         n_style=len(self.banks["style"]), n_flat=len(self.banks["flat"]) if "flat" in self.banks else 0,
                         flat_prob=c.flat_prob, adaptive_prob=c.adaptive_prob, deformable_prob=c.deformable_prob,
                         adaptive_flat_prob=c.adaptive_flat_prob, content_zoom=c.content_zoom, style_zoom=c.style_zoom,
                         rank=self.rank, style_p=self.style_p)
        t = self.targets
        pairs = None if t is None else draw_pairs(step, seed=c.seed, batch_size=c.batch_size, n_pairs=len(t),
                                                  prob=c.distill_prob, rank=self.rank)
        if pairs is None:
            return plan
        return dataclasses.replace(plan, pairs=pairs, content=t.content_idx[pairs], style=t.style_idx[pairs],
                                   flat=torch.zeros_like(plan.flat), content_view=unzoomed(plan.content_view))

    def content(self, plan: Plan) -> torch.Tensor:
        if plan.pairs is not None:
            return crop_views(self.targets.contents.images[plan.content.to(self.device)], plan.content_view, self.cfg.crop)
        idx = plan.content.to(self.device)
        photos = self.banks["content"].images
        imgs = photos[idx.clamp(max=len(photos) - 1)]
        if "flat" in self.banks and bool(plan.flat.any()):
            flat = self.banks["flat"].images
            imgs = torch.where(plan.flat.to(self.device)[:, None, None, None], flat[idx.clamp(max=len(flat) - 1)], imgs)
        return crop_views(imgs, plan.content_view, self.cfg.crop)

    def target(self, plan: Plan) -> torch.Tensor | None:
        """The teacher's outputs for the plan's pairs, cropped and flipped as their contents (None: no pairs)."""
        if plan.pairs is None:
            return None
        return crop_views(self.targets.targets.images[plan.pairs.to(self.device)], plan.content_view, self.cfg.crop)

    def style_images(self, idx: torch.Tensor, plan: Plan | None = None) -> torch.Tensor:
        imgs = self.banks["style"].images[idx.to(self.device)]
        if self.cfg.style_view > 0:
            return whole_views(imgs, self.cfg.style_view)
        return crop_views(imgs, plan.style_view, self.cfg.crop)

    def style(self, plan: Plan):
        """(style images or None, VGG maps, channel statistics) of the plan's styles."""
        if self.cache is not None:
            def compute(missing):
                with autocast(self.device, self.amp):
                    return style_targets(self.vgg, self._channels(self.style_images(missing)))[0]

            maps, stats = self.cache.lookup(plan.style, compute)
            return None, maps, stats
        images = self._channels(self.style_images(plan.style, plan))
        with autocast(self.device, self.amp):
            feats, stats = style_targets(self.vgg, images)
        return images, {t: feats[t] for t in self.map_taps}, stats

    def style_grey_stats(self, plan: Plan, images: torch.Tensor | None = None) -> Stats:
        """The grey statistics of the plan's styles (the luma terms' targets): memoised per
        style when styles are seen whole, else computed from this step's style crops."""
        def compute(idx, imgs=None):
            imgs = self.style_images(idx, plan) if imgs is None else imgs
            with autocast(self.device, self.amp):
                return grey_stats(self.vgg, self._channels(imgs))

        if self.grey_memo is None:
            return compute(plan.style, images)
        return self.grey_memo.lookup(plan.style, compute)

    def style_colors(self, plan: Plan, images: torch.Tensor | None = None) -> torch.Tensor:
        """The plan's style images, every k-th pixel (about 64 x 64 points each): what the colour
        term compares the outputs' colours with."""
        images = self.style_images(plan.style, plan) if images is None else images
        k = max(1, min(images.shape[-2:]) // 64)
        return images[..., ::k, ::k].float()

    def save(self) -> None:
        """Keep what was computed once per style for the next run (the style cache's index, the grey statistics)."""
        if self.cache is not None:
            self.cache.save_index()
        if self.grey_memo is not None:
            self.grey_memo.save()

    def close(self) -> None:
        if self.grey_memo is not None:
            self.grey_memo.save()
        if self.cache is not None:
            self.cache.close()

    def _channels(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    channels_last = False
