"""Count multiply-accumulates of the content path with torch's FlopCounterMode.

FlopCounterMode counts convolutions (2 FLOPs per MAC). The DIN kinds' elementwise work (the fused
affine, bilinear sampling) is added analytically: each kind says how many MACs per element of a DIN
input it takes (``DinKind.macs_per_element``).
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from dinstyle.model.net import DinStyleNet


@torch.no_grad()
def content_path_macs(model: DinStyleNet, height: int = 512, width: int = 512, mode: str = "standard") -> dict[str, int]:
    """MACs of encoder / DIN apply / decoder for one (height x width) image."""
    device = next(model.parameters()).device
    x = torch.zeros(1, 3, height, width, device=device)
    params = model.probe_params(mode, size=8)
    counts = {}
    with FlopCounterMode(display=False) as fc:
        feats = model.encoder(x)
    counts["encoder"] = fc.get_total_flops() // 2
    with FlopCounterMode(display=False) as fc:
        d = model.apply_din(feats, params)
    # the elementwise work FlopCounterMode does not see (the fused affine, grid_sample): the kind's figure
    per_element = params.kind.macs_per_element(model.dins[0])
    counts["din"] = fc.get_total_flops() // 2 + sum(f.numel() for f in feats) * per_element
    with FlopCounterMode(display=False) as fc:
        model.decoder(d)
    counts["decoder"] = fc.get_total_flops() // 2
    counts["total"] = counts["encoder"] + counts["din"] + counts["decoder"]
    return counts


@torch.no_grad()
def style_path_macs(model: DinStyleNet, vgg: torch.nn.Module, size: int = 512, mode: str = "standard") -> dict[str, int]:
    """MACs of the style encoder (VGG to relu4_1) and the weight/bias nets for one style image."""
    s = torch.zeros(1, 3, size, size)
    with FlopCounterMode(display=False) as fc:
        feats = vgg(s)
    enc = fc.get_total_flops() // 2
    with FlopCounterMode(display=False) as fc:
        model.style_params(feats, mode)
    nets = fc.get_total_flops() // 2
    return {"style_encoder": enc, "param_nets": nets, "total": enc + nets}
