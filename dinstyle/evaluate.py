"""`dinstyle eval`: stylize every (content, style) pair and score it.

Scores per pair, averaged: style loss and content loss measured with the VGG-19 exactly as in
training, SSIM of the output against the content (grey levels, 11x11 Gaussian window), and the
seconds the content path took per image; the stripe figure (2-pixel line/checkerboard energy,
``metrics.stripe_energy``) of the outputs and, for reference, of the content images themselves.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dinstyle.events import Event
from dinstyle.config import STYLIZE, TOOLS
from dinstyle.engine import Stylizer
from dinstyle.errors import InputError
from dinstyle.io.images import fit_size, list_images, read_image, resize_rgb
from dinstyle.metrics import color_distance, flat_output_fraction, ssim, stripe_energy
from dinstyle.model.losses import content_loss, style_loss


def _t(rgb: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(2, 0, 1)[None].float() / 255


@torch.inference_mode()
def score(output: np.ndarray, content: np.ndarray, style: np.ndarray, vgg, content_feats=None,
          style_feats=None) -> dict[str, float]:
    """Losses of one output against its content and style (uint8 RGB arrays). Pass precomputed
    VGG features of the content / style to score many pairs cheaply."""
    dev = next(vgg.parameters()).device
    of = vgg(_t(output, dev))
    cf = content_feats if content_feats is not None else vgg(_t(content, dev), taps=("relu4_1",))
    sf = style_feats if style_feats is not None else vgg(_t(style, dev))
    return {"style_loss": float(style_loss(of, sf)[0]), "content_loss": float(content_loss(of, cf)[0]),
            "ssim": ssim(output, content), "flat_const": flat_output_fraction(output, content),
            "stripe": stripe_energy(output), "color": color_distance(output, style)}


@dataclass
class EvalResult:
    pairs: int
    style_loss: float
    content_loss: float
    ssim: float
    flat_const: float  # share of uniform-input pixels left near-constant (NaN: no uniform regions)
    stripe: float  # 2-pixel pattern energy of the outputs
    content_stripe: float  # the same figure for the content images (what the photos have themselves)
    color: float  # palette distance of the outputs to their styles (Hellinger, 8x8x8 RGB histograms)
    content_color: float  # the same for the contents themselves (what doing nothing scores)
    seconds_per_image: float
    per_style: dict[str, dict[str, float]]

    def to_dict(self) -> dict:
        def clean(v):
            if isinstance(v, float) and math.isnan(v):
                return None
            return {k: clean(x) for k, x in v.items()} if isinstance(v, dict) else v

        return {k: clean(v) for k, v in self.__dict__.items()}


def evaluate_modes(st: Stylizer, content_dir: str | Path, style_dir: str | Path, modes: list[str], *,
                   size: int = TOOLS.eval_size, style_size: int = STYLIZE.style_size,
                   on_event: Callable[[Event], None] | None = None, **kw) -> list[dict]:
    """``evaluate`` for each DIN mode on the same pairs: one record per mode (with the weights, the
    model id and the sizes). Progress events name the mode as their ``input``."""
    modes = [st.check_mode(m) for m in modes]
    rows = []
    for m in modes:
        res = evaluate(st, content_dir, style_dir, size=size, style_size=style_size, mode=m, **kw,
                       on_event=None if on_event is None else (lambda ev, m=m: on_event(dataclasses.replace(ev, input=m))))
        rows.append({"weights": st.info.get("path"), "model_id": st.model_id, "mode": m, "size": size,
                     "style_size": style_size, **res.to_dict()})
    return rows


def evaluate(st: Stylizer, content_dir: str | Path, style_dir: str | Path, *, size: int = TOOLS.eval_size,
             style_size: int = STYLIZE.style_size, mode: str = "standard", max_pairs: int | None = None,
             content_glob: str | None = None, strength: float = STYLIZE.strength,
             on_event: Callable[[Event], None] | None = None) -> EvalResult:
    """Stylize every (content, style) pair (contents at ``size``, styles encoded at ``style_size``) and
    score it; "progress" events count the pairs."""
    contents = [read_image(p) for p in list_images(content_dir) if not content_glob or p.match(content_glob)]
    if not contents:
        raise InputError(f"{content_dir}: no content images match {content_glob!r}")
    styles = [(p, read_image(p).rgb) for p in list_images(style_dir)]
    for c in contents:
        w, h = c.rgb.shape[1], c.rgb.shape[0]
        c.rgb = resize_rgb(c.rgb, fit_size(w, h, size))
    pairs = [(c, s) for s in styles for c in contents]
    if max_pairs:
        pairs = pairs[:: max(1, len(pairs) // max_pairs)][:max_pairs]
    rows: dict[str, list[dict]] = {}
    secs = []
    styles_cache: dict[Path, tuple] = {}
    content_cache: dict[Path, dict] = {}
    dev = st.device
    for i, (c, (spath, srgb)) in enumerate(pairs):
        if spath not in styles_cache:
            sref = resize_rgb(srgb, fit_size(srgb.shape[1], srgb.shape[0], style_size))
            with torch.inference_mode():
                sfeats = st.vgg(_t(sref, dev))
            styles_cache[spath] = (st.load_style([spath], mode=mode, style_size=style_size), sref, sfeats)
        if c.path not in content_cache:
            with torch.inference_mode():
                content_cache[c.path] = st.vgg(_t(c.rgb, dev), taps=("relu4_1",))
        sty, sref, sfeats = styles_cache[spath]
        t0 = time.perf_counter()
        out = st.stylize([c.rgb], sty, strength=strength)[0]
        secs.append(time.perf_counter() - t0)
        rows.setdefault(spath.stem, []).append(score(out, c.rgb, sref, st.vgg, content_cache[c.path], sfeats))
        if on_event:
            on_event(Event("progress", step=i + 1, steps=len(pairs)))
    allrows = [r for rs in rows.values() for r in rs]

    def avg(rs, k):
        vals = [r[k] for r in rs if not math.isnan(r[k])]
        return float(statistics.fmean(vals)) if vals else float("nan")

    return EvalResult(pairs=len(allrows), style_loss=avg(allrows, "style_loss"),
                      content_loss=avg(allrows, "content_loss"), ssim=avg(allrows, "ssim"),
                      flat_const=avg(allrows, "flat_const"), stripe=avg(allrows, "stripe"),
                      content_stripe=avg([{"s": stripe_energy(c.rgb)} for c in contents], "s"),
                      color=avg(allrows, "color"),
                      content_color=avg([{"c": color_distance(c.rgb, styles_cache[s][1])} for c, (s, _) in pairs], "c"),
                      seconds_per_image=float(statistics.median(secs)),
                      per_style={k: {m: avg(v, m) for m in ("style_loss", "content_loss", "ssim", "flat_const", "stripe", "color")} for k, v in rows.items()})
