"""`dinstyle eval`: stylize every (content, style) pair and score it.

Scores per pair, averaged: style loss and content loss measured with the VGG-19 exactly as in
training, SSIM of the output against the content (grey levels, 11x11 Gaussian window), and the
seconds the content path took per image; the stripe figure (2-pixel line/checkerboard energy,
``metrics.stripe_energy``) of the outputs and, for reference, of the content images themselves.
Dark patches: the share of the contents' light areas that come out dark at a 16-px scale
(``metrics.dark_patches``): blotches of near-black over faces and skies, not strokes or outlines.

Texture distinctness, over the whole grid of outputs: how often an output's own style is the
nearest of all the grid's styles by the balanced style distance (the style loss between channel
statistics), (a) on RGB at relu1_1..relu4_1 and (b) on grey images at relu2_1..relu4_1, where
palette cannot tell the paintings apart, only strokes and patterns. Chance is 1 / styles: a
filter that only recolours scores high on (a) and near chance on (b).

``outputs=DIR`` scores images made by another tool (``DIR/<style stem>/<content stem>.png``, at
the contents' eval size) instead of stylizing: the same figures for a reference method.
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
from dinstyle.config import GREY_TAPS, STYLIZE, TOOLS
from dinstyle.engine import Stylizer
from dinstyle.errors import InputError
from dinstyle.io.images import fit_size, list_images, read_image, resize_rgb
from dinstyle.metrics import color_distance, dark_patches, flat_output_fraction, grey_rgb, ssim, stripe_energy
from dinstyle.model.din import calc_mean_std
from dinstyle.model.losses import content_loss, stats_distance, style_loss
from dinstyle.runner import check_render_options


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
            "stripe": stripe_energy(output), "color": color_distance(output, style),
            "dark_patches": dark_patches(output, content)}


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
    dark_patches: float  # share of the contents' light areas painted dark (metrics.dark_patches; NaN: none light)
    distinct_rgb: float  # share of outputs whose own style is the nearest of the grid's (RGB, relu1_1..4_1)
    distinct_grey: float  # the same on grey images at relu2_1..relu4_1 (palette removed)
    distinct_chance: float  # 1 / number of styles
    seconds_per_image: float  # NaN when scoring given outputs
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
                     **({"outputs": str(kw["outputs"])} if kw.get("outputs") else {}),
                     "style_size": style_size,
                     **({} if kw.get("outputs") else {"strength": kw.get("strength", STYLIZE.strength),
                                                      "palette": kw.get("palette", STYLIZE.palette),
                                                      "tone": kw.get("tone", STYLIZE.tone),
                                                      "supersample": kw.get("supersample", STYLIZE.supersample)}),
                     **res.to_dict()})
    return rows


def evaluate(st: Stylizer, content_dir: str | Path, style_dir: str | Path, *, size: int = TOOLS.eval_size,
             style_size: int = STYLIZE.style_size, mode: str = "standard", max_pairs: int | None = None,
             content_glob: str | None = None, strength: float = STYLIZE.strength, palette: float = STYLIZE.palette,
             tone: float = STYLIZE.tone, supersample: float = STYLIZE.supersample,
             on_event: Callable[[Event], None] | None = None, outputs: str | Path | None = None) -> EvalResult:
    """Stylize every (content, style) pair (contents at ``size``, styles encoded at ``style_size``) and
    score it, or score the given ``outputs`` of the same pairs; "progress" events count the pairs."""
    check_render_options(strength, palette, tone, supersample)
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
    grid = Distinctness(st.vgg)
    dev = st.device
    for i, (c, (spath, srgb)) in enumerate(pairs):
        if spath not in styles_cache:
            sref = resize_rgb(srgb, fit_size(srgb.shape[1], srgb.shape[0], style_size))
            with torch.inference_mode():
                sfeats = st.vgg(_t(sref, dev))
            sty = None if outputs is not None else st.load_style([spath], mode=mode, style_size=style_size)
            styles_cache[spath] = (sty, sref, sfeats)
            grid.add_style(spath, sref, sfeats)
        if c.path not in content_cache:
            with torch.inference_mode():
                content_cache[c.path] = st.vgg(_t(c.rgb, dev), taps=("relu4_1",))
        sty, sref, sfeats = styles_cache[spath]
        if outputs is not None:
            out = _given_output(Path(outputs), c, spath)
        else:
            t0 = time.perf_counter()
            out = st.stylize([c.rgb], sty, strength=strength, palette=palette, tone=tone, supersample=supersample)[0]
            secs.append(time.perf_counter() - t0)
        rows.setdefault(spath.stem, []).append(score(out, c.rgb, sref, st.vgg, content_cache[c.path], sfeats))
        grid.add_output(spath, out)
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
                      dark_patches=avg(allrows, "dark_patches"),
                      distinct_rgb=grid.share(grey=False), distinct_grey=grid.share(grey=True),
                      distinct_chance=1.0 / len(grid.styles),
                      seconds_per_image=float(statistics.median(secs)) if secs else float("nan"),
                      per_style={k: {m: avg(v, m) for m in ("style_loss", "content_loss", "ssim", "flat_const", "stripe", "color", "dark_patches")} for k, v in rows.items()})


def _given_output(folder: Path, content, style_path: Path) -> np.ndarray:
    """The given output of (content, style): ``folder/<style stem>/<content stem>.png`` (or any
    image suffix), at the content's eval size (resized if it differs by a few pixels)."""
    cands = [p for p in list_images(folder / style_path.stem) if p.stem == content.path.stem] \
        if (folder / style_path.stem).is_dir() else []
    if not cands:
        raise InputError(f"{folder}: no output for style {style_path.stem!r} and content {content.path.stem!r} "
                         f"(expected {folder / style_path.stem / content.path.stem}.png)")
    rgb = read_image(cands[0]).rgb
    h, w = content.rgb.shape[:2]
    if rgb.shape[:2] != (h, w):
        if abs(rgb.shape[0] - h) > 8 or abs(rgb.shape[1] - w) > 8:
            raise InputError(f"{cands[0]}: {rgb.shape[1]}x{rgb.shape[0]}, the content is stylized at {w}x{h}")
        rgb = resize_rgb(rgb, (w, h))
    return rgb


class Distinctness:
    """Texture distinctness of a grid of outputs: the channel statistics of every style and every
    output, RGB at all four taps and grey at ``GREY_TAPS``; ``share`` ranks each output's distance
    to every style."""

    def __init__(self, vgg):
        self.vgg = vgg
        self.styles: list[Path] = []
        self.style_stats: dict[bool, list[dict]] = {False: [], True: []}
        self.outputs: list[tuple[int, dict[bool, dict]]] = []

    @torch.inference_mode()
    def _stats(self, rgb: np.ndarray, grey: bool, feats: dict | None = None) -> dict:
        dev = next(self.vgg.parameters()).device
        f = feats if feats is not None else self.vgg(_t(grey_rgb(rgb) if grey else rgb, dev))
        return {t: tuple(v.float() for v in calc_mean_std(f[t])) for t in (GREY_TAPS if grey else f)}

    def add_style(self, path: Path, rgb: np.ndarray, feats: dict) -> None:
        self.styles.append(path)
        self.style_stats[False].append(self._stats(rgb, False, feats))
        self.style_stats[True].append(self._stats(rgb, True))

    def add_output(self, style_path: Path, rgb: np.ndarray) -> None:
        self.outputs.append((self.styles.index(style_path), {g: self._stats(rgb, g) for g in (False, True)}))

    def share(self, grey: bool) -> float:
        if not self.outputs or len(self.styles) < 2:
            return float("nan")
        taps = GREY_TAPS if grey else tuple(self.style_stats[False][0])
        styles = {t: tuple(torch.cat([s[t][k] for s in self.style_stats[grey]]) for k in (0, 1)) for t in taps}
        hits = 0
        for own, stats in self.outputs:
            d = stats_distance({t: stats[grey][t] for t in taps}, styles, taps)  # broadcast: one row per style
            hits += int(int(torch.argmin(d)) == own)
        return hits / len(self.outputs)
