"""The engine behind every command: load the model once, encode the style once, stylize images.

``Stylizer`` holds the model on its device; ``Style`` is what a style image or pack becomes (the DIN
parameters of every layer). The CLI only parses options and renders the events this module emits.
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dinstyle import builtin_styles
from dinstyle.checkpoint import VGG_NAME, default_weights_dir, find_vgg, load_model, load_vgg
from dinstyle.color import keep_luminance_of
from dinstyle.config import STYLIZE_DEFAULTS
from dinstyle.errors import CheckpointError, DinstyleError, InputError, OptionError, OutputError, ResourceError
from dinstyle.io import memory
from dinstyle.io.files import check_output_path, q, remove_stale_temps
from dinstyle.io.images import EXT_BY_FORMAT, FORMAT_BY_EXT, LoadedImage, expand_inputs, fit_size, read_image, \
    resize_rgb, write_image
from dinstyle.model import MODES, DinStyleNet
from dinstyle.packs import StylePack, blend_params, check_pack, is_pack, load_pack
from dinstyle.runtime import resolve_device, resolve_dtype, tune_allocator

Params = list[dict[str, torch.Tensor]]

DEFAULT_STYLE_SIZE = STYLIZE_DEFAULTS["style_size"]  # the scale the model was trained at (256-px paintings)
MIN_STYLE_SIDE = 16
PAD_MARGIN = 24  # replicate-padded border: the zero-padding artefacts of the 1/8-resolution layers stay in it
TILE_CONTEXT = 96  # context around each tile: covers the network's receptive field, so tiles agree
AUTO_TILE_PIXELS = {"cpu": 8_300_000, "cuda": 16_600_000}  # above this (4K on CPU), tile automatically
AUTO_TILE_SIZE = {"cpu": 1024, "cuda": 2048}
# Peak memory per pixel on the CPU (fp32), measured with the shipped model (~340 B/px at 1080p and 4K,
# benchmarks/results); used to refuse, with one line, work that cannot fit before it starts.
NET_BYTES_PER_PIXEL = 300
STYLE_BYTES_PER_PIXEL = 1024  # the VGG encoder at the style's size (64 channels at full resolution, fp32)


class UntrainedWeightsWarning(UserWarning):
    pass


@dataclass
class StyleSource:
    path: Path
    weight: float = 1.0


def parse_style_arg(text: str) -> StyleSource:
    """``path`` or ``path:weight`` (the part after the last colon must be a number)."""
    path, weight = text, 1.0
    head, sep, tail = text.rpartition(":")
    if sep and head:
        try:
            weight = float(tail)
            path = head
        except ValueError:
            pass
    if not math.isfinite(weight) or weight <= 0:
        raise OptionError(f"--style {text}: the weight after ':' must be a positive number")
    return StyleSource(Path(path), weight)


@dataclass
class Style:
    params: Params  # per DIN layer {"weight", "bias"}, batch dim 1, on the model's device
    label: str
    mode: str
    sources: list[str] = field(default_factory=list)
    # (style image, weight, style_size) of image-sourced styles, kept for --color-match
    images: list[tuple[np.ndarray, float, int]] = field(default_factory=list, repr=False)


AUTO_FLAT_FRACTION = 0.5  # --mode auto picks the adaptive mode above this share of uniform pixels


@dataclass
class AutoStyle:
    """--mode auto: both modes encoded; each image gets adaptive if it is mostly uniform regions."""

    standard: Style
    adaptive: Style
    label: str
    mode: str = "auto"

    def pick(self, rgb: np.ndarray) -> Style:
        from dinstyle.metrics import flat_fraction

        return self.adaptive if flat_fraction(rgb) > AUTO_FLAT_FRACTION else self.standard


@dataclass
class RegionStyle:
    """Several styles placed by a mask (grey levels split evenly: dark -> first style)."""

    styles: list[Style | None]  # None keeps the content in that region
    mask: np.ndarray  # (H, W) uint8 grey levels
    feather: float
    label: str
    mode: str


@dataclass
class ImageEvent:
    index: int
    total: int
    input: str
    output: str | None
    status: str  # done | skipped | failed
    seconds: float = 0.0
    size: tuple[int, int] | None = None  # (width, height) written
    error: str | None = None
    mode: str | None = None  # the DIN mode that ran


@dataclass
class BatchSummary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    events: list[ImageEvent] = field(default_factory=list)


class Stylizer:
    """Keyword-only library entry point; the CLI reuses these defaults.

    >>> st = Stylizer()                                     # shipped weights, best device
    >>> style = st.load_style(["starry.jpg"])               # or a .dinpack
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
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self._vgg_arg = vgg
        self._vgg = None
        self._builtin_memo: dict[tuple[str, str, int], tuple[Params, np.ndarray]] = {}

    # -- style ------------------------------------------------------------------------------
    @property
    def vgg(self):
        """The style encoder, loaded on first use (packs never need it)."""
        if self._vgg is None:
            shipped = self.weights_dir / VGG_NAME
            path = self._vgg_arg or (shipped if shipped.is_file() else find_vgg())
            self._vgg = load_vgg(path).to(self.device)
        return self._vgg

    def check_mode(self, mode: str) -> str:
        if mode not in MODES:
            raise OptionError(f"--mode {mode}: unknown (use {', '.join(MODES)}; 'auto' where the command offers it)")
        if mode == "deformable" and not self.model.cfg.deform_kernel:
            raise OptionError("--mode deformable: these weights have no deformable DIN layers "
                              "(train a model with --deform-kernel 3)")
        return mode

    def load_style_auto(self, specs, mode: str | None = None, style_size: int = DEFAULT_STYLE_SIZE):
        """``load_style`` that also accepts mode "auto" (both modes; chosen per image)."""
        if mode != "auto":
            return self.load_style(specs, mode=mode, style_size=style_size)
        specs = list(specs)
        if any(is_pack(parse_style_arg(str(s)).path) for s in specs):
            raise OptionError("--mode auto needs style images: a style pack holds one mode (use --mode with it)")
        std = self.load_style(specs, mode="standard", style_size=style_size)
        return AutoStyle(standard=std, adaptive=self.load_style(specs, mode="adaptive", style_size=style_size),
                         label=std.label)

    def _expected_shapes(self, mode: str) -> Params:
        if mode == "deformable" and not self.model.cfg.deform_kernel:
            raise CheckpointError("the style pack is for --mode deformable, but these weights have no deformable "
                                  "DIN layers")
        return [din.predict(torch.zeros(1, din.weight_net.conv1.in_channels, 4, 4, device=self.device), mode)
                for din in self.model.dins]

    @torch.inference_mode()
    def encode_style(self, rgb: np.ndarray, mode: str = "standard", style_size: int = DEFAULT_STYLE_SIZE) -> Params:
        """Style image (H, W, 3) uint8 -> DIN parameters (the style path: VGG + weight/bias nets)."""
        h, w = rgb.shape[:2]
        if min(h, w) < MIN_STYLE_SIDE:
            raise InputError(f"style image is too small ({w}x{h}); use at least {MIN_STYLE_SIDE} px on each side")
        size = (w, h)
        if style_size:
            s = style_size / max(h, w)
            size = (max(MIN_STYLE_SIDE, round(w * s)), max(MIN_STYLE_SIDE, round(h * s)))
        need = size[0] * size[1] * STYLE_BYTES_PER_PIXEL
        if self.device.type == "cpu" and not memory.fits(need):
            raise ResourceError(f"--style-size {style_size}: encoding the style at {size[0]}x{size[1]} "
                                f"{memory.describe(need)}; use a smaller --style-size")
        try:
            rgb = resize_rgb(rgb, size)
            x = torch.from_numpy(rgb).to(self.device).permute(2, 0, 1)[None].float().div_(255)
            params = self.model.style_params(self.vgg(x), mode)
            return [{k: v.float() for k, v in p.items()} for p in params]
        except (MemoryError, RuntimeError) as e:
            if not _out_of_memory(e):
                raise
            raise ResourceError(f"out of memory on {self.device} encoding the style at {size[0]}x{size[1]}; "
                                "use a smaller --style-size") from None

    def make_pack(self, path: str | Path, mode: str = "standard", style_size: int = DEFAULT_STYLE_SIZE) -> StylePack:
        path = Path(path)
        self.check_mode(mode)
        img = read_image(path)
        try:
            params = self.encode_style(img.rgb, mode, style_size)
        except InputError as e:
            raise InputError(f"{path}: {e}") from None
        return StylePack(params=[{k: v.cpu().clone() for k, v in p.items()} for p in params], model_id=self.model_id,
                         mode=mode, source=path.name, style_size=style_size)

    def load_style(self, specs: Iterable[str | Path | StyleSource], mode: str | None = None,
                   style_size: int = DEFAULT_STYLE_SIZE) -> Style:
        """One or more style images/packs (optionally weighted) -> a Style, computed once per run.

        ``mode`` None means "standard", or the mode the packs were made for."""
        sources = [s if isinstance(s, StyleSource) else parse_style_arg(str(s)) for s in specs]
        if not sources:
            raise OptionError("give at least one --style (an image or a style pack)")
        if mode is not None:
            self.check_mode(mode)
        if style_size is not None and style_size < MIN_STYLE_SIDE:
            raise OptionError(f"--style-size must be at least {MIN_STYLE_SIDE}")
        items, labels, raw = [], [], []
        for src in sources:
            builtin = builtin_styles.resolve(src.path)
            if builtin is not None:
                mode = mode or "standard"
                params, rgb = self._builtin_params(builtin, mode, style_size)
                labels.append(builtin.name)
                raw.append((rgb, src.weight, style_size))
                items.append((params, src.weight))
                continue
            if not src.path.exists():
                raise InputError(builtin_styles.not_found(src.path))
            if is_pack(src.path):
                pack = load_pack(src.path, expected=self._expected_shapes)  # checked before it is read
                want = mode or pack.mode
                if pack.mode != want:
                    raise CheckpointError(f"{src.path}: style pack was made for --mode {pack.mode}, not {want}")
                mode = want
                check_pack(pack, src.path, self.model_id, self._expected_shapes(pack.mode))
                params = [{k: v.to(self.device) for k, v in p.items()} for p in pack.params]
                labels.append(pack.label)
            else:
                mode = mode or "standard"
                img = read_image(src.path)
                try:
                    params = self.encode_style(img.rgb, mode, style_size)
                except InputError as e:
                    raise InputError(f"{src.path}: {e}") from None
                labels.append(src.path.stem)
                raw.append((img.rgb, src.weight, style_size))
            items.append((params, src.weight))
        params = items[0][0] if len(items) == 1 else blend_params(items)
        if len(sources) > 1 and len(set(s.weight for s in sources)) > 1:
            label = "+".join(f"{lab}{round(100 * s.weight / sum(x.weight for x in sources))}"
                             for lab, s in zip(labels, sources))
        else:
            label = "+".join(labels)
        return Style(params=params, label=label, mode=mode or "standard", sources=[str(s.path) for s in sources],
                     images=raw if len(raw) == len(sources) else [])

    def builtin_style(self, name: str, mode: str = "standard", style_size: int = DEFAULT_STYLE_SIZE) -> Style:
        """A built-in style by name (never a file of that name; see ``dinstyle styles``)."""
        self.check_mode(mode)
        style = builtin_styles.STYLES.get(name)
        if style is None:
            raise InputError(builtin_styles.not_found(name))
        params, rgb = self._builtin_params(style, mode, style_size)
        return Style(params=params, label=name, mode=mode, sources=[name], images=[(rgb, 1.0, style_size)])

    def _builtin_params(self, style: builtin_styles.BuiltinStyle, mode: str, style_size: int) -> tuple[Params, np.ndarray]:
        """A built-in style's DIN parameters: from this process's memo, else the pack cached for
        this model id, else encoded now and cached (the cache is skipped for untrained weights)."""
        key = (style.name, mode, style_size)
        if key in self._builtin_memo:
            return self._builtin_memo[key]
        rgb = read_image(style.path).rgb
        cache = None if self.model_id == "untrained" else \
            builtin_styles.pack_cache_path(style, self.model_id, mode, style_size)
        params = None
        if cache is not None and cache.is_file():
            try:
                pack = load_pack(cache)
                check_pack(pack, cache, self.model_id, self._expected_shapes(mode))
                if pack.mode == mode:
                    params = [{k: v.to(self.device) for k, v in p.items()} for p in pack.params]
            except CheckpointError:
                params = None  # a damaged cache entry is simply made again
        if params is None:
            params = self.encode_style(rgb, mode, style_size)
            if cache is not None:
                pack = StylePack(params=[{k: v.cpu().clone() for k, v in p.items()} for p in params],
                                 model_id=self.model_id, mode=mode, source=style.path.name, style_size=style_size)
                try:
                    pack.save(cache)
                except DinstyleError as e:
                    warnings.warn(f"built-in style {style.name}: pack not cached ({e})")
        self._builtin_memo[key] = params, rgb
        return params, rgb

    def color_matched(self, style: Style, content: np.ndarray) -> Style:
        """The style re-encoded from its image(s) recoloured to the content's colour statistics."""
        from dinstyle.color import match_colors

        if not style.images:
            raise OptionError("--color-match needs style images (a style pack has no pixels to recolour)")
        items = [(self.encode_style(match_colors(rgb, content), style.mode, size), w) for rgb, w, size in style.images]
        params = items[0][0] if len(items) == 1 else blend_params(items)
        return Style(params=params, label=style.label, mode=style.mode, sources=style.sources)

    def load_regions(self, specs: list[str], mask: str | Path | np.ndarray, *, feather: float = 4.0, mode: str | None = None,
                     style_size: int = DEFAULT_STYLE_SIZE) -> RegionStyle:
        """``--mask M --style A --style B`` (or ``--style none``): one style per mask region."""
        from dinstyle.masks import region_weights

        if len(specs) < 2:
            raise OptionError("--mask needs at least two --style values (one per region; 'none' keeps the content)")
        styles = [None if str(s).lower() == "none" else self.load_style([s], mode=mode, style_size=style_size)
                  for s in specs]
        if all(s is None for s in styles):
            raise OptionError("--mask: at least one region needs a style")
        modes = {s.mode for s in styles if s is not None}
        if len(modes) > 1:
            raise OptionError("--mask: all styles must use the same --mode")
        rgb = mask if isinstance(mask, np.ndarray) else read_image(mask).rgb
        grey = (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) + 0.5).astype(np.uint8)
        region_weights(grey, len(styles), (grey.shape[1], grey.shape[0]), feather)  # validates the options
        label = "+".join("none" if s is None else s.label for s in styles) + "_masked"
        return RegionStyle(styles=styles, mask=grey, feather=feather, label=label, mode=modes.pop())

    # -- content ----------------------------------------------------------------------------
    def stylize_resilient(self, images: list[np.ndarray], style, *, tile: int | None = None, **kw) -> list[np.ndarray]:
        """``stylize`` that answers out-of-memory by halving the batch, then by tiling with smaller
        tiles, and only then gives up with a clear error (never a hang or a traceback). On the CPU,
        work that cannot fit in the memory available is refused before it starts."""
        h, w = images[0].shape[:2]
        need = self.memory_needed(h, w, tile) * len(images)
        if self.device.type == "cpu" and not memory.fits(need):
            if len(images) > 1:
                half = len(images) // 2
                return (self.stylize_resilient(images[:half], style, tile=tile, **kw)
                        + self.stylize_resilient(images[half:], style, tile=tile, **kw))
            hint = " or --tile 1024" if not self.tile_size_for(h, w, tile) else ""
            raise ResourceError(f"a {w}x{h} image {memory.describe(need)} to stylize; use --max-size{hint}")
        try:
            return self.stylize(images, style, tile=tile, **kw)
        except (MemoryError, RuntimeError) as e:
            if not _out_of_memory(e):
                raise
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            if len(images) > 1:
                half = len(images) // 2
                return (self.stylize_resilient(images[:half], style, tile=tile, **kw)
                        + self.stylize_resilient(images[half:], style, tile=tile, **kw))
            h, w = images[0].shape[:2]
            current = self.tile_size_for(h, w, tile) or max(h, w)
            smaller = current // 2 // self.model.multiple * self.model.multiple
            if smaller >= 128 and not isinstance(style, RegionStyle):
                return self.stylize_resilient(images, style, tile=smaller, **kw)
            hint = " or --device cpu" if self.device.type == "cuda" else ""
            raise ResourceError(f"out of memory on {self.device} even for one {w}x{h} image in "
                                f"{current}-px tiles; try --max-size{hint}") from None

    def memory_needed(self, h: int, w: int, tile: int | None = None) -> int:
        """Bytes (CPU) one h x w image takes to stylize: the whole network at full size, or, tiled,
        one tile with its context plus the whole-image copies."""
        t = self.tile_size_for(h, w, tile)
        if t:
            return h * w * 15 + (t + 2 * TILE_CONTEXT) ** 2 * NET_BYTES_PER_PIXEL
        return h * w * NET_BYTES_PER_PIXEL

    def _geometry(self, h: int, w: int) -> tuple[int, int, int, int]:
        """Padded size (multiple of the network's stride, with a margin) and the image's offset in it."""
        m = self.model.multiple
        ph, pw = -(-(h + 2 * PAD_MARGIN) // m) * m, -(-(w + 2 * PAD_MARGIN) // m) * m
        return ph, pw, (ph - h) // 2, (pw - w) // 2

    def _to_tensor(self, batch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device).permute(0, 3, 1, 2).float().div_(255)
        return x.contiguous(memory_format=torch.channels_last) if self.device.type == "cuda" else x

    def _autocast(self):
        return torch.autocast("cuda", dtype=self.dtype,
                              enabled=self.device.type == "cuda" and self.dtype != torch.float32)

    def tile_size_for(self, h: int, w: int, tile: int | None) -> int:
        """0 = no tiling; ``tile`` None picks automatically from the image size and device."""
        if tile is None:
            kind = "cuda" if self.device.type == "cuda" else "cpu"
            return AUTO_TILE_SIZE[kind] if h * w > AUTO_TILE_PIXELS[kind] else 0
        if tile < 0:
            raise OptionError(f"--tile {tile}: must be >= 0 (0 disables tiling)")
        m = self.model.multiple
        return 0 if tile == 0 else max(m, tile // m * m)

    @torch.inference_mode()
    def stylize(self, images: list[np.ndarray], style: Style, *, strength: float = STYLIZE_DEFAULTS["strength"],
                preserve_color: bool = False, stats_hook=None, tile: int | None = None,
                color_match: bool = False, masks: list[np.ndarray] | None = None) -> list[np.ndarray]:
        """Same-size (H, W, 3) uint8 images -> stylized uint8 images of the same size.

        ``stats_hook`` (e.g. a StatsSmoother) maps each batch's instance-norm statistics to the ones
        used. Large images are processed in tiles (``tile``: None = automatic, 0 = never) whose
        instance-norm statistics are accumulated over the whole image first, so tiles match."""
        if not math.isfinite(strength) or strength < 0:
            raise OptionError(f"--strength {strength}: must be a number >= 0")
        h, w = images[0].shape[:2]
        if any(im.shape[:2] != (h, w) for im in images):
            raise ValueError("stylize() takes images of one size; group them first")
        if isinstance(style, AutoStyle):
            return [self.stylize([im], style.pick(im), strength=strength, preserve_color=preserve_color,
                                 stats_hook=stats_hook, tile=tile, color_match=color_match)[0] for im in images]
        if color_match and not isinstance(style, RegionStyle):
            out = [self.stylize([im], self.color_matched(style, im), strength=strength, tile=tile)[0] for im in images]
        elif isinstance(style, RegionStyle):
            out = self._stylize_regions(images, style, strength, stats_hook, masks)
        elif (tile_size := self.tile_size_for(h, w, tile)):
            out = [self._stylize_tiled(im, style, strength, tile_size) for im in images]
        else:
            ph, pw, top, left = self._geometry(h, w)
            x = F.pad(self._to_tensor(np.stack(images)), (left, pw - w - left, top, ph - h - top), mode="replicate")
            n = x.shape[0]
            params = [{k: v.expand(n, *v.shape[1:]) for k, v in p.items()} for p in style.params]
            with self._autocast():
                y = self.model(x, params, strength=strength, stats_hook=stats_hook)
            out = list(self._to_uint8(y[:, :, top:top + h, left:left + w]))
        if preserve_color:
            out = [keep_luminance_of(o, c) for o, c in zip(out, images)]
        return out

    def _stylize_regions(self, images: list[np.ndarray], style: RegionStyle, strength: float, stats_hook,
                         masks: list[np.ndarray] | None = None) -> list[np.ndarray]:
        """``masks`` (one grey mask per image, e.g. frames of a mask video) override ``style.mask``."""
        from dinstyle.masks import region_weights

        h, w = images[0].shape[:2]
        ph, pw, top, left = self._geometry(h, w)
        pad = (left, pw - w - left, top, ph - h - top)
        per_image = masks if masks is not None else [style.mask]
        weights = torch.from_numpy(np.stack([region_weights(m, len(style.styles), (w, h), style.feather, source="mask")
                                             for m in per_image])).to(self.device)
        weights = F.pad(weights, pad, mode="replicate").expand(len(images), -1, -1, -1)
        x = F.pad(self._to_tensor(np.stack(images)), pad, mode="replicate")
        n = x.shape[0]
        region_params = [None if s is None else [{k: v.expand(n, *v.shape[1:]) for k, v in p.items()} for p in s.params]
                         for s in style.styles]
        with self._autocast():
            y = self.model.forward_regions(x, region_params, weights, strength=strength, stats_hook=stats_hook)
        return list(self._to_uint8(y[:, :, top:top + h, left:left + w]))

    @staticmethod
    def _to_uint8(y: torch.Tensor) -> np.ndarray:
        y = y.float().clamp_(0, 1).mul_(255).add_(0.5)
        return y.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def _tiles(self, ph: int, pw: int, tile: int):
        """Cores (y0, y1, x0, x1) covering the padded image, and their context windows."""
        c = TILE_CONTEXT
        for y0 in range(0, ph, tile):
            for x0 in range(0, pw, tile):
                y1, x1 = min(ph, y0 + tile), min(pw, x0 + tile)
                yield (y0, y1, x0, x1), (max(0, y0 - c), min(ph, y1 + c), max(0, x0 - c), min(pw, x1 + c))

    def _stylize_tiled(self, rgb: np.ndarray, style: Style, strength: float, tile: int) -> np.ndarray:
        """One large image in tiles, with whole-image instance-norm statistics.

        Pass 1 runs the encoder per tile and accumulates each DIN input's sum and sum of squares
        over the tile cores (exactly the positions the untiled run would see); pass 2 runs the
        whole network per tile with those statistics and keeps each core."""
        h, w = rgb.shape[:2]
        ph, pw, top, left = self._geometry(h, w)
        padded = np.pad(rgb, ((top, ph - h - top), (left, pw - w - left), (0, 0)), mode="edge")
        strides = [self.model.cfg.unshuffle * 2**i for i in range(3)]
        sums = [torch.zeros(1, c, 1, 1, dtype=torch.float64, device=self.device) for c in self.model.cfg.widths]
        sqs = [torch.zeros_like(t) for t in sums]
        counts = [0, 0, 0]
        tiles = list(self._tiles(ph, pw, tile))
        for (y0, y1, x0, x1), (cy0, cy1, cx0, cx1) in tiles:
            with self._autocast():
                feats = self.model.encoder(self._to_tensor(padded[None, cy0:cy1, cx0:cx1]))
            for i, (f, s) in enumerate(zip(feats, strides)):
                core = f[:, :, (y0 - cy0) // s:(y1 - cy0) // s, (x0 - cx0) // s:(x1 - cx0) // s].double()
                sums[i] += core.sum((2, 3), keepdim=True)
                sqs[i] += core.square().sum((2, 3), keepdim=True)
                counts[i] += core.shape[2] * core.shape[3]
        eps = self.model.cfg.eps
        stats = []
        for sm, sq, n in zip(sums, sqs, counts):
            mean = sm / n
            var = (sq / n - mean.square()).clamp_min(0)
            stats.append((mean.float(), (var + eps).sqrt().float()))
        out = np.empty((ph, pw, 3), np.uint8)
        for (y0, y1, x0, x1), (cy0, cy1, cx0, cx1) in tiles:
            with self._autocast():
                y = self.model(self._to_tensor(padded[None, cy0:cy1, cx0:cx1]), style.params, strength=strength,
                               stats=stats, origin=(cy0, cx0))
            out[y0:y1, x0:x1] = self._to_uint8(y[:, :, y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0])[0]
        return np.ascontiguousarray(out[top:top + h, left:left + w])

    def stylize_image(self, img: LoadedImage, style, *, max_size: int | None = None, **kw) -> LoadedImage:
        """One decoded image (alpha kept) -> its stylized copy, downscaled first to ``max_size``."""
        h, w = img.rgb.shape[:2]
        size = fit_size(w, h, max_size)
        rgb, alpha = img.rgb, img.alpha
        if size != (w, h):
            rgb = resize_rgb(rgb, size)
            alpha = None if alpha is None else resize_rgb(np.repeat(alpha[..., None], 3, 2), size)[..., 0]
        out = self.stylize_resilient([rgb], style, **kw)[0]
        return LoadedImage(rgb=out, alpha=alpha, format=img.format, path=img.path)

    def stylize_file(self, path: str | Path, style: Style, **kw) -> np.ndarray:
        img = read_image(path)
        return self.stylize([img.rgb], style, **kw)[0]

    # -- many files -------------------------------------------------------------------------
    def run_images(self, inputs: list[str], style: Style, *, out: str | Path | None = None, strength: float = 1.0,
                   preserve_color: bool = False, max_size: int | None = None, fmt: str | None = None,
                   batch_size: int = 1, overwrite: bool = False, recursive: bool = False, tile: int | None = None,
                   color_match: bool = False,
                   on_event: Callable[[ImageEvent], None] | None = None) -> BatchSummary:
        """Stylize files, folders and globs; one bad file is reported and skipped."""
        if batch_size < 1:
            raise OptionError(f"--batch-size {batch_size}: must be at least 1")
        if max_size is not None and max_size < 8:
            raise OptionError(f"--max-size {max_size}: must be at least 8")
        if fmt is not None and fmt.lower() not in EXT_BY_FORMAT:
            raise OptionError(f"--format {fmt}: unknown (use {', '.join(sorted(set(EXT_BY_FORMAT)))})")
        files, problems = expand_inputs(inputs, recursive=recursive)
        if not files:
            raise InputError(problems[0] if problems else "no input images given")
        plan = plan_outputs(files, style, out, fmt)
        total = len(files) + len(problems)
        summary = BatchSummary()

        def emit(ev: ImageEvent) -> None:
            summary.events.append(ev)
            setattr(summary, ev.status, getattr(summary, ev.status) + 1)
            if on_event:
                on_event(ev)

        for i, msg in enumerate(problems):
            emit(ImageEvent(i, total, msg.split(":")[0], None, "failed", error=msg))
        index = len(problems)
        # a batch: same size and same resolved style (--mode auto decides per image, once)
        pending: list[tuple[int, Path, Path, LoadedImage]] = []
        batch_style: list = [None]

        def flush() -> None:
            if not pending:
                return
            t0 = time.perf_counter()
            try:
                outs = self.stylize_resilient([p[3].rgb for p in pending], batch_style[0], strength=strength,
                                              preserve_color=preserve_color, tile=tile, color_match=color_match)
            except ResourceError as e:  # this image is too large here; the others may still fit
                for idx, src, dst, _ in pending:
                    emit(ImageEvent(idx, total, str(src), str(dst), "failed", error=f"{q(src)}: {e}"))
                pending.clear()
                return
            per = (time.perf_counter() - t0) / len(pending)
            for (idx, src, dst, img), rgb in zip(pending, outs):
                t1 = time.perf_counter()
                try:
                    write_image(dst, rgb, img.alpha)
                except DinstyleError as e:
                    emit(ImageEvent(idx, total, str(src), str(dst), "failed", error=str(e)))
                    continue
                emit(ImageEvent(idx, total, str(src), str(dst), "done", per + time.perf_counter() - t1,
                                (rgb.shape[1], rgb.shape[0]), mode=batch_style[0].mode))
            pending.clear()

        input_set = {f.resolve() for f in files}
        remove_stale_temps(plan.values())  # what a killed earlier run of this batch left behind
        for src in files:
            dst = plan[src]
            idx, index = index, index + 1
            try:
                check_output_path(dst)
            except OutputError as e:
                emit(ImageEvent(idx, total, str(src), str(dst), "failed", error=str(e)))
                continue
            if dst.resolve() in input_set:
                emit(ImageEvent(idx, total, str(src), str(dst), "failed",
                                error=f"{dst}: output would overwrite an input; choose another --out"))
                continue
            if dst.exists() and not overwrite:
                emit(ImageEvent(idx, total, str(src), str(dst), "skipped", error="exists (use --overwrite)"))
                continue
            try:
                img = read_image(src, max_size=max_size)  # downscaled while decoding (no full-size copy)
            except InputError as e:
                emit(ImageEvent(idx, total, str(src), None, "failed", error=str(e)))
                continue
            chosen = style.pick(img.rgb) if isinstance(style, AutoStyle) else style
            if pending and (pending[0][3].rgb.shape != img.rgb.shape or chosen is not batch_style[0]
                            or len(pending) >= batch_size):
                flush()
            batch_style[0] = chosen
            pending.append((idx, src, dst, img))
            if len(pending) >= batch_size:
                flush()
        flush()
        return summary


class StatsSmoother:
    """Instance-norm statistics smoothed over time (exponential moving average across frames).

    Per-frame statistics make colours and textures pump from frame to frame; the smoothed ones
    change only as fast as the scene does. Feed batches in frame order."""

    def __init__(self, momentum: float = 0.9):
        if not 0.0 <= momentum < 1.0:
            raise OptionError(f"stats momentum {momentum}: must be in [0, 1)")
        self.momentum = momentum
        self.state: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def __call__(self, stats: list[tuple[torch.Tensor, torch.Tensor]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self.state is None:
            self.state = [(m[:1], s[:1]) for m, s in stats]
        out, state = [], []
        for (m, s), (pm, ps) in zip(stats, self.state):
            ms, ss = [], []
            for b in range(m.shape[0]):
                pm = torch.lerp(m[b:b + 1], pm, self.momentum)
                ps = torch.lerp(s[b:b + 1], ps, self.momentum)
                ms.append(pm)
                ss.append(ps)
            out.append((torch.cat(ms), torch.cat(ss)))
            state.append((pm, ps))
        self.state = state
        return out


def plan_outputs(files: list[Path], style: Style, out: str | Path | None, fmt: str | None) -> dict[Path, Path]:
    """Output path for every input: ``<out>/<stem>_<style>.<ext>``, or ``out`` itself for one file.

    Inputs that share a stem get ``-2``, ``-3`` ... so no output is written twice."""
    out_path = check_output_path(Path(out) if out is not None else Path("stylized"))
    single_file = out is not None and out_path.suffix.lower() in FORMAT_BY_EXT and not out_path.is_dir()
    if single_file and len(files) > 1:
        raise OptionError(f"--out {q(out_path)}: a file name takes one input; give a folder for {len(files)} inputs")
    if single_file and fmt and FORMAT_BY_EXT[out_path.suffix.lower()] != FORMAT_BY_EXT.get(EXT_BY_FORMAT.get(fmt.lower(), "")):
        raise OptionError(f"--format {fmt} conflicts with --out {q(out_path)}: the file name's extension sets the "
                          "format; give one of them")
    if out_path.exists() and not out_path.is_dir() and not single_file:
        raise OutputError(f"--out {q(out_path)}: exists and is not a folder")
    plan: dict[Path, Path] = {}
    used: set[str] = set()
    label = "".join(c if c.isalnum() or c in "+-." else "_" for c in style.label)
    if style.mode != "standard":
        label += f"_{style.mode}"
    for f in files:
        if single_file:
            plan[f] = out_path
            continue
        if fmt:
            ext = EXT_BY_FORMAT[fmt.lower()]
        else:
            ext = f.suffix.lower() if f.suffix.lower() in FORMAT_BY_EXT else ".png"
            ext = ".png" if ext == ".gif" else ext
        stem, k = f.stem, 1
        name = f"{stem}_{label}{ext}"
        while name.lower() in used:
            k += 1
            name = f"{stem}-{k}_{label}{ext}"
        used.add(name.lower())
        plan[f] = out_path / name
    return plan


def _out_of_memory(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or memory.is_out_of_memory(e)
