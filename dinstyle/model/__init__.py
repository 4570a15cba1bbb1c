"""nn.Modules of MobileNet-DIN, one small class per box of the paper's figure."""
from dinstyle.model.din import MODES, DynamicInstanceNorm, calc_mean_std, din_affine
from dinstyle.model.net import DinStyleNet
from dinstyle.model.vgg import VGGEncoder

__all__ = ["MODES", "DynamicInstanceNorm", "DinStyleNet", "VGGEncoder", "calc_mean_std", "din_affine"]
