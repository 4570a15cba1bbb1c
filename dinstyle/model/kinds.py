"""DIN kinds, and the DIN layer that predicts and applies them.

A kind is how a DIN layer's weight and bias are predicted from the style and applied to the content:

    standard    one weight and bias per channel: the paper's DIN (a depthwise k x k kernel with
                ``kernel_size`` > 1 in the config; with ``texture_kernel`` k, a k x k filter per
                channel predicted from the style and added to the 1x1 weight)
    adaptive    one weight and bias per style position, the style's fine detail kept and its coarse
                layout dropped, mirror-tiled over the content at the style's own scale
    deformable  a k x k kernel from the style whose taps are shifted by offsets predicted from the
                content (``deform_kernel`` in the config)

Each kind is one class below and the only place that knows how it predicts, how it applies, the
tensors it has, its cost and how a style pack of it is checked. A style's parameters
(``DinParams``) carry their kind and ``DynamicInstanceNorm.forward`` hands them to it. A new kind is
a ``DinKind`` subclass added to ``KINDS`` (and its tests); nothing else changes.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dinstyle.model.din import ParamNet, Stats, TextureNet, din_affine, din_conv, din_deformable, pooled_pair, texture_map

Shape = tuple[int, ...]


class DinKind:
    """How one kind of DIN layer predicts, applies and is checked. Instances are stateless singletons."""

    name: ClassVar[str]
    tensors: ClassVar[tuple[str, ...]] = ("weight", "bias")  # per layer, as a style pack stores them

    def build(self, layer: "DynamicInstanceNorm") -> None:
        """Add the modules this kind needs to a new layer (called before the weight/bias nets are made)."""

    def missing(self, layer: "DynamicInstanceNorm") -> str | None:
        """Why a model with this layer cannot run this kind, or None."""
        return None

    hint: ClassVar[str] = ""  # how to get weights that can run this kind

    def predict(self, layer: "DynamicInstanceNorm", feat: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError

    def apply(self, layer: "DynamicInstanceNorm", x: Tensor, p: dict[str, Tensor], stats: Stats | None,
              origin: tuple[int, int]) -> Tensor:
        raise NotImplementedError

    def macs_per_element(self, layer: "DynamicInstanceNorm") -> int:
        """Multiply-adds per element of the DIN input that FlopCounterMode does not see."""
        return 1

    def layer_problem(self, shapes: dict[str, Shape]) -> str | None:
        """A style pack's layer {name: shape}, read from its header, that no model could use (None: fine)."""
        return None

    def same_shape(self, got: Shape, want: Shape) -> bool:
        """Whether a pack tensor of shape ``got`` fits the model's ``want``."""
        return tuple(got) == tuple(want)

    def fit(self, t: Tensor, like: Tensor) -> Tensor:
        """``t`` made blendable with ``like`` (another style's tensor of the same name)."""
        return t

    def __repr__(self) -> str:
        return f"<DIN kind {self.name}>"


class Standard(DinKind):
    name = "standard"

    def predict(self, layer, feat):
        k = layer.kernel_size
        if k == 1:
            weight, bias = pooled_pair(layer.weight_net, layer.bias_net, feat)
            weight, bias = weight.flatten(1), bias.flatten(1)  # (N, C) each
            if layer.texture_net is None:
                return {"weight": weight, "bias": bias}
            # the style's k x k filter with the 1x1 weight added at its centre: one depthwise kernel
            c = layer.texture_net.k // 2
            kernel = layer.texture_net(feat).to(weight.dtype) + F.pad(weight[:, :, None, None], (c, c, c, c))
            return {"weight": kernel, "bias": bias}  # (N, C, k, k), (N, C)
        weight = layer.weight_net(feat, k)  # (N, C, k, k)
        bias = layer.bias_net(feat, 1).flatten(1)  # (N, C)
        return {"weight": weight, "bias": bias}

    def apply(self, layer, x, p, stats, origin):
        if p["weight"].dim() == 4:  # a depthwise k x k kernel (N, C, k, k)
            return din_conv(x, p["weight"], p["bias"], layer.eps, stats)
        return din_affine(x, p["weight"], p["bias"], layer.eps, stats, origin)


class Adaptive(DinKind):
    name = "adaptive"
    MAX_MAP_SIDE = 4096  # maps follow the style's size (62 x 62 at the default --style-size 256)

    def predict(self, layer, feat):
        win = layer.adaptive_window
        return {"weight": texture_map(layer.weight_net(feat, None), win, layer.weight_net(feat, 1)),
                "bias": texture_map(layer.bias_net(feat, None), win, layer.bias_net(feat, 1))}

    def apply(self, layer, x, p, stats, origin):
        return din_affine(x, p["weight"], p["bias"], layer.eps, stats, origin)

    def macs_per_element(self, layer):
        return 2  # subtract the mean, then a multiply-add with the tiled maps (tiling is a gather)

    def layer_problem(self, shapes):
        w, b = shapes.get("weight", ()), shapes.get("bias", ())
        if len(w) != 4 or w != b or max(w[2:]) > self.MAX_MAP_SIDE:
            return (f"adaptive maps have shapes {w} and {b} (expected two equal (1, C, h, w) maps, h and w from 1 to "
                    f"{self.MAX_MAP_SIDE})")
        return None

    def same_shape(self, got, want):  # the maps' size follows the style image's size
        return tuple(got[:2]) + (len(got),) == tuple(want[:2]) + (len(want),)

    def fit(self, t, like):  # maps of styles with other aspect ratios are resized to the first one's
        if t.shape[-2:] != like.shape[-2:]:
            return F.interpolate(t, size=like.shape[-2:], mode="bilinear", align_corners=False)
        return t


class Deformable(DinKind):
    name = "deformable"
    tensors = ("weight", "bias", "offset_scale")
    hint = "train a model with --deform-kernel 3"

    def build(self, layer):
        if layer.deform_kernel:
            # offsets come from the content features; zero-initialised, so training starts at k x k DIN
            layer.offset_net = nn.Conv2d(layer.channels, 2 * layer.deform_kernel**2, 3, padding=1)
            nn.init.zeros_(layer.offset_net.weight)
            nn.init.zeros_(layer.offset_net.bias)

    def missing(self, layer):
        return None if layer.deform_kernel else "these weights have no deformable DIN layers"

    def predict(self, layer, feat):
        k = layer.deform_kernel
        if not k:
            raise ValueError("this model has no deformable DIN layers (train one with deform_kernel > 0)")
        # the k x k pooled grid of the weight net, shared out over the taps
        weight = layer.weight_net(feat, k) * (layer.kernel_size**2 / k**2)
        return {"weight": weight, "bias": layer.bias_net(feat, 1).flatten(1),
                "offset_scale": torch.ones(feat.shape[0], 1, device=feat.device)}

    def apply(self, layer, x, p, stats, origin):
        offsets = layer.offset_net(x) * p["offset_scale"][:, :, None, None].to(x.dtype)
        return din_deformable(x, p["weight"], p["bias"], offsets, layer.eps, stats)

    def macs_per_element(self, layer):
        return 5 * layer.deform_kernel**2  # per tap a multiply-add plus 4 for the bilinear sample


KINDS: dict[str, DinKind] = {k.name: k for k in (Standard(), Adaptive(), Deformable())}
MODES = tuple(KINDS)  # the run-time modes (--mode); "auto" (per image) is the style path's, not a kind


def kind_of(name: str | DinKind) -> DinKind:
    if isinstance(name, DinKind):
        return name
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown DIN mode {name!r}; choose from {', '.join(MODES)}") from None


@dataclass(frozen=True, eq=False)
class DinParams:
    """One style's DIN parameters: per layer {name: tensor} with a batch dimension, finest layer
    first, and the kind that predicted them (which decides how they are applied)."""

    kind: DinKind
    layers: tuple[dict[str, Tensor], ...]

    def __post_init__(self):
        object.__setattr__(self, "kind", kind_of(self.kind))
        object.__setattr__(self, "layers", tuple(self.layers))

    @property
    def mode(self) -> str:
        return self.kind.name

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return self.layers[i]

    def map(self, fn: Callable[[Tensor], Tensor]) -> "DinParams":
        """The same parameters with ``fn`` applied to every tensor (device moves, batch expansion)."""
        return DinParams(self.kind, tuple({k: fn(v) for k, v in p.items()} for p in self.layers))

    def expand(self, n: int) -> "DinParams":
        return self.map(lambda v: v.expand(n, *v.shape[1:]))

    def to(self, device) -> "DinParams":
        return self.map(lambda v: v.to(device))


class DynamicInstanceNorm(nn.Module):
    """One DIN layer: the weight and bias nets (and the modules its kinds add) for one resolution;
    predicts parameters from a style feature map and applies them through their kind."""

    def __init__(self, channels: int, style_channels: int, hidden: int, kernel_size: int = 1,
                 adaptive_window: int = 9, eps: float = 1e-5, deform_kernel: int = 0, texture_kernel: int = 0):
        super().__init__()
        self.channels = channels
        self.kernel_size = kernel_size
        self.adaptive_window = adaptive_window
        self.deform_kernel = deform_kernel
        self.eps = eps
        for kind in KINDS.values():  # before the nets: the order of parameters and of their random init
            kind.build(self)
        self.weight_net = ParamNet(style_channels, hidden, channels, init_bias=1.0 / kernel_size**2)
        self.bias_net = ParamNet(style_channels, hidden, channels, init_bias=0.0)
        # the standard mode's k x k texture filter (ModelConfig.texture_kernel), after the nets
        # so that weights without it draw the same random init
        self.texture_net = TextureNet(style_channels, hidden, channels, texture_kernel) if texture_kernel else None

    @property
    def style_channels(self) -> int:
        return self.weight_net.conv1.in_channels

    def predict(self, style_feat: Tensor, mode: str | DinKind = "standard") -> dict[str, Tensor]:
        """Style feature map (N, Cs, h, w) -> this layer's parameters for ``mode``."""
        return kind_of(mode).predict(self, style_feat)

    def forward(self, x: Tensor, params: dict[str, Tensor], kind: str | DinKind, stats: Stats | None = None,
                origin: tuple[int, int] = (0, 0)) -> Tensor:
        """Apply parameters of ``kind`` to x (N, C, H, W); ``stats`` overrides the instance-norm
        statistics, ``origin`` is x's top-left position in a larger image (tiles)."""
        return kind_of(kind).apply(self, x, params, stats, origin)
