import pytest
import torch
import torch.nn.functional as F

from dinstyle.model.din import ParamNet, calc_mean_std, din_affine, din_conv, mirror_tile
from dinstyle.model.kinds import DynamicInstanceNorm


def test_mean_std_matches_var_mean():
    x = torch.randn(2, 5, 17, 23) * 3 + 1
    m, s = calc_mean_std(x, 1e-5)
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    assert torch.allclose(m, mean, atol=1e-5)
    assert torch.allclose(s, (var + 1e-5).sqrt(), atol=1e-4)


def test_din_with_unit_weight_zero_bias_is_instance_norm():
    x = torch.randn(3, 8, 19, 11)
    out = din_affine(x, torch.ones(3, 8), torch.zeros(3, 8))
    assert torch.allclose(out, F.instance_norm(x, eps=1e-5), atol=1e-4)


def test_din_with_style_stats_is_adain():
    x, s = torch.randn(2, 6, 16, 16), torch.randn(2, 6, 9, 13) * 2 + 3
    ms, ss = calc_mean_std(s)
    out = din_affine(x, ss.flatten(1), ms.flatten(1))
    mc, sc = calc_mean_std(x)
    adain = (x - mc) / sc * ss + ms
    assert torch.allclose(out, adain, atol=1e-4)
    mo, so = calc_mean_std(out)
    assert torch.allclose(mo, ms, atol=1e-3) and torch.allclose(so, ss, atol=1e-3)


def test_kxk_with_centre_kernel_equals_1x1():
    x = torch.randn(2, 4, 12, 10)
    w = torch.randn(2, 4)
    b = torch.randn(2, 4)
    k = torch.zeros(2, 4, 3, 3)
    k[:, :, 1, 1] = w
    assert torch.allclose(din_conv(x, k, b), din_affine(x, w, b), atol=1e-4)


@pytest.mark.parametrize("hw", [(1, 1), (7, 5), (33, 64), (128, 96)])
def test_param_net_accepts_any_style_size(hw):
    net = ParamNet(16, 8, 4, 1.0)
    out = net(torch.randn(2, 16, *hw), 1)
    assert out.shape == (2, 4, 1, 1)
    assert net(torch.randn(1, 16, *hw), 3).shape == (1, 4, 3, 3)


@pytest.mark.parametrize("k", [1, 3])
def test_din_layer_modes_shapes(k):
    layer = DynamicInstanceNorm(8, 16, 8, kernel_size=k, adaptive_window=3)
    style = torch.randn(2, 16, 9, 7)
    x = torch.randn(2, 8, 15, 21)
    for mode in ("standard", "adaptive"):
        p = layer.predict(style, mode)
        assert layer(x, p, mode).shape == x.shape
    with pytest.raises(ValueError):
        layer.predict(style, "nope")


def test_adaptive_mode_is_not_flat_on_constant_input():
    torch.manual_seed(0)
    layer = DynamicInstanceNorm(8, 16, 8, adaptive_window=3)
    torch.nn.init.normal_(layer.bias_net.conv2.weight, std=0.5)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 20), torch.linspace(0, 1, 20), indexing="ij")
    style = torch.stack([torch.sin(xx * 40), torch.cos(yy * 30)] * 8)[None]  # a textured style
    x = torch.full((1, 8, 24, 24), 0.7)  # a constant-colour region
    std_standard = layer(x, layer.predict(style, "standard"), "standard").std(dim=(2, 3))
    std_adaptive = layer(x, layer.predict(style, "adaptive"), "adaptive").std(dim=(2, 3))
    assert std_standard.max() < 1e-5  # standard DIN leaves a flat patch
    assert std_adaptive.mean() > 1e-2  # spatially-adaptive DIN does not


def test_deformable_with_zero_offsets_equals_kxk():
    from dinstyle.model.din import din_deformable

    torch.manual_seed(0)
    x = torch.randn(2, 4, 11, 13)
    k = torch.randn(2, 4, 3, 3)
    b = torch.randn(2, 4)
    zero = torch.zeros(2, 18, 11, 13)
    assert torch.allclose(din_deformable(x, k, b, zero), din_conv(x, k, b), atol=1e-5)


def test_deformable_offsets_move_the_samples():
    from dinstyle.model.din import din_deformable

    x = torch.randn(1, 2, 8, 8)
    k = torch.zeros(1, 2, 1, 1)
    k[..., 0, 0] = 1.0
    off = torch.zeros(1, 2, 8, 8)
    off[:, 1] = 1.0  # every sample one pixel to the right
    out = din_deformable(x, k, torch.zeros(1, 2), off)
    xn = F.instance_norm(x, eps=1e-5)
    assert torch.allclose(out[..., :-1], xn[..., 1:], atol=1e-5)
    assert torch.allclose(out[..., -1], torch.zeros_like(out[..., -1]), atol=1e-6)


def test_mirror_tiling_is_seamless_and_continues_across_tiles():
    m = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 1, 3, 5)
    row = mirror_tile(m, (3, 12))[0, 0, 0].tolist()
    assert row == [0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3]  # mirrored, never a jump
    m2 = torch.randn(2, 3, 7, 6)
    whole = mirror_tile(m2, (20, 30))
    left, right = mirror_tile(m2, (20, 13)), mirror_tile(m2, (20, 17), origin=(0, 13))
    assert torch.equal(torch.cat([left, right], 3), whole)
    assert torch.equal(mirror_tile(torch.ones(1, 2, 1, 1) * 3, (4, 5)), torch.full((1, 2, 4, 5), 3.0))


def test_adaptive_maps_average_to_the_standard_parameters():
    torch.manual_seed(1)
    layer = DynamicInstanceNorm(8, 16, 8)
    torch.nn.init.normal_(layer.weight_net.conv2.weight, std=0.3)
    style = torch.randn(2, 16, 24, 20)
    std, ada = layer.predict(style, "standard"), layer.predict(style, "adaptive")
    assert ada["weight"].shape == (2, 8, 20, 16)  # one kernel per style position (border trimmed)
    assert torch.allclose(ada["weight"].mean((2, 3)), std["weight"], atol=1e-5)
    assert torch.allclose(ada["bias"].mean((2, 3)), std["bias"], atol=1e-5)
    assert ada["weight"].std((2, 3)).min() > 1e-2  # and the detail is kept


def _reference_mean_std(x, eps=1e-5):
    xf = x.double()
    m = xf.mean((2, 3), keepdim=True)
    return m, ((xf.square().mean((2, 3), keepdim=True) - m.square()).clamp_min(0) + eps).sqrt()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("offset", [1.0, 50.0])  # 50: a mean far above the spread (cancellation)
def test_mean_std_gradient_matches_autograd_and_keeps_dtype_and_layout(dtype, channels_last, offset):
    g = torch.Generator().manual_seed(0)
    x0 = (torch.randn(3, 5, 7, 6, generator=g) * 2 + offset).to(dtype)
    if channels_last:
        x0 = x0.contiguous(memory_format=torch.channels_last)
    wm, ws = torch.randn(3, 5, 1, 1, generator=g), torch.randn(3, 5, 1, 1, generator=g)
    a, b = x0.clone().requires_grad_(True), x0.clone().requires_grad_(True)
    ma, sa = calc_mean_std(a)
    mb, sb = _reference_mean_std(b)
    ((ma * wm).sum() + (sa * ws).sum()).backward()
    ((mb * wm).sum() + (sb * ws).sum()).backward()
    # float32: E[x^2] - E[x]^2 itself cancels at a large offset; bf16: the gradient's own rounding
    tol = (1e-5 if offset == 1.0 else 1e-3) if dtype == torch.float32 else 1e-2
    assert ma.dtype == torch.float32 and torch.allclose(sa.double(), sb, rtol=1e-4 * offset, atol=1e-5)
    assert torch.allclose(a.grad.double(), b.grad.double(), rtol=0, atol=tol * b.grad.abs().max())
    assert a.grad.dtype == dtype
    assert a.grad.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_mean_std_and_relu_mean_pass_gradcheck():
    from dinstyle.model.din import relu_mean

    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: calc_mean_std(t), (x,))
    assert torch.autograd.gradcheck(lambda t: calc_mean_std(t)[0], (x,))  # only the mean used
    assert torch.autograd.gradcheck(relu_mean, (x,))


def test_weight_and_bias_nets_pooled_together_equal_each_alone():
    from dinstyle.model.din import pooled_pair

    torch.manual_seed(0)
    a, b = ParamNet(16, 8, 6, init_bias=1.0), ParamNet(16, 8, 6, init_bias=0.0)
    for net in (a, b):
        torch.nn.init.normal_(net.conv2.weight, std=0.3)
    feat = torch.rand(2, 16, 9, 7)
    wa, wb = pooled_pair(a, b, feat)
    assert torch.allclose(wa, a(feat, 1), atol=1e-6) and torch.allclose(wb, b(feat, 1), atol=1e-6)
    (wa.sum() + 2 * wb.sum()).backward()
    got = [p.grad.clone() for p in (*a.parameters(), *b.parameters())]
    for p in (*a.parameters(), *b.parameters()):
        p.grad = None
    (a(feat, 1).sum() + 2 * b(feat, 1).sum()).backward()
    assert all(torch.allclose(x, p.grad, atol=1e-6) for x, p in zip(got, (*a.parameters(), *b.parameters())))
