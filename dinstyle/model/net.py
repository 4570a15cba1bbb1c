"""MobileNet-DIN: content encoder, hierarchical DIN, decoder (Fig. 4 of the DIN paper).

Deviations from the paper, chosen for speed on CPUs and in video (measured in benchmarks/):
- the image is folded 2x2 into channels (pixel unshuffle) before the encoder, so no 16-channel
  tensor ever exists at full resolution: on a CPU every full-resolution pass over memory costs as
  much as a small conv. The stride-1 conv and the
  two stride-2 blocks follow, so DIN acts at 1/2, 1/4 and 1/8 of the input size;
- the stride-1 input conv is 3x3 (Johnson's 9x9 costs 1 G MACs at 512x512 on its own);
- no normalisation layers inside encoder/decoder: the only norms are the DIN layers, whose
  instance norm and dynamic affine are fused into one pass (``din_affine``);
- decoder up-steps reduce channels with a 1x1 conv *before* up-sampling;
- the output head predicts RGB plus a few feature channels at half resolution, up-samples them
  bilinearly and refines with one 3x3 conv at full resolution (``BilinearHead``): the paper's
  bilinear decoder, without the 2-pixel stripes of a pixel-shuffle head.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dinstyle.config import VGG_TAP_CHANNELS, VGG_TAP_SCALE, ModelConfig
from dinstyle.model.din import Stats, calc_mean_std
from dinstyle.model.kinds import DinKind, DinParams, DynamicInstanceNorm, kind_of


class DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 (optionally strided) then pointwise 1x1, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1, act: bool = True):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin)
        self.pw = nn.Conv2d(cin, cout, 1)
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        x = self.pw(self.dw(x))
        return F.relu(x, inplace=True) if self.act else x


class ResidualBlock(nn.Module):
    def __init__(self, c: int, zero_init: bool = False):
        super().__init__()
        self.a = DepthwiseSeparable(c, c)
        self.b = DepthwiseSeparable(c, c, act=False)
        if zero_init:  # starts as the identity (added to a trained model without changing it)
            nn.init.zeros_(self.b.pw.weight)
            nn.init.zeros_(self.b.pw.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.b(self.a(x)).add_(x)


class UpBlock(nn.Module):
    """1x1 channel reduction at low resolution, bilinear x2, depthwise 3x3 at high resolution."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.pw = nn.Conv2d(cin, cout, 1)
        self.dw = nn.Conv2d(cout, cout, 3, 1, 1, groups=cout)

    def forward(self, x: Tensor, size: torch.Size, keep: tuple[slice, slice] | None = None) -> Tensor:
        x = F.interpolate(self.pw(x), size=size, mode="bilinear", align_corners=False)
        return self.dw(x if keep is None else x[..., keep[0], keep[1]])


class ContentEncoder(nn.Module):
    """stride-1 conv, two stride-2 depthwise-separable blocks, residual blocks.
    Returns the feature maps at full, 1/2 and 1/4 resolution (the DIN inputs)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c1, c2, c3 = cfg.widths
        self.unshuffle = cfg.unshuffle
        self.stem = nn.Conv2d(3 * cfg.unshuffle**2, c1, cfg.stem_kernel, 1, cfg.stem_kernel // 2)
        self.down1 = DepthwiseSeparable(c1, c2, stride=2)
        self.down2 = DepthwiseSeparable(c2, c3, stride=2)
        self.res = nn.Sequential(*[ResidualBlock(c3) for _ in range(cfg.n_res)])

    def forward(self, x: Tensor) -> list[Tensor]:
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)  # (N, 3u^2, H/u, W/u)
        f1 = F.relu(self.stem(x), inplace=True)  # (N, c1, H/u, W/u)
        f2 = self.down1(f1)  # (N, c2, H/2u, W/2u)
        f3 = self.res(self.down2(f2))  # (N, c3, H/4u, W/4u)
        return [f1, f2, f3]


# _PHASE[p, k, d]: the weight of low-resolution pixel j + d - 1 in the bilinear x2 up-sample
# (align_corners=False) at high-resolution pixel 2j + p + k - 1, i.e. where tap k of a 3x3 conv
# centred on output phase p reads; for the plain up-sample (k = 1) it is the pixel 2j + p itself.
_PHASE = torch.tensor([[[0.75, 0.25, 0.0], [0.25, 0.75, 0.0], [0.0, 0.75, 0.25]],
                       [[0.25, 0.75, 0.0], [0.0, 0.75, 0.25], [0.0, 0.25, 0.75]]])


class BilinearHead(nn.Module):
    """Output head without sub-pixel channels: RGB plus ``k`` feature channels are predicted at the
    decoder's resolution, up-sampled bilinearly to the input size, and a 3x3 conv at full
    resolution adds detail from the features. Bilinear x2 has a zero at the Nyquist frequency and
    the conv is shift-invariant, so the head cannot print the 2-pixel lines a pixel-shuffle head
    drifts into (its four sub-pixel channels are free to differ)."""

    def __init__(self, cin: int, k: int):
        super().__init__()
        self.k = k
        self.lo = nn.Conv2d(cin, 3 + k, 3, 1, 1)
        self.refine = nn.Conv2d(k, 3, 3, 1, 1)
        with torch.no_grad():  # start near mid-grey, not from a random colour cast
            self.lo.weight.mul_(0.1)
            self.lo.bias[:3].fill_(0.5)
        nn.init.zeros_(self.refine.weight)  # starts as the up-sampled RGB; detail is learned
        nn.init.zeros_(self.refine.bias)

    def forward(self, h: Tensor, size: tuple[int, int]) -> Tensor:
        y = self.lo(h)  # (N, 3+k, h, w)
        if tuple(size) == (2 * y.shape[-2], 2 * y.shape[-1]):
            return self._up2_refine(y)
        rgb, feat = y[:, :3], F.relu(y[:, 3:])
        if tuple(y.shape[-2:]) != tuple(size):  # up-sample the two parts apart: no full-size slice copies
            rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False)  # (N, 3, H, W)
            feat = F.interpolate(feat, size=size, mode="bilinear", align_corners=False)  # (N, k, H, W)
        return self.refine(feat).add_(rgb)  # (N, 3, H, W)

    def _up2_refine(self, y: Tensor) -> Tensor:
        """``forward`` for an output twice the size of ``y`` (N, 3+k, h, w), as one 3x3 convolution at
        low resolution and a pixel shuffle: bilinear x2 and the refine conv are linear and act per
        output phase, so their composition is a 3x3 kernel per phase on the low-resolution map (the
        RGB part is the up-sample alone). The same result with no full-resolution intermediate
        (up-sampling 8 channels to full size and convolving them was a sixth of the content path at
        1080p). The map is replicate-padded as bilinear clamps at the border; only the outermost pixel
        ring differs from the two-step form (there the refine conv saw zeros past the edge), and the
        engine and training always cut a margin beyond it."""
        k = self.k
        ph = _PHASE.to(device=y.device, dtype=self.refine.weight.dtype)
        wf = torch.einsum("oiyx,pya,qxb->opqiab", self.refine.weight, ph, ph)  # (3, 2, 2, k, 3, 3)
        eye = torch.eye(3, device=y.device, dtype=wf.dtype)
        wr = torch.einsum("oi,pa,qb->opqiab", eye, ph[:, 1], ph[:, 1])  # (3, 2, 2, 3, 3, 3)
        weight = torch.cat([wr, wf], 3).reshape(12, 3 + k, 3, 3)
        bias = self.refine.bias.repeat_interleave(4)
        if y.requires_grad:
            y = torch.cat([y[:, :3], F.relu(y[:, 3:])], 1)
        else:
            y[:, 3:].relu_()
        out = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), weight.to(y.dtype), bias.to(y.dtype))
        return F.pixel_shuffle(out, 2)  # (N, 3, 2h, 2w)


class Decoder(nn.Module):
    """Mirror of the encoder with bilinear up-sampling; the DIN outputs of the two finer levels
    are added into it at matching resolutions (hierarchical DIN). ``dec_blocks`` residual blocks
    after each up-step add capacity where strokes are drawn (1/4 and 1/2 of the input's size)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c1, c2, c3 = cfg.widths
        self.res = nn.Sequential(*[ResidualBlock(c3) for _ in range(cfg.n_res)])
        self.up2 = UpBlock(c3, c2)
        self.up1 = UpBlock(c2, c1)
        self.res2 = nn.Sequential(*[ResidualBlock(c2, zero_init=True) for _ in range(cfg.dec_blocks)])
        fine = cfg.dec_blocks if cfg.dec_fine_blocks is None else cfg.dec_fine_blocks
        self.res1 = nn.Sequential(*[ResidualBlock(c1, zero_init=True) for _ in range(fine)])
        self.unshuffle = cfg.unshuffle
        self.kind = cfg.head
        if cfg.head == "bilinear":
            self.head = BilinearHead(c1, cfg.head_channels)
        elif cfg.head == "shuffle":
            self.head = nn.Conv2d(c1, 3 * cfg.unshuffle**2, cfg.stem_kernel, 1, cfg.stem_kernel // 2)
            nn.init.constant_(self.head.bias, 0.5)
            if cfg.unshuffle > 1:  # ICNR: all sub-pixels start equal (only at initialisation)
                w = self.head.weight.data
                self.head.weight.data = w[: 3].repeat_interleave(cfg.unshuffle**2, dim=0).contiguous()
        else:
            raise ValueError(f"unknown decoder head {cfg.head!r} (bilinear or shuffle)")

    def margins(self) -> tuple[int, int, int]:
        """How far (in each level's own pixels, finest level first) a level's map must extend
        beyond a window of the output for the window to decode exactly: the reach of the 3x3
        convs, residual blocks and bilinear steps that follow it, plus the next level's margin."""
        m1 = 4 + 2 * len(self.res1)  # up1's 3x3, res1, head 3x3, bilinear x2, refine 3x3
        m2 = -(-m1 // 2) + 2 + 2 * len(self.res2)  # up2's 3x3, res2, bilinear x2
        m3 = -(-m2 // 2) + 2 * len(self.res) + 1  # res, bilinear x2
        return m1, m2, m3

    def forward(self, d: list[Tensor], window: tuple[int, int, int, int] | None = None) -> Tensor:
        """``d``: the DIN outputs, finest first. The list is emptied as the levels are used, so a
        huge image's feature maps are freed as soon as possible.

        ``window`` (top, left, height, width) in output pixels, multiples of 4u: decode only that
        part of the image (training on padded crops). Each level is cut to the window plus its
        ``margins()``, so the result equals the whole decode cut to the window at a fraction of
        the cost (the decoder is local; the DIN statistics were taken on the whole maps before)."""
        spans = None
        if window is not None:
            if self.kind != "bilinear":  # the sub-pixel head: decode everything, then cut
                t, l, hh, ww = window
                return self.forward(d)[..., t:t + hh, l:l + ww]
            spans = self._spans(d, window)

        def level(i: int) -> Tensor:  # the DIN output of level i (0 = finest), cut to its span
            f = d.pop()
            return f if spans is None else f[..., spans[i][0]:spans[i][1], spans[i][2]:spans[i][3]]

        def up(block: UpBlock, h: Tensor, fine: Tensor, i: int) -> Tensor:  # h x2 onto level i's map
            if spans is None:
                return block(h, fine.shape[-2:])
            f, c = spans[i], spans[i + 1]  # level i's span inside the x2 up-sampled span of level i+1
            keep = (slice(f[0] - 2 * c[0], f[1] - 2 * c[0]), slice(f[2] - 2 * c[2], f[3] - 2 * c[2]))
            return block(h, (2 * h.shape[-2], 2 * h.shape[-1]), keep)

        h = self.res(level(2))  # (N, c3, H/4u, W/4u)
        d2 = level(1)
        h = self.res2(F.relu_(up(self.up2, h, d2, 1).add_(d2)))  # (N, c2, H/2u, W/2u)
        del d2
        d1 = level(0)
        h = self.res1(F.relu_(up(self.up1, h, d1, 0).add_(d1)))  # (N, c1, H/u, W/u)
        del d1
        if self.kind == "bilinear":
            u = self.unshuffle
            out = self.head(h, (h.shape[-2] * u, h.shape[-1] * u))  # (N, 3, H, W)
            if spans is None:
                return out
            t, l, hh, ww = window
            y0, x0 = t - spans[0][0] * u, l - spans[0][2] * u
            return out[..., y0:y0 + hh, x0:x0 + ww]
        out = self.head(h)  # (N, 3u^2, H/u, W/u)
        if self.unshuffle > 1:
            out = F.pixel_shuffle(out, self.unshuffle)
        return out  # (N, 3, H, W), RGB in about [0, 1]

    def _spans(self, d: list[Tensor], window: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
        """Per level, finest first: (y0, y1, x0, x1) in that level's pixels, the part of its map
        that reaches ``window`` (the window plus ``margins()``, clipped to the map)."""
        t, l, hh, ww = window
        u = self.unshuffle
        H, W = d[0].shape[-2] * u, d[0].shape[-1] * u
        if any(v % (4 * u) for v in window) or any(f.shape[-2:] != (2 * g.shape[-2], 2 * g.shape[-1])
                                                   for f, g in zip(d, d[1:])):
            raise ValueError(f"decoder window {window} and the image size must be multiples of {4 * u} pixels")
        if t < 0 or l < 0 or hh <= 0 or ww <= 0 or t + hh > H or l + ww > W:
            raise ValueError(f"decoder window {window} is not inside the {W}x{H} image")
        spans = []
        for m, f, s in zip(self.margins(), d, (u, 2 * u, 4 * u)):
            fh, fw = f.shape[-2:]
            spans.append((max(t // s - m, 0), min((t + hh) // s + m, fh), max(l // s - m, 0), min((l + ww) // s + m, fw)))
        return spans


def convert_state(state: dict[str, Tensor], model: "DinStyleNet") -> tuple[dict[str, Tensor], list[str]]:
    """Map a state dict of another configuration onto ``model``: tensors whose name and shape match
    are kept; a pixel-shuffle head becomes the bilinear head's RGB part (the mean of its four
    sub-pixel filters, so the model starts as the old one's 2x2-averaged output); everything else
    keeps ``model``'s initialisation (new residual blocks start as identities). Returns the state
    to load and the names that were newly initialised."""
    own = model.state_dict()
    out = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    u = model.cfg.unshuffle
    if model.cfg.head == "bilinear" and "decoder.head.weight" in state and state["decoder.head.weight"].shape[0] == 3 * u * u:
        w, b = state["decoder.head.weight"], state["decoder.head.bias"]
        lo_w, lo_b = own["decoder.head.lo.weight"].clone(), own["decoder.head.lo.bias"].clone()
        if lo_w.shape[1:] == w.shape[1:]:
            lo_w[:3] = w.view(3, u * u, *w.shape[1:]).mean(1)
            lo_b[:3] = b.view(3, u * u).mean(1)
            out["decoder.head.lo.weight"], out["decoder.head.lo.bias"] = lo_w, lo_b
    new = sorted(k for k in own if k not in out)
    return {**own, **out}, new


class DinStyleNet(nn.Module):
    """The content path (encoder -> DIN x3 -> decoder) plus each DIN layer's weight/bias nets.

    The style encoder (VGG-19) is kept outside: it runs once per style, and its taps are handed
    to :meth:`style_params`, whose output (the DIN parameters) is what a style pack stores.
    """

    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or ModelConfig()
        self.encoder = ContentEncoder(cfg)
        self.dins = nn.ModuleList(
            DynamicInstanceNorm(c, VGG_TAP_CHANNELS[tap], cfg.param_hidden, cfg.kernel_size, cfg.adaptive_window, cfg.eps,
                                cfg.deform_kernel, cfg.texture_kernel)
            for c, tap in zip(cfg.widths, cfg.style_taps)
        )
        self.decoder = Decoder(cfg)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters of the content path (encoder, decoder, deformable offsets) and of the weight/bias nets."""
        nets = sum(p.numel() for n, p in self.named_parameters() if n.startswith("dins.") and "offset_net" not in n)
        return {"content_path": sum(p.numel() for p in self.parameters()) - nets, "weight_bias_nets": nets}

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (the engine pads and crops back)."""
        return 4 * self.cfg.unshuffle

    @property
    def reach(self) -> int:
        """How far (input pixels) an output pixel sees beyond itself through the convolutions, given
        the instance-norm statistics: the context a tile needs so that tiles agree with the whole
        image. The largest over the three DIN levels of the encoder's reach into that level plus the
        DIN kernel's and the decoder's margin at it (deformable offsets not included)."""
        cfg, u = self.cfg, self.cfg.unshuffle
        din = max(cfg.kernel_size, cfg.deform_kernel or 1, cfg.texture_kernel or 1) // 2
        enc = [u - 1 + u * (cfg.stem_kernel // 2)]  # unshuffle slack, stem
        enc.append(enc[0] + u)  # down1's 3x3 at level 1
        enc.append(enc[1] + 2 * u + 4 * u * 2 * cfg.n_res)  # down2's 3x3 at level 2, residual blocks at level 3
        return max(e + s * (din + m) for e, s, m in zip(enc, (u, 2 * u, 4 * u), self.decoder.margins()))

    # -- style path -------------------------------------------------------------------------
    def style_params(self, vgg_feats: dict[str, Tensor], mode: str | DinKind = "standard") -> DinParams:
        # The unnormalised VGG's taps differ ~20x in scale: bring each to about unit mean first.
        kind = kind_of(mode)

        dt = torch.float32  # the nets' dtype: float32, or bf16 under a CPU bf16 autocast (training)
        if torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16:
            dt = torch.bfloat16
        elif next(iter(vgg_feats.values())).dtype == torch.float64:  # a float64 model (the tests' reference)
            dt = torch.float64

        def scaled(tap: str) -> Tensor:  # in the nets' dtype (maps are cached in float16), scaled in place if copied
            f = vgg_feats[tap]
            x = f.to(dt)
            return x / VGG_TAP_SCALE[tap] if x is f else x.div_(VGG_TAP_SCALE[tap])

        return DinParams(kind, tuple(kind.predict(din, scaled(tap))
                                     for din, tap in zip(self.dins, self.cfg.style_taps)))

    def missing(self, mode: str | DinKind) -> str | None:
        """Why these weights cannot run ``mode`` (e.g. no deformable layers), or None."""
        return kind_of(mode).missing(self.dins[0])

    def probe_params(self, mode: str | DinKind = "standard", size: int = 4) -> DinParams:
        """Parameters predicted from all-zero style maps of ``size`` x ``size``: their names and shapes
        are those of every style of this kind (adaptive maps: but for their height and width)."""
        device = next(self.parameters()).device
        kind = kind_of(mode)
        return DinParams(kind, tuple(kind.predict(din, torch.zeros(1, din.style_channels, size, size, device=device))
                                     for din in self.dins))

    # -- content path -----------------------------------------------------------------------
    def forward(self, content: Tensor, params: DinParams, strength: float = 1.0,
                stats: list[Stats] | None = None,
                stats_hook: Callable[[list[Stats]], list[Stats]] | None = None,
                origin: tuple[int, int] = (0, 0), window: tuple[int, int, int, int] | None = None) -> Tensor:
        """content (N, 3, H, W) RGB [0, 1], H and W multiples of ``multiple`` -> stylized (N, 3, H, W).

        ``strength`` blends each DIN output with the plain content features (1 = full style,
        0 = none, > 1 extrapolates). ``stats`` overrides the instance-norm statistics per layer
        (whole-image statistics for tiles); ``stats_hook`` maps this batch's own statistics to the
        ones used (smoothed over time for video). ``origin`` is the input's top-left pixel in a
        larger image (tiles): the spatially-adaptive maps continue across tiles from it.
        ``window`` (top, left, height, width) returns only that part of the output, decoding
        little more than it (see ``Decoder.forward``): training crops padded by a margin.
        """
        feats = self.encoder(content)
        if stats is None and stats_hook is not None:
            stats = stats_hook([calc_mean_std(f, self.cfg.eps) for f in feats])
        d = self.apply_din(feats, params, strength, stats, origin)
        del feats  # the decoder frees each level's map once used
        return self.decoder(d, window)

    def apply_din(self, feats: list[Tensor], params: DinParams, strength: float = 1.0,
                  stats: list[Stats] | None = None, origin: tuple[int, int] = (0, 0)) -> list[Tensor]:
        out = []
        for i, (din, f, p) in enumerate(zip(self.dins, feats, params.layers)):
            s = self.cfg.unshuffle * 2**i  # this level's stride in input pixels
            d = din(f, p, params.kind, None if stats is None else stats[i], (origin[0] // s, origin[1] // s))
            out.append(d if strength == 1.0 else torch.lerp(f, d, strength))
        return out

    def forward_regions(self, content: Tensor, region_params: list[DinParams | None], weights: Tensor,
                        strength: float = 1.0, stats_hook: Callable[[list[Stats]], list[Stats]] | None = None,
                        window: tuple[int, int, int, int] | None = None) -> Tensor:
        """Several styles in one image, blended inside the network.

        ``weights`` (N, K, H, W) are soft region masks summing to 1 over K; region k uses
        ``region_params[k]`` (None keeps the content). At every DIN layer the K DIN outputs are
        mixed by the mask resized to that layer's resolution, so edges blend in feature space.
        ``window`` decodes only that part, as in ``forward``.
        """
        feats = self.encoder(content)
        stats = stats_hook([calc_mean_std(f, self.cfg.eps) for f in feats]) if stats_hook else None
        mixed = []
        for i, (din, f) in enumerate(zip(self.dins, feats)):
            m = F.interpolate(weights.to(f.dtype), size=f.shape[-2:], mode="bilinear", align_corners=False)
            acc = torch.zeros_like(f)
            for k, p in enumerate(region_params):
                d = f if p is None else din(f, p.layers[i], p.kind, None if stats is None else stats[i])
                if p is not None and strength != 1.0:
                    d = torch.lerp(f, d, strength)
                acc = torch.addcmul(acc, m[:, k:k + 1], d)
            mixed.append(acc)
        del feats
        return self.decoder(mixed, window)

    def content_stats(self, content: Tensor) -> list[Stats]:
        """Instance-norm statistics of every DIN input for ``content``."""
        return [calc_mean_std(f, self.cfg.eps) for f in self.encoder(content)]
