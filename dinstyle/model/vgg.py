"""VGG-19 to relu4_1 with named taps: the style encoder and the training loss network."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from dinstyle.config import VGG_TAPS

_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512]
PARAMETERS = 3_505_728  # of conv1_1 .. conv4_1 (tested)
_TAP_INDEX = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20}
# Caffe preprocessing: RGB [0,1] -> BGR x255 minus the ImageNet mean (B, G, R).
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


class VGGEncoder(nn.Module):
    """Original (unnormalised, Caffe) ImageNet VGG-19, conv1_1 .. relu4_1.

    State-dict keys follow torchvision's ``vgg19().features[:21]`` ("features.0.weight", ...),
    so the shipped ``vgg19_to_relu4_1`` weights load as they are. Frozen.
    """

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in _CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean_bgr", torch.tensor(_CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGGEncoder":  # always frozen, always eval
        return super().train(False)

    def preprocess(self, rgb01: Tensor) -> Tensor:
        return rgb01[:, [2, 1, 0]] * 255.0 - self.mean_bgr.to(rgb01.dtype)

    def forward(self, rgb01: Tensor, taps: tuple[str, ...] = VGG_TAPS) -> dict[str, Tensor]:
        """(N, 3, H, W) RGB in [0, 1] -> {tap: feature map} for the requested taps."""
        want = {_TAP_INDEX[t]: t for t in taps}
        last = max(want)
        out: dict[str, Tensor] = {}
        x = self.preprocess(rgb01)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in want:
                out[want[i]] = x  # the next layer (conv/pool) makes a new tensor: safe with inplace ReLU
            if i == last:
                break
        return out
