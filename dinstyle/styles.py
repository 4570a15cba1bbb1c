"""The style path: what a ``--style`` value becomes, once per run.

A style image, a style pack or a built-in style's name (optionally weighted, ``a.jpg:0.7``) is
turned into DIN parameters by ``StylePath`` (VGG-19 style encoder + the weight/bias nets), or read
from a pack, and blended. The result is one of the style types below, which share one protocol:

    label, mode      what the output names and the --json records say
    per_image        True when the parameters depend on the image (--mode auto, --color-match)
    for_image(rgb)   the parameters to run one image with: a ``Style`` or a ``RegionStyle``

so the content path only ever receives a ``Style`` (one set of parameters) or a ``RegionStyle``
(one per mask region); what depends on the image is decided here, before it runs.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dinstyle import builtin_styles
from dinstyle.checkpoint import VGG_NAME, find_vgg, load_vgg
from dinstyle.config import STYLIZE
from dinstyle.errors import CheckpointError, DinstyleError, InputError, OptionError, ResourceError
from dinstyle.io import memory
from dinstyle.io.images import read_image, resize_rgb
from dinstyle.model import MODES, DinParams, DinStyleNet, kind_of
from dinstyle.packs import StylePack, check_pack, is_pack, load_pack
from dinstyle.palette import Palette
from dinstyle.runtime import is_out_of_memory

MIN_STYLE_SIDE = 16
STYLE_BYTES_PER_PIXEL = 1024  # the VGG encoder at the style's size (64 channels at full resolution, fp32)
AUTO_FLAT_FRACTION = 0.5  # --mode auto picks the adaptive mode above this share of uniform pixels


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


def blend(items: list[tuple[DinParams, float]]) -> DinParams:
    """Weighted blend of DIN parameters of one kind (weights normalised to sum to 1)."""
    total = sum(w for _, w in items)
    if not items or not math.isfinite(total) or total <= 0:
        raise ValueError("style weights must be positive")
    kind = items[0][0].kind
    if any(p.kind is not kind for p, _ in items):
        raise OptionError("styles of different --mode cannot be blended")
    out = []
    for layer in range(len(items[0][0])):
        first = items[0][0][layer]
        out.append({k: sum(kind.fit(p[layer][k], first[k]) * (w / total) for p, w in items) for k in first})
    return DinParams(kind, out)


# -- the style types ---------------------------------------------------------------------------

@dataclass
class Style:
    """One set of DIN parameters (batch dim 1, on the model's device) and the name outputs get."""

    params: DinParams
    label: str
    # (style image, weight, style_size) of image-sourced styles, kept for --color-match
    images: list[tuple[np.ndarray, float, int]] = field(default_factory=list, repr=False)
    # the painting's colours, for the palette transfer (None: a pack made before packs kept them)
    palette: Palette | None = field(default=None, repr=False)
    per_image = False

    @property
    def mode(self) -> str:
        return self.params.mode

    def for_image(self, rgb: np.ndarray) -> "Style":
        return self


@dataclass
class RegionStyle:
    """Several styles placed by a mask (grey levels split evenly: dark -> first style)."""

    styles: list[Style | None]  # None keeps the content in that region
    mask: np.ndarray  # (H, W) uint8 grey levels (a mask video's first frame)
    feather: float
    label: str
    mode: str
    mask_video: Path | None = None  # video: a mask per frame, from this clip
    per_image = False

    def for_image(self, rgb: np.ndarray) -> "RegionStyle":
        return self


@dataclass
class AutoStyle:
    """--mode auto: both modes encoded; each image gets adaptive if it is mostly uniform regions."""

    standard: Style
    adaptive: Style
    label: str
    mode: str = "auto"
    per_image = True

    def for_image(self, rgb: np.ndarray) -> Style:
        from dinstyle.metrics import flat_fraction

        return self.adaptive if flat_fraction(rgb) > AUTO_FLAT_FRACTION else self.standard


@dataclass
class ColorMatched:
    """--color-match: the style re-encoded, for each image, from its picture(s) recoloured to that
    image's colour statistics (keeps the photo's colours and the style's contrast)."""

    style: Style | AutoStyle
    path: "StylePath" = field(repr=False)
    per_image = True

    @property
    def label(self) -> str:
        return self.style.label

    @property
    def mode(self) -> str:
        return self.style.mode

    def for_image(self, rgb: np.ndarray) -> Style:
        from dinstyle.color import match_colors

        style = self.style.for_image(rgb)
        if not style.images:
            raise OptionError("--color-match needs style images (a style pack has no pixels to recolour)")
        recoloured = [(match_colors(img, rgb), w, size) for img, w, size in style.images]
        items = [(self.path.encode(img, style.mode, size), w) for img, w, size in recoloured]
        return Style(params=items[0][0] if len(items) == 1 else blend(items), label=style.label,
                     palette=palette_of_images(recoloured))


AnyStyle = Style | RegionStyle | AutoStyle | ColorMatched


def palette_of_images(images: list[tuple[np.ndarray, float, int]]) -> Palette:
    """The palette of (style image, weight, style_size) items, mixed by weight."""
    return Palette.mix([(Palette.of(img), w) for img, w, _ in images])


# -- the style path ----------------------------------------------------------------------------

class StylePath:
    """Turns --style values into styles with the loaded model's weight/bias nets and, for images,
    the VGG-19 style encoder (loaded on first use: packs never need it)."""

    def __init__(self, model: DinStyleNet, device: torch.device, model_id: str, weights_dir: Path,
                 vgg: str | Path | None = None):
        self.model, self.device, self.model_id = model, device, model_id
        self._weights_dir, self._vgg_arg = weights_dir, vgg
        self._vgg = None
        self._builtin_memo: dict[tuple[str, str, int], tuple[DinParams, np.ndarray]] = {}

    @property
    def vgg(self):
        """The style encoder, loaded on first use."""
        if self._vgg is None:
            shipped = self._weights_dir / VGG_NAME
            path = self._vgg_arg or (shipped if shipped.is_file() else find_vgg())
            self._vgg = load_vgg(path).to(self.device)
        return self._vgg

    @property
    def vgg_loaded(self) -> bool:
        return self._vgg is not None

    def check_mode(self, mode: str) -> str:
        if mode not in MODES:
            raise OptionError(f"--mode {mode}: unknown (use {', '.join(MODES)}; 'auto' where the command offers it)")
        why = self.model.missing(mode)
        if why:
            raise OptionError(f"--mode {mode}: {why} ({kind_of(mode).hint})")
        return mode

    def expected(self, mode: str) -> DinParams:
        """The parameters' names and shapes for ``mode`` (what a pack must hold for this model)."""
        why = self.model.missing(mode)
        if why:
            raise CheckpointError(f"the style pack is for --mode {mode}, but {why}")
        return self.model.probe_params(mode)

    @torch.inference_mode()
    def encode(self, rgb: np.ndarray, mode: str = "standard", style_size: int = STYLIZE.style_size) -> DinParams:
        """Style image (H, W, 3) uint8 -> DIN parameters (VGG + weight/bias nets)."""
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
            return self.model.style_params(self.vgg(x), mode).map(lambda v: v.float())
        except (MemoryError, RuntimeError) as e:
            if not is_out_of_memory(e):
                raise
            raise ResourceError(f"out of memory on {self.device} encoding the style at {size[0]}x{size[1]}; "
                                "use a smaller --style-size") from None

    def _encode_file(self, path: Path, mode: str, style_size: int) -> tuple[DinParams, np.ndarray]:
        img = read_image(path)
        try:
            return self.encode(img.rgb, mode, style_size), img.rgb
        except InputError as e:
            raise InputError(f"{path}: {e}") from None

    def make_pack(self, path: str | Path, mode: str = "standard", style_size: int = STYLIZE.style_size) -> StylePack:
        path = Path(path)
        self.check_mode(mode)
        params, rgb = self._encode_file(path, mode, style_size)
        return StylePack(params=params.map(lambda v: v.cpu().clone()), model_id=self.model_id, source=path.name,
                         style_size=style_size, palette=Palette.of(rgb).pixels)

    def load(self, specs: Iterable[str | Path | StyleSource], mode: str | None = None,
             style_size: int = STYLIZE.style_size) -> Style:
        """One or more style images/packs/built-in names (optionally weighted) -> a Style.

        ``mode`` None means "standard", or the mode the packs were made for."""
        sources = [s if isinstance(s, StyleSource) else parse_style_arg(str(s)) for s in specs]
        if not sources:
            raise OptionError("give at least one --style (an image or a style pack)")
        if mode is not None:
            self.check_mode(mode)
        if style_size is not None and style_size < MIN_STYLE_SIDE:
            raise OptionError(f"--style-size must be at least {MIN_STYLE_SIDE}")
        items, labels, raw, palettes = [], [], [], []
        for src in sources:
            builtin = builtin_styles.resolve(src.path)
            if builtin is not None:
                mode = mode or "standard"
                params, rgb = self._builtin_params(builtin, mode, style_size)
                labels.append(builtin.name)
                raw.append((rgb, src.weight, style_size))
                palettes.append((Palette.of(rgb), src.weight))
            elif not src.path.exists():
                raise InputError(builtin_styles.not_found(src.path))
            elif is_pack(src.path):
                pack = load_pack(src.path, expected=self.expected)  # checked before it is read
                want = mode or pack.mode
                if pack.mode != want:
                    raise CheckpointError(f"{src.path}: style pack was made for --mode {pack.mode}, not {want}")
                mode = want
                check_pack(pack, src.path, self.model_id, self.expected(pack.mode))
                params = pack.params.to(self.device)
                labels.append(pack.label)
                if pack.palette is not None:
                    palettes.append((Palette(pack.palette), src.weight))
            else:
                mode = mode or "standard"
                params, rgb = self._encode_file(src.path, mode, style_size)
                labels.append(src.path.stem)
                raw.append((rgb, src.weight, style_size))
                palettes.append((Palette.of(rgb), src.weight))
            items.append((params, src.weight))
        params = items[0][0] if len(items) == 1 else blend(items)
        if len(sources) > 1 and len(set(s.weight for s in sources)) > 1:
            label = "+".join(f"{lab}{round(100 * s.weight / sum(x.weight for x in sources))}"
                             for lab, s in zip(labels, sources))
        else:
            label = "+".join(labels)
        # a blend with a pack that holds no palette gets none (its colours are unknown)
        palette = Palette.mix(palettes) if len(palettes) == len(sources) else None
        return Style(params=params, label=label, images=raw if len(raw) == len(sources) else [], palette=palette)

    def load_auto(self, specs, mode: str | None = None, style_size: int = STYLIZE.style_size) -> Style | AutoStyle:
        """``load`` that also accepts mode "auto" (both modes; chosen per image)."""
        if mode != "auto":
            return self.load(specs, mode=mode, style_size=style_size)
        specs = list(specs)
        if any(is_pack(parse_style_arg(str(s)).path) for s in specs):
            raise OptionError("--mode auto needs style images: a style pack holds one mode (use --mode with it)")
        std = self.load(specs, mode="standard", style_size=style_size)
        return AutoStyle(standard=std, adaptive=self.load(specs, mode="adaptive", style_size=style_size),
                         label=std.label)

    def load_regions(self, specs: list[str], mask: str | Path | np.ndarray, *, feather: float = STYLIZE.feather,
                     mode: str | None = None, style_size: int = STYLIZE.style_size,
                     video: bool = False) -> RegionStyle:
        """``--mask M --style A --style B`` (or ``--style none``): one style per mask region. With
        ``video``, a mask that is a video gives one mask per frame (its first frame checks the options)."""
        from dinstyle.masks import region_weights

        if len(specs) < 2:
            raise OptionError("--mask needs at least two --style values (one per region; 'none' keeps the content)")
        mask_video = None
        if video and not isinstance(mask, np.ndarray):
            from dinstyle.io.video import is_video, read_video

            if is_video(mask):
                mask_video = Path(mask)
                frames = read_video(mask_video)[1]
                try:
                    mask = next(frames, None)
                finally:
                    frames.close()
                if mask is None:
                    from dinstyle.io.files import q

                    raise InputError(f"{q(mask_video)}: the mask video has no frames")
        styles = [None if str(s).lower() == "none" else self.load([s], mode=mode, style_size=style_size)
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
        return RegionStyle(styles=styles, mask=grey, feather=feather, label=label, mode=modes.pop(),
                           mask_video=mask_video)

    def from_options(self, specs: list[str], *, mode: str | None = None, style_size: int = STYLIZE.style_size,
                     mask: str | Path | None = None, feather: float = STYLIZE.feather, color_match: bool = False,
                     video: bool = False) -> AnyStyle:
        """What ``-s`` with --mode, --style-size, --mask, --feather and --color-match name, as the
        style type that runs it. Videos (``video``) take a mask video and no --mode auto."""
        if mask is not None:  # --color-match does not apply to regions
            return self.load_regions(specs, mask, feather=feather, mode=mode, style_size=style_size, video=video)
        style = self.load(specs, mode=mode, style_size=style_size) if video else \
            self.load_auto(specs, mode=mode, style_size=style_size)
        return self.color_matching(style) if color_match else style

    def color_matching(self, style: AnyStyle) -> AnyStyle:
        """``style`` recoloured per image (--color-match); region styles are left as they are."""
        if isinstance(style, (Style, AutoStyle)):
            return ColorMatched(style, self)
        return style

    def builtin(self, name: str, mode: str = "standard", style_size: int = STYLIZE.style_size) -> Style:
        """A built-in style by name (never a file of that name; see ``dinstyle styles``)."""
        self.check_mode(mode)
        style = builtin_styles.STYLES.get(name)
        if style is None:
            raise InputError(builtin_styles.not_found(name))
        params, rgb = self._builtin_params(style, mode, style_size)
        return Style(params=params, label=name, images=[(rgb, 1.0, style_size)], palette=Palette.of(rgb))

    def _builtin_params(self, style: builtin_styles.BuiltinStyle, mode: str,
                        style_size: int) -> tuple[DinParams, np.ndarray]:
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
                check_pack(pack, cache, self.model_id, self.expected(mode))
                if pack.mode == mode:
                    params = pack.params.to(self.device)
            except CheckpointError:
                params = None  # a damaged cache entry is simply made again
        if params is None:
            params = self.encode(rgb, mode, style_size)
            if cache is not None:
                pack = StylePack(params=params.map(lambda v: v.cpu().clone()), model_id=self.model_id,
                                 source=style.path.name, style_size=style_size)
                try:
                    pack.save(cache)
                except DinstyleError as e:
                    warnings.warn(f"built-in style {style.name}: pack not cached ({e})")
        self._builtin_memo[key] = params, rgb
        return params, rgb
