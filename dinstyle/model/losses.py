"""Perceptual losses on the VGG-19 taps (relu1_1 .. relu4_1).

The shipped VGG is the original, unnormalised one: its layers' activations differ ~20x in scale,
so every term is divided by the layer's squared mean activation (config.VGG_TAP_SCALE). That puts
the style weight on about the same footing as AdaIN's / MicroAST's with the normalised VGG.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
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
    return stats_distance({t: calc_mean_std(out_feats[t]) for t in taps}, target, taps, layer_weights)


def stats_distance(a: dict[str, tuple[Tensor, Tensor]], b: dict[str, tuple[Tensor, Tensor]], taps=VGG_TAPS,
                   layer_weights: tuple[float, ...] | None = None) -> Tensor:
    """The balanced style distance between two sets of channel statistics {tap: (mean, std)}
    (the style loss without the feature maps) -> (N,)."""
    total = 0.0
    for i, t in enumerate(taps):
        mo, so = a[t]
        ms, ss = b[t]
        term = (mo - ms).square().mean((1, 2, 3)) + (so - ss).square().mean((1, 2, 3))
        w = 1.0 if layer_weights is None else layer_weights[i]
        total = total + term * (w / VGG_TAP_SCALE[t] ** 2)
    return total



def color_loss(out: Tensor, style: Tensor, directions: int = 16, generator: torch.Generator | None = None) -> Tensor:
    """Sliced Wasserstein distance (squared) between the RGB colours of ``out`` (N, 3, H, W) and
    of ``style`` (N, 3, h, w), per sample -> (N,).

    The VGG statistics match each channel's mean and spread, not which colours occur together:
    a blue-and-yellow painting can come out pink and orange with the same statistics. Here every
    pixel is a point in RGB space; both point sets are projected on ``directions`` random unit
    vectors, sorted, and their quantiles compared, which measures the whole colour distribution
    (which colours, in which shares) and is differentiable through the sort."""
    x = out.flatten(2).float()  # (N, 3, P)
    y = style.flatten(2).float()  # (N, 3, Q)
    d = torch.randn(directions, 3, generator=generator, device=x.device if generator is None else "cpu").to(x.device)
    d = d / d.norm(dim=1, keepdim=True)
    px = torch.einsum("kc,ncp->nkp", d, x).sort(-1).values  # (N, K, P)
    py = torch.einsum("kc,ncq->nkq", d, y).sort(-1).values  # (N, K, Q)
    if py.shape[-1] != px.shape[-1]:  # the style's quantiles at the output's P points
        py = F.interpolate(py, size=px.shape[-1], mode="linear", align_corners=True)
    return (px - py).square().mean((1, 2))


def palette_loss(out: Tensor, style: Tensor, points: int = 1024, generator: torch.Generator | None = None) -> Tensor:
    """Share-free palette distance between ``out`` (N, 3, H, W) and ``style`` (N, 3, h, w), per
    sample -> (N,): the mean squared RGB distance of each output pixel to the nearest style colour,
    plus that of each style colour to the nearest output pixel (a two-sided Chamfer distance on
    ``points`` pixels drawn from each image).

    ``color_loss`` asks for the painting's colours in the painting's shares: a painting that is
    one-third near-black asks for a third of a bright portrait to turn near-black. This term asks
    only that the output use the painting's colours and that each of them occur somewhere, not how
    much of each. (It did not remove the dark face patches of short CPU runs: see the model card.)"""
    x = out.flatten(2).float()  # (N, 3, P)
    y = style.flatten(2).float()  # (N, 3, Q)
    gen = generator or torch.Generator().manual_seed(0)
    ix = torch.randperm(x.shape[-1], generator=gen)[:points].to(x.device)
    iy = torch.randperm(y.shape[-1], generator=gen)[:points].to(y.device)
    d = torch.cdist(x[..., ix].transpose(1, 2), y[..., iy].transpose(1, 2)).square()  # (N, p, q)
    return d.min(2).values.mean(1) + d.min(1).values.mean(1)
