"""Dynamic Instance Normalization: instance norm, then a convolution whose weight and bias
are predicted from the style.

    DIN(x; s) = conv(IN(x), weight=W(E_s(s)), bias=B(E_s(s)))

The maths lives here as small pure functions (tested directly); the DIN layer and its kinds
(standard, adaptive, deformable), which decide which of them runs, are in ``kinds.py``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Stats = tuple[Tensor, Tensor]  # (mean, std), each (N, C, 1, 1) float32


def _moments(x: Tensor) -> tuple[Tensor, Tensor]:
    acc = torch.promote_types(x.dtype, torch.float32)
    mean = x.mean((2, 3), keepdim=True, dtype=acc)
    sq = torch.linalg.vector_norm(x, dim=(2, 3), keepdim=True, dtype=acc).square() / (x.shape[2] * x.shape[3])
    return mean, sq


class _Moments(torch.autograd.Function):
    """E[x] and E[x^2] over space, in float32 (float64 for float64), for x of any float dtype and layout.

    Forward reads x twice (``mean``, ``vector_norm``) and makes no temporary; backward writes
    dx = (dE[x] + 2 x dE[x^2]) / HW in one pass, in x's dtype and layout. Autograd's own graph
    for ``x.float().square().mean()`` costs a copy, a square, a divide, a multiply and an add
    over the whole map, and a mixed-layout gradient where x is channels-last (the VGG in bf16):
    in training these passes over the loss network's and the DIN layers' maps were a fifth of
    a step on the CPU."""

    @staticmethod
    def forward(ctx, x: Tensor) -> tuple[Tensor, Tensor]:
        ctx.save_for_backward(x)
        return _moments(x)

    @staticmethod
    def backward(ctx, g_mean: Tensor, g_sq: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        hw = x.shape[2] * x.shape[3]
        # autograd passes zeros for an unused output; the coefficients stay in float32 (the two
        # terms cancel where a channel's mean is large against its spread), the result is x's dtype
        return torch.addcmul(g_mean / hw, x, g_sq * (2.0 / hw), out=torch.empty_like(x))


def calc_mean_std(x: Tensor, eps: float = 1e-5) -> Stats:
    """Channel mean and std over space, in float32 (float64 for float64): (N, C, H, W) -> 2 x (N, C, 1, 1).

    Uses E[x^2] - E[x]^2, the second moment from ``vector_norm``, which reads the tensor once
    without a temporary (``var_mean`` is ~15x slower on CPU for large maps); with gradients,
    through ``_Moments`` (a one-pass backward).
    """
    mean, sq = _Moments.apply(x) if x.requires_grad else _moments(x)
    var = (sq - mean.square()).clamp_min(0.0)
    return mean, (var + eps).sqrt()


class _ReluMean(torch.autograd.Function):
    """relu(y) averaged over space -> (N, C, 1, 1); backward writes dy = [y > 0] dm / HW in one
    pass in y's layout (autograd's divide, expand and mixed-layout ReLU backward took ~0.3 s
    per training step on the weight/bias nets' largest map)."""

    @staticmethod
    def forward(ctx, y: Tensor) -> Tensor:
        ctx.dtype = y.dtype
        ctx.save_for_backward(y > 0)
        return _relu_mean(y)

    @staticmethod
    def backward(ctx, g: Tensor) -> Tensor:
        (mask,) = ctx.saved_tensors
        return mask * (g / (mask.shape[2] * mask.shape[3])).to(ctx.dtype)


def _relu_mean(y: Tensor) -> Tensor:
    return F.relu(y).mean((2, 3), keepdim=True, dtype=torch.promote_types(y.dtype, torch.float32))


def relu_mean(y: Tensor) -> Tensor:
    """relu(y) averaged over space -> (N, C, 1, 1), summed in float32 (or float64) whatever y's dtype."""
    return _ReluMean.apply(y) if y.requires_grad else _relu_mean(y)


def instance_norm(x: Tensor, eps: float = 1e-5, stats: Stats | None = None) -> Tensor:
    mean, std = stats if stats is not None else calc_mean_std(x, eps)
    return ((x.float() - mean) / std).to(x.dtype)


def mirror_tile(m: Tensor, size: tuple[int, int], origin: tuple[int, int] = (0, 0)) -> Tensor:
    """Cover a (N, C, H, W) canvas with the map m (N, C, h, w) by mirror tiling (seamless, no
    stretching, so texture keeps the scale it has in the style). ``origin`` is the canvas's
    top-left position in the tiling, so tiles of a large image continue one pattern."""

    def index(n: int, length: int, start: int) -> Tensor:
        i = torch.arange(start, start + length, device=m.device)
        if n == 1:
            return torch.zeros_like(i)
        period = 2 * (n - 1)
        i = i.remainder(period)
        return torch.where(i >= n, period - i, i)

    iy = index(m.shape[2], size[0], origin[0])
    ix = index(m.shape[3], size[1], origin[1])
    return m.index_select(2, iy).index_select(3, ix)


def din_affine(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5, stats: Stats | None = None,
               origin: tuple[int, int] = (0, 0)) -> Tensor:
    """Depthwise 1x1 DIN, fused: IN(x) * w + b computed as x * a + c in one pass.

    weight, bias: (N, C) for the standard mode, or (N, C, h, w) maps for the
    spatially-adaptive mode (the kernel varies per position; the maps are mirror-tiled over x,
    starting at ``origin``). With weight = 1, bias = 0 this is IN; with the style's std/mean it is AdaIN.
    """
    mean, std = stats if stats is not None else calc_mean_std(x, eps)
    if weight.dim() == 2:
        a = weight.float()[:, :, None, None] / std  # (N, C, 1, 1)
        c = bias.float()[:, :, None, None] - mean * a
        return torch.addcmul(c.to(x.dtype), x, a.to(x.dtype))
    size = tuple(x.shape[-2:])
    w = mirror_tile((weight.float() / std).to(x.dtype), size, origin)
    b = mirror_tile(bias.to(x.dtype), size, origin)
    return torch.addcmul(b, x - mean.to(x.dtype), w)


def din_conv(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5, stats: Stats | None = None) -> Tensor:
    """Depthwise k x k DIN: IN(x) convolved with a per-sample kernel (N, C, k, k), plus bias (N, C).

    The batch is folded into the channel axis so one grouped conv applies every sample's kernel.
    An ONNX graph cannot carry that (its group count would be the export's batch), so there the
    k x k taps are summed as shifted copies instead: the same result for any batch.
    """
    n, c, h, w = x.shape
    k = weight.shape[-1]
    xn = instance_norm(x, eps, stats)
    kernel, b = weight.to(x.dtype), bias.to(x.dtype)
    if torch.onnx.is_in_onnx_export():
        r = k // 2
        xp = F.pad(xn, (r, r, r, r))
        out = b[:, :, None, None].expand(n, c, h, w)
        for i in range(k):
            for j in range(k):
                out = out + xp[:, :, i:i + h, j:j + w] * kernel[:, :, i:i + 1, j:j + 1]
        return out
    out = F.conv2d(xn.reshape(1, n * c, h, w), kernel.reshape(n * c, 1, k, k), b.reshape(n * c), padding=k // 2,
                   groups=n * c)
    return out.reshape(n, c, h, w)


def din_deformable(x: Tensor, weight: Tensor, bias: Tensor, offsets: Tensor, eps: float = 1e-5,
                   stats: Stats | None = None) -> Tensor:
    """Deformable depthwise k x k DIN: each kernel tap samples IN(x) at its grid position plus a
    learned offset (from the content), weighted by the style's kernel; bilinear sampling with
    ``grid_sample`` (pure torch). With zero offsets this is exactly ``din_conv``.

    weight (N, C, k, k), bias (N, C), offsets (N, 2*k*k, H, W) as (dy, dx) pairs per tap.
    """
    n, c, h, w = x.shape
    k = weight.shape[-1]
    xn = instance_norm(x, eps, stats)
    ys = torch.arange(h, device=x.device, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, device=x.device, dtype=torch.float32).view(1, 1, w)
    off = offsets.float().view(n, k * k, 2, h, w)
    out = bias.to(x.dtype)[:, :, None, None].expand(n, c, h, w)
    r = k // 2
    for j in range(k * k):
        dy, dx = j // k - r, j % k - r
        py = ys + dy + off[:, j, 0]  # (N, H, W) sample positions in pixels
        px = xs + dx + off[:, j, 1]
        grid = torch.stack([px / max(w - 1, 1) * 2 - 1, py / max(h - 1, 1) * 2 - 1], dim=-1)
        sampled = F.grid_sample(xn, grid.to(xn.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)
        out = torch.addcmul(out, sampled, weight[:, :, j // k, j % k, None, None].to(x.dtype))
    return out


class ParamNet(nn.Module):
    """Weight or bias net: two convs on a style feature map, then adaptive average pooling.

    Pooling to 1x1 gives one value per channel (standard DIN); k x k gives a depthwise k x k
    kernel; ``size`` None keeps the whole map (one kernel per style position: the
    spatially-adaptive mode). Any style size works because the pooling fixes the output size.
    """

    def __init__(self, in_ch: int, hidden: int, out_ch: int, init_bias: float):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, out_ch, 3, padding=1)
        nn.init.normal_(self.conv2.weight, std=1e-3)
        nn.init.constant_(self.conv2.bias, init_bias)

    def forward(self, feat: Tensor, size: int | None) -> Tensor:
        if size == 1:
            # conv2 is linear, so pooling its output over the map equals conv2's summed kernel
            # applied to the pooled hidden map (up to the zero padding at the map's border): the
            # 3x3 conv then runs once instead of at every position (~3x cheaper; it matters in training)
            return self.from_pooled(relu_mean(self.conv1(feat)))
        h = self.conv2(F.relu(self.conv1(feat)))  # (N, out, h, w)
        return h if size is None else F.adaptive_avg_pool2d(h, size)  # (N, out, size, size)

    def from_pooled(self, h: Tensor) -> Tensor:
        """conv2 on the pooled hidden map (N, hidden, 1, 1) -> (N, out, 1, 1)."""
        return F.conv2d(h, self.conv2.weight.sum((2, 3), keepdim=True), self.conv2.bias)


class TextureNet(nn.Module):
    """A depthwise k x k filter per channel from a style feature map: a 1x1 conv, the mean of its
    ReLU over the map, then one linear step to C * k * k taps. The last step starts at zero, so a
    layer that gains this net behaves as before until training moves it."""

    def __init__(self, in_ch: int, hidden: int, channels: int, k: int):
        super().__init__()
        self.k = k
        self.conv1 = nn.Conv2d(in_ch, hidden, 1)
        self.taps = nn.Conv2d(hidden, channels * k * k, 1)
        nn.init.zeros_(self.taps.weight)
        nn.init.zeros_(self.taps.bias)

    def forward(self, feat: Tensor) -> Tensor:
        """(N, Cs, h, w) -> (N, C, k, k)."""
        h = relu_mean(self.conv1(feat))  # (N, hidden, 1, 1)
        return self.taps(h).view(feat.shape[0], -1, self.k, self.k)


def pooled_pair(a: ParamNet, b: ParamNet, feat: Tensor) -> tuple[Tensor, Tensor]:
    """``a(feat, 1), b(feat, 1)`` for two nets on the same style map, with both first convs run
    as one: the map (the largest tensor of the step at relu2_1) is read once, not twice."""
    w = torch.cat([a.conv1.weight, b.conv1.weight])
    bias = torch.cat([a.conv1.bias, b.conv1.bias])
    h = relu_mean(F.conv2d(feat, w, bias))  # (N, 2 hidden, 1, 1)
    ha, hb = h.split([a.conv1.out_channels, b.conv1.out_channels], 1)
    return a.from_pooled(ha), b.from_pooled(hb)


def texture_map(h: Tensor, window: int, mean: Tensor | None = None) -> Tensor:
    """Spatially-adaptive parameters from a per-position map h (N, C, h, w): ``mean`` (N, C, 1, 1),
    the standard mode's parameter (default: the map's mean), plus the map's detail finer than
    ``window`` positions.
    The coarse layout of the painting is dropped, so tiling the map repeats brush texture, not
    the painting's composition; the map's border (zero-padding effects) is trimmed."""
    mean = h.mean((2, 3), keepdim=True) if mean is None else mean
    trim = 2  # the style encoder's zero padding marks the map's border; tiling would repeat it as lines
    if min(h.shape[-2:]) > 4 * trim:
        h = h[:, :, trim:-trim, trim:-trim]
    r = window // 2
    local = F.avg_pool2d(F.pad(h, (r, r, r, r), mode="replicate"), window, stride=1)
    detail = h - local
    return mean + detail - detail.mean((2, 3), keepdim=True)
