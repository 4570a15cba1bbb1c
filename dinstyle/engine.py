"""``Stylizer``: the model loaded once on its device, with its two paths.

    st.style_path   --style values -> styles (VGG-19 + weight/bias nets, packs, built-ins, blends)
    st.runner       styles applied to images (padding, batches, tiles, regions, out-of-memory fallback)

Its methods are the library's entry points (``load_style``, ``stylize``, ``stylize_file`` ...) and
the public probes other modules use instead of its insides: ``expected_params`` (what a style of a
mode holds), ``on_device`` (the model moved for a while, then put back), ``content_macs`` /
``style_macs`` and ``parameter_counts``. Batches of files and videos: ``dinstyle.batch``, which takes a
Stylizer.
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from dinstyle.checkpoint import default_weights_dir, load_model
from dinstyle.config import STYLIZE
from dinstyle.io.images import LoadedImage, read_image
from dinstyle.model import DinParams, DinStyleNet
from dinstyle.runner import ContentRunner, StatsSmoother, fit_image
from dinstyle.runtime import resolve_device, resolve_dtype, tune_allocator
from dinstyle.styles import (AnyStyle, AutoStyle, ColorMatched, RegionStyle, Style, StylePath, StyleSource,
                             parse_style_arg)

__all__ = ["Stylizer", "Style", "AutoStyle", "RegionStyle", "ColorMatched", "StyleSource", "StatsSmoother",
           "parse_style_arg", "UntrainedWeightsWarning"]


class UntrainedWeightsWarning(UserWarning):
    pass


class Stylizer:
    """Keyword-only library entry point; the CLI reuses these defaults.

    >>> st = Stylizer()                                     # shipped weights, best device
    >>> style = st.load_style(["starry.jpg"])               # or a .dinpack, or a built-in name
    >>> out = st.stylize([rgb_uint8], style)[0]
    """

    def __init__(self, *, weights: str | Path | None = None, device: str = "auto", dtype: str = "auto",
                 vgg: str | Path | None = None):
        tune_allocator()
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        wdir = Path(weights) if weights else default_weights_dir()
        if weights is None and not (wdir / "model.safetensors").exists():
            warnings.warn(f"no trained weights in {wdir}: running an UNTRAINED network (output is not a real "
                          "stylization); pass --weights DIR", UntrainedWeightsWarning, stacklevel=2)
            model, info = DinStyleNet(), {"model_id": "untrained", "trained": {}, "path": None}
        else:
            model, info = load_model(wdir)
            if not info["trained"]:
                warnings.warn(f"weights in {wdir} say they were never trained: output is not a real stylization",
                              UntrainedWeightsWarning, stacklevel=2)
        self.weights_dir = wdir
        self.info = info
        self.model_id: str = info["model_id"]
        self.trained = bool(info["trained"])
        self.model = model.eval()
        self._place()
        self.style_path = StylePath(self.model, self.device, self.model_id, wdir, vgg)
        self.runner = ContentRunner(self.model, self.device, self.dtype)

    def _place(self) -> None:
        self.model.to(self.device)
        if self.device.type == "cuda":
            self.model.to(memory_format=torch.channels_last)

    # -- probes ------------------------------------------------------------------------------
    @property
    def vgg(self):
        """The style encoder, loaded on first use (packs never need it)."""
        return self.style_path.vgg

    def expected_params(self, mode: str = "standard") -> DinParams:
        """What a style of ``mode`` holds for this model: names and shapes (CheckpointError if the
        weights cannot run the mode)."""
        return self.style_path.expected(mode)

    @contextlib.contextmanager
    def on_device(self, device: str | torch.device = "cpu") -> Iterator[DinStyleNet]:
        """The model (and the style encoder, if loaded) on ``device`` in float32 for the block, then
        put back where, and in the memory format, they were."""
        vgg = self.style_path._vgg
        self.model.to(device)
        self.model.to(memory_format=torch.contiguous_format)
        if vgg is not None:
            vgg.to(device)
        try:
            yield self.model
        finally:
            self._place()
            if vgg is not None:
                vgg.to(self.device)

    def content_macs(self, mode: str = "standard", height: int = 512, width: int = 512) -> dict[str, int]:
        """Multiply-adds of the content path (encoder, DIN, decoder, total) for one image."""
        from dinstyle.model.macs import content_path_macs

        with self.on_device("cpu") as model:
            return content_path_macs(model, height, width, mode=mode)

    def style_macs(self, mode: str = "standard", size: int = 512) -> dict[str, int]:
        """Multiply-adds of the style path (VGG-19 to relu4_1, weight/bias nets) for one style image."""
        from dinstyle.model.macs import style_path_macs

        self.vgg  # loaded, so that it moves with the model
        with self.on_device("cpu") as model:
            return style_path_macs(model, self.vgg, size, mode=mode)

    def parameter_counts(self) -> dict[str, int]:
        return self.model.parameter_counts()

    # -- the style path ----------------------------------------------------------------------
    def check_mode(self, mode: str) -> str:
        return self.style_path.check_mode(mode)

    def load(self, specs, **options) -> AnyStyle:
        """--style values with the stylize commands' options (``StylePath.from_options``)."""
        return self.style_path.from_options(list(specs), **options)

    def load_style(self, specs, mode: str | None = None, style_size: int = STYLIZE.style_size) -> Style:
        return self.style_path.load(specs, mode=mode, style_size=style_size)

    def load_style_auto(self, specs, mode: str | None = None, style_size: int = STYLIZE.style_size):
        return self.style_path.load_auto(specs, mode=mode, style_size=style_size)

    def load_regions(self, specs, mask, **kw) -> RegionStyle:
        return self.style_path.load_regions(specs, mask, **kw)

    def builtin_style(self, name: str, mode: str = "standard", style_size: int = STYLIZE.style_size) -> Style:
        return self.style_path.builtin(name, mode, style_size)

    def encode_style(self, rgb: np.ndarray, mode: str = "standard", style_size: int = STYLIZE.style_size) -> DinParams:
        return self.style_path.encode(rgb, mode, style_size)

    def make_pack(self, path, mode: str = "standard", style_size: int = STYLIZE.style_size):
        return self.style_path.make_pack(path, mode, style_size)

    # -- the content path --------------------------------------------------------------------
    def _resolved(self, style: AnyStyle, color_match: bool) -> AnyStyle:
        return self.style_path.color_matching(style) if color_match else style

    def stylize(self, images: list[np.ndarray], style: AnyStyle, *, color_match: bool = False,
                **kw) -> list[np.ndarray]:
        """Same-size (H, W, 3) uint8 images -> stylized uint8 images (``ContentRunner.stylize``
        options: strength, palette, tone, supersample, preserve_color, stats_hook, palette_hook, tile,
        masks)."""
        style = self._resolved(style, color_match)
        if style.per_image:
            return [self.runner.stylize([im], style.for_image(im), **kw)[0] for im in images]
        return self.runner.stylize(images, style, **kw)

    def stylize_resilient(self, images: list[np.ndarray], style: AnyStyle, *, color_match: bool = False,
                          **kw) -> list[np.ndarray]:
        """``stylize`` that falls back to smaller batches and tiles when memory runs out."""
        style = self._resolved(style, color_match)
        if style.per_image:
            return [self.runner.stylize_resilient([im], style.for_image(im), **kw)[0] for im in images]
        return self.runner.stylize_resilient(images, style, **kw)

    def stylize_image(self, img: LoadedImage, style: AnyStyle, *, max_size: int | None = None,
                      color_match: bool = False, **kw) -> LoadedImage:
        """One decoded image (alpha kept) -> its stylized copy, downscaled first to ``max_size``."""
        img = fit_image(img, max_size)
        return self.runner.stylize_image(img, self._resolved(style, color_match).for_image(img.rgb), **kw)

    def stylize_file(self, path: str | Path, style: AnyStyle, **kw) -> np.ndarray:
        img = read_image(path)
        return self.stylize([img.rgb], style, **kw)[0]

