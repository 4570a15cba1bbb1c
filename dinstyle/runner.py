"""The content path: same-size uint8 images in, stylized uint8 images out.

``ContentRunner`` pads images to the network's stride, runs them in batches, in tiles (huge images:
whole-image instance-norm statistics first, so no seams) or with region masks, and answers
running out of memory by halving the batch, then the tile. It takes a ``Style`` (one set of DIN
parameters) or a ``RegionStyle``; which style an image gets is decided before (``styles.py``).
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from dinstyle.color import keep_luminance_of
from dinstyle.config import PAD_MARGIN, STYLIZE
from dinstyle.errors import OptionError, ResourceError
from dinstyle.io import memory
from dinstyle.io.images import LoadedImage, fit_size, resize_rgb
from dinstyle.model import DinStyleNet
from dinstyle.palette import PaletteMap
from dinstyle.runtime import is_out_of_memory
from dinstyle.styles import RegionStyle, Style
from dinstyle.tone import guide_tone

MIN_TILE_CONTEXT = 96  # context around each tile, at least: the model's reach (tiles agree) and slack for deformable offsets
AUTO_TILE_PIXELS = {"cpu": 8_300_000, "cuda": 16_600_000}  # above this (4K on CPU), tile automatically
AUTO_TILE_SIZE = {"cpu": 1024, "cuda": 2048}
# Peak memory per pixel on the CPU (fp32), measured with the shipped model (~340 B/px at 1080p and 4K,
# benchmarks/results); used to refuse, with one line, work that cannot fit before it starts.
NET_BYTES_PER_PIXEL = 300
MAX_SUPERSAMPLE = 2.0  # --supersample: the network's cost grows with its square


def check_render_options(strength: float = STYLIZE.strength, palette: float = STYLIZE.palette,
                         tone: float = STYLIZE.tone, supersample: float = STYLIZE.supersample) -> None:
    """--strength, --palette, --tone and --supersample, checked before any work starts (a batch, a
    video, a cluster run)."""
    if not math.isfinite(strength) or strength < 0:
        raise OptionError(f"--strength {strength}: must be a number >= 0")
    if not math.isfinite(palette) or not 0 <= palette <= 1:
        raise OptionError(f"--palette {palette}: must be between 0 (the network's colours) and 1")
    if not math.isfinite(tone) or not 0 <= tone <= 1:
        raise OptionError(f"--tone {tone}: must be between 0 (the network's light and dark) and 1 (the photo's)")
    if not math.isfinite(supersample) or not 1 <= supersample <= MAX_SUPERSAMPLE:
        raise OptionError(f"--supersample {supersample}: must be between 1 (off) and {MAX_SUPERSAMPLE:g}")


def network_size(w: int, h: int, supersample: float) -> tuple[int, int]:
    """(width, height) the network runs at for a w x h image enlarged ``supersample`` times."""
    if supersample == 1:
        return w, h
    return max(1, round(w * supersample)), max(1, round(h * supersample))


class StatsSmoother:
    """Instance-norm statistics smoothed over time (exponential moving average across frames).

    Per-frame statistics make colours and textures pump from frame to frame; the smoothed ones
    change only as fast as the scene does. Feed batches in frame order."""

    def __init__(self, momentum: float = STYLIZE.momentum):
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


class ContentRunner:
    """The network's content path on one device and compute dtype."""

    def __init__(self, model: DinStyleNet, device: torch.device, dtype: torch.dtype):
        self.model, self.device, self.dtype = model, device, dtype
        m = model.multiple  # tile corners stay on the network's grid
        self.tile_context = max(MIN_TILE_CONTEXT, -(-model.reach // m) * m)

    def stylize_resilient(self, images: list[np.ndarray], style: Style | RegionStyle, *, tile: int | None = None,
                          **kw) -> list[np.ndarray]:
        """``stylize`` that answers out-of-memory by halving the batch, then by tiling with smaller
        tiles, and only then gives up with a clear error (never a hang or a traceback). On the CPU,
        work that cannot fit in the memory available is refused before it starts. Memory and tiles
        are reckoned on the size the network runs at (``supersample``)."""
        supersample = kw.get("supersample", STYLIZE.supersample)
        check_render_options(supersample=supersample)  # before it sizes anything
        w, h = network_size(images[0].shape[1], images[0].shape[0], supersample)
        regions = isinstance(style, RegionStyle)  # the region path never tiles
        what = f"{w}x{h} image" if supersample == 1 else f"{w}x{h} network pass (--supersample {supersample:g})"
        lower = " or a lower --supersample" if supersample > 1 else ""
        need = self.memory_needed(h, w, 0 if regions else tile) * len(images)
        if self.device.type == "cpu" and not memory.fits(need):
            if len(images) > 1:
                return self._in_halves(images, style, tile, kw)
            hint = " or --tile 1024" if not regions and not self.tile_size_for(h, w, tile) else ""
            raise ResourceError(f"a {what} {memory.describe(need)} to stylize; use --max-size{hint}{lower}")
        try:
            return self.stylize(images, style, tile=tile, **kw)
        except (MemoryError, RuntimeError) as e:
            if not is_out_of_memory(e):
                raise
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            if len(images) > 1:
                return self._in_halves(images, style, tile, kw)
            current = self.tile_size_for(h, w, tile) or max(h, w)
            smaller = current // 2 // self.model.multiple * self.model.multiple
            if smaller >= 128 and not regions:
                return self.stylize_resilient(images, style, tile=smaller, **kw)
            hint = " or --device cpu" if self.device.type == "cuda" else ""
            raise ResourceError(f"out of memory on {self.device} even for one {what} in "
                                f"{current}-px tiles; try --max-size{hint}{lower}") from None

    def _in_halves(self, images: list[np.ndarray], style: Style | RegionStyle, tile: int | None,
                   kw: dict) -> list[np.ndarray]:
        """``stylize_resilient`` on each half of a batch; per-image ``masks`` are split with it."""
        half = len(images) // 2
        masks = kw.get("masks")
        first, second = (kw, kw) if masks is None else ({**kw, "masks": masks[:half]}, {**kw, "masks": masks[half:]})
        return (self.stylize_resilient(images[:half], style, tile=tile, **first)
                + self.stylize_resilient(images[half:], style, tile=tile, **second))

    def memory_needed(self, h: int, w: int, tile: int | None = None) -> int:
        """Bytes (CPU) one h x w image takes to stylize: the whole network at full size, or, tiled,
        one tile with its context plus the whole-image copies."""
        t = self.tile_size_for(h, w, tile)
        if t:
            return h * w * 15 + (t + 2 * self.tile_context) ** 2 * NET_BYTES_PER_PIXEL
        return h * w * NET_BYTES_PER_PIXEL

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
    def stylize(self, images: list[np.ndarray], style: Style | RegionStyle, *, strength: float = STYLIZE.strength,
                palette: float = STYLIZE.palette, tone: float = STYLIZE.tone, preserve_color: bool = False,
                supersample: float = STYLIZE.supersample, stats_hook=None, palette_hook=None, tile: int | None = None,
                masks: list[np.ndarray] | None = None) -> list[np.ndarray]:
        """Same-size (H, W, 3) uint8 images -> stylized uint8 images of the same size.

        ``stats_hook`` (e.g. a StatsSmoother) maps each batch's instance-norm statistics to the ones
        used. Large images are processed in tiles (``tile``: None = automatic, 0 = never) whose
        instance-norm statistics are accumulated over the whole image first, so tiles match.
        ``masks`` (one grey mask per image, e.g. frames of a mask video) override a RegionStyle's.
        ``palette`` moves the output's colours that far onto the painting's (``palette.py``; 0 = the
        network's own colours; scaled down with a ``strength`` under 1; not with ``preserve_color``,
        which keeps the photo's); ``palette_hook``
        (e.g. a PaletteSmoother) maps each image's fitted ``PaletteMap`` to the one applied.
        ``tone`` moves the output's broad light and dark that far to the photo's before the palette
        transfer (``tone.py``; 0 = the network's own; scaled down with a ``strength`` under 1, like
        the palette; with ``preserve_color`` it still sets the light and dark, the photo's colours
        are laid on them). ``supersample`` runs the network on the images enlarged that many times
        and shrinks its outputs back (area average) before the finishing stages: finer strokes, at about
        its square in time and memory; ``tile`` then counts the network's pixels."""
        check_render_options(strength, palette, tone, supersample)
        palette = 0.0 if preserve_color else palette * min(strength, 1.0)  # strength 0 = the photo, unstyled
        tone = tone * min(strength, 1.0)
        h, w = images[0].shape[:2]
        if any(im.shape[:2] != (h, w) for im in images):
            raise ValueError("stylize() takes images of one size; group them first")
        nw, nh = network_size(w, h, supersample)
        net_in = images if (nw, nh) == (w, h) else [resize_rgb(im, (nw, nh)) for im in images]
        soft = None  # a region style's soft masks, one per image (each region's palette is fitted under its own)
        if isinstance(style, RegionStyle):
            soft = self._region_weights(style, masks, w, h, len(images))
            out = self._stylize_regions(net_in, style, soft, strength, stats_hook)
        elif (tile_size := self.tile_size_for(nh, nw, tile)):
            out = [self._stylize_tiled(im, style, strength, tile_size) for im in net_in]
        else:
            ph, pw, top, left = self._geometry(nh, nw)
            x = F.pad(self._to_tensor(np.stack(net_in)), (left, pw - nw - left, top, ph - nh - top), mode="replicate")
            window = self._window(ph, pw, top, left, nh, nw)
            with self._autocast():
                y = self.model(x, style.params.expand(x.shape[0]), strength=strength, stats_hook=stats_hook,
                               window=window)
            top, left = top - window[0], left - window[1]
            out = list(self._to_uint8(y[:, :, top:top + nh, left:left + nw]))
        if (nw, nh) != (w, h):  # back to the image's size (area average: a sharper filter adds 2-px ripple);
            out = [cv2.resize(o, (w, h), interpolation=cv2.INTER_AREA) for o in out]  # the finishing runs there
        if tone:
            out = [guide_tone(o, im, tone) for o, im in zip(out, images)]
        if palette and soft is not None:
            out = [self._region_palette(o, style, wt, palette, palette_hook) for o, wt in zip(out, soft)]
        elif palette and style.palette is not None:
            out = [self._palette_map(o, style.palette, palette, palette_hook).apply(o) for o in out]
        if preserve_color:
            out = [keep_luminance_of(o, c) for o, c in zip(out, images)]
        return out

    def stylize_image(self, img: LoadedImage, style: Style | RegionStyle, **kw) -> LoadedImage:
        """One decoded image (alpha kept) -> its stylized copy (``stylize_resilient`` options)."""
        out = self.stylize_resilient([img.rgb], style, **kw)[0]
        return LoadedImage(rgb=out, alpha=img.alpha, format=img.format, path=img.path)

    # -- how ---------------------------------------------------------------------------------
    @staticmethod
    def _palette_map(rgb: np.ndarray, palette, amount: float, hook, key: int = 0) -> PaletteMap:
        fitted = PaletteMap.fit(rgb, palette, amount)
        return fitted if hook is None else hook(fitted, key)

    @staticmethod
    def _region_weights(style: RegionStyle, masks: list[np.ndarray] | None, w: int, h: int,
                        n: int) -> list[np.ndarray]:
        """Each image's soft region masks (regions, h, w) at the image's size: ``masks`` (one per
        image) or the style's own."""
        from dinstyle.masks import region_weights

        per_image = masks if masks is not None else [style.mask]
        soft = [region_weights(m, len(style.styles), (w, h), style.feather, source="mask") for m in per_image]
        return soft * n if len(soft) == 1 else soft

    def _stylize_regions(self, images: list[np.ndarray], style: RegionStyle, soft: list[np.ndarray],
                         strength: float, stats_hook) -> list[np.ndarray]:
        """The network's outputs with a region style, under each image's soft masks (resized to the
        images, which are larger than the masks with ``supersample``)."""
        h, w = images[0].shape[:2]
        ph, pw, top, left = self._geometry(h, w)
        pad = (left, pw - w - left, top, ph - h - top)
        if soft[0].shape[1:] != (h, w):
            soft = [np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR) for m in s]) for s in soft]
        weights = torch.from_numpy(np.stack(soft)).to(self.device)
        weights = F.pad(weights, pad, mode="replicate").expand(len(images), -1, -1, -1)
        x = F.pad(self._to_tensor(np.stack(images)), pad, mode="replicate")
        n = x.shape[0]
        region_params = [None if s is None else s.params.expand(n) for s in style.styles]
        window = self._window(ph, pw, top, left, h, w)
        with self._autocast():
            y = self.model.forward_regions(x, region_params, weights, strength=strength, stats_hook=stats_hook,
                                           window=window)
        top, left = top - window[0], left - window[1]
        return list(self._to_uint8(y[:, :, top:top + h, left:left + w]))

    def _region_palette(self, rgb: np.ndarray, style: RegionStyle, weights: np.ndarray, amount: float,
                        hook) -> np.ndarray:
        """Each styled region's colours moved onto its own painting's palette: the map is fitted on
        the pixels the region holds (weight over one half) and blended in by the soft weights."""
        acc = np.zeros(rgb.shape, np.float32)
        for k, (s, wk) in enumerate(zip(style.styles, weights)):
            mine = rgb[wk > 0.5]
            mapped = rgb
            if s is not None and s.palette is not None and len(mine):
                mapped = self._palette_map(mine, s.palette, amount, hook, k).apply(rgb)
            acc += wk[..., None] * mapped
        return np.clip(acc + 0.5, 0, 255).astype(np.uint8)

    def _tiles(self, ph: int, pw: int, tile: int):
        """Cores (y0, y1, x0, x1) covering the padded image, and their context windows."""
        c = self.tile_context
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
            with self._autocast():  # the decoder runs on the core (and its reach), not the context
                y = self.model(self._to_tensor(padded[None, cy0:cy1, cx0:cx1]), style.params, strength=strength,
                               stats=stats, origin=(cy0, cx0), window=(y0 - cy0, x0 - cx0, y1 - y0, x1 - x0))
            out[y0:y1, x0:x1] = self._to_uint8(y)[0]
        return np.ascontiguousarray(out[top:top + h, left:left + w])

    def _geometry(self, h: int, w: int) -> tuple[int, int, int, int]:
        """Padded size (multiple of the network's stride, with a margin) and the image's offset in it."""
        m = self.model.multiple
        ph, pw = -(-(h + 2 * PAD_MARGIN) // m) * m, -(-(w + 2 * PAD_MARGIN) // m) * m
        return ph, pw, (ph - h) // 2, (pw - w) // 2

    def _window(self, ph: int, pw: int, top: int, left: int, h: int, w: int) -> tuple[int, int, int, int]:
        """The decoder window (top, left, height, width) covering the image inside its padded
        margin, on the network's grid: the encoder and the DIN statistics see the whole padded
        image, the decoder only the image plus the few pixels its convolutions reach (the margin
        is context, not output; decoding it was a third of the work at 512x512)."""
        m = self.model.multiple
        y0, x0 = top // m * m, left // m * m
        y1, x1 = min(ph, -(-(top + h) // m) * m), min(pw, -(-(left + w) // m) * m)
        return y0, x0, y1 - y0, x1 - x0

    def _to_tensor(self, batch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device).permute(0, 3, 1, 2).float().div_(255)
        return x.contiguous(memory_format=torch.channels_last) if self.device.type == "cuda" else x

    def _autocast(self):
        return torch.autocast("cuda", dtype=self.dtype,
                              enabled=self.device.type == "cuda" and self.dtype != torch.float32)

    @staticmethod
    def _to_uint8(y: torch.Tensor) -> np.ndarray:
        y = y.float().clamp_(0, 1).mul_(255).add_(0.5)
        return y.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def fit_image(img: LoadedImage, max_size: int | None) -> LoadedImage:
    """``img`` (alpha kept) downscaled so its long side is at most ``max_size``."""
    h, w = img.rgb.shape[:2]
    size = fit_size(w, h, max_size)
    if size == (w, h):
        return img
    alpha = None if img.alpha is None else resize_rgb(np.repeat(img.alpha[..., None], 3, 2), size)[..., 0]
    return LoadedImage(rgb=resize_rgb(img.rgb, size), alpha=alpha, format=img.format, path=img.path)
