"""Count multiply-accumulates of the content path with torch's FlopCounterMode.

FlopCounterMode counts convolutions (2 FLOPs per MAC). The fused DIN affine is an elementwise
multiply-add per element and is added analytically (1 MAC per element of each DIN input).
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
    params = [din.predict(torch.zeros(1, din.weight_net.conv1.in_channels, 8, 8, device=device), mode)
              for din in model.dins]
    counts = {}
    with FlopCounterMode(display=False) as fc:
        feats = model.encoder(x)
    counts["encoder"] = fc.get_total_flops() // 2
    with FlopCounterMode(display=False) as fc:
        d = model.apply_din(feats, params)
    # the fused affine: one multiply-add per element; adaptive: subtract the mean, then a
    # multiply-add with the mirror-tiled maps (tiling is a gather, no arithmetic); deformable: per
    # kernel tap one multiply-add plus 4 for the bilinear sample (grid_sample is not counted by
    # FlopCounterMode)
    if "offset_scale" in params[0]:
        per_element = 5 * model.cfg.deform_kernel**2
    elif params[0]["bias"].dim() == 4:
        per_element = 2
    else:
        per_element = 1
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
