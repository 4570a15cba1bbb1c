"""nn.Modules of MobileNet-DIN, one small class per box of the paper's figure."""
from dinstyle.model.din import calc_mean_std, din_affine
from dinstyle.model.kinds import KINDS, MODES, DinKind, DinParams, DynamicInstanceNorm, kind_of
from dinstyle.model.net import DinStyleNet
from dinstyle.model.vgg import VGGEncoder

__all__ = ["KINDS", "MODES", "DinKind", "DinParams", "DynamicInstanceNorm", "DinStyleNet", "VGGEncoder",
           "calc_mean_std", "din_affine", "kind_of"]
