"""Perceptual losses on the VGG-19 taps (relu1_1 .. relu4_1).

The shipped VGG is the original, unnormalised one: its layers' activations differ ~20x in scale,
so every term is divided by the layer's squared mean activation (config.VGG_TAP_SCALE). That puts
the style weight on about the same footing as AdaIN's / MicroAST's with the normalised VGG.
"""
from __future__ import annotations

from torch import Tensor

from dinstyle.config import VGG_TAP_SCALE, VGG_TAPS
from dinstyle.model.din import calc_mean_std


def content_loss(out_feats: dict[str, Tensor], content_feats: dict[str, Tensor], tap: str = "relu4_1") -> Tensor:
    """Perceptual loss: MSE of the relu4_1 features, per-sample mean -> (N,)."""
    d = (out_feats[tap].float() - content_feats[tap].float()).square().mean((1, 2, 3))
    return d / VGG_TAP_SCALE[tap] ** 2


def style_loss(out_feats: dict[str, Tensor], style_feats: dict[str, Tensor], taps=VGG_TAPS,
               layer_weights: tuple[float, ...] | None = None) -> Tensor:
    """BN-statistics loss: squared differences of channel means and stds, summed over taps -> (N,)."""
    return style_loss_stats(out_feats, {t: calc_mean_std(style_feats[t]) for t in taps}, taps, layer_weights)


def style_loss_stats(out_feats: dict[str, Tensor], target: dict[str, tuple[Tensor, Tensor]], taps=VGG_TAPS,
                     layer_weights: tuple[float, ...] | None = None) -> Tensor:
    """The style loss against precomputed target statistics {tap: (mean, std)} (each (N, C, 1, 1)).
    ``layer_weights`` scale the taps' terms (default: 1 each, after the per-layer balance)."""
    total = 0.0
    for i, t in enumerate(taps):
        mo, so = calc_mean_std(out_feats[t])
        ms, ss = target[t]
        term = (mo - ms).square().mean((1, 2, 3)) + (so - ss).square().mean((1, 2, 3))
        w = 1.0 if layer_weights is None else layer_weights[i]
        total = total + term * (w / VGG_TAP_SCALE[t] ** 2)
    return total

