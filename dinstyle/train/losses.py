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


def style_loss(out_feats: dict[str, Tensor], style_feats: dict[str, Tensor], taps=VGG_TAPS) -> Tensor:
    """BN-statistics loss: squared differences of channel means and stds, summed over taps -> (N,)."""
    total = 0.0
    for t in taps:
        mo, so = calc_mean_std(out_feats[t])
        ms, ss = calc_mean_std(style_feats[t])
        term = (mo - ms).square().mean((1, 2, 3)) + (so - ss).square().mean((1, 2, 3))
        total = total + term / VGG_TAP_SCALE[t] ** 2
    return total

