import pytest
import torch

from dinstyle.checkpoint import load_model, save_weights
from dinstyle.config import ModelConfig
from dinstyle.errors import CheckpointError
from dinstyle.model import DinParams, DinStyleNet
from dinstyle.model.macs import content_path_macs

TINY = ModelConfig(widths=(8, 8, 16), param_hidden=8)


def _params(model, n=1, mode="standard", seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = {t: torch.rand(n, c, 8, 8, generator=g) * 50 for t, c in
             {"relu2_1": 128, "relu3_1": 256, "relu4_1": 512}.items()}
    return model.style_params(feats, mode)


@pytest.mark.parametrize("cfg", [TINY, ModelConfig(widths=(8, 8, 16), param_hidden=8, unshuffle=1, kernel_size=3)])
@pytest.mark.parametrize("mode", ["standard", "adaptive"])
def test_forward_backward_no_nan(cfg, mode):
    torch.manual_seed(0)
    m = DinStyleNet(cfg)
    x = torch.rand(2, 3, 32, 48)
    y = m(x, _params(m, 2, mode))
    assert y.shape == x.shape
    y.mean().backward()
    grads = [p.grad for p in m.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_strength_zero_and_stats_override():
    torch.manual_seed(0)
    m = DinStyleNet(TINY).eval()
    x = torch.rand(1, 3, 32, 32)
    p = _params(m)
    with torch.no_grad():
        feats = m.encoder(x)
        plain = m.decoder(feats)
        assert torch.allclose(m(x, p, strength=0.0), plain, atol=1e-5)
        own = m.content_stats(x)
        assert torch.allclose(m(x, p, stats=own), m(x, p), atol=1e-5)


def test_content_path_macs_within_budget():
    macs = content_path_macs(DinStyleNet(), 512, 512)
    assert macs["total"] <= 7.4e9
    assert macs["encoder"] > 0 and macs["decoder"] > 0 and macs["din"] > 0


def test_weights_round_trip(tmp_path):
    torch.manual_seed(1)
    m = DinStyleNet(TINY).eval()
    save_weights(m, tmp_path, trained={"steps": 1})
    m2, info = load_model(tmp_path)
    x = torch.rand(1, 3, 16, 16)
    p = _params(m)
    with torch.no_grad():
        assert torch.equal(m(x, p), m2(x, p))
    assert info["trained"] == {"steps": 1} and len(info["model_id"]) == 16


def test_weights_with_wrong_shapes_are_refused(tmp_path):
    save_weights(DinStyleNet(TINY), tmp_path)
    cfg = (tmp_path / "config.json").read_text().replace('"param_hidden": 8', '"param_hidden": 16')
    (tmp_path / "config.json").write_text(cfg)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(tmp_path)


def test_corrupt_weights_are_refused(tmp_path):
    save_weights(DinStyleNet(TINY), tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable"):
        load_model(tmp_path)
    with pytest.raises(CheckpointError, match="missing"):
        load_model(tmp_path / "nowhere")


def test_deformable_mode_trains_and_starts_as_kxk():
    torch.manual_seed(0)
    cfg = ModelConfig(widths=(8, 8, 16), param_hidden=8, deform_kernel=3)
    m = DinStyleNet(cfg)
    x = torch.rand(1, 3, 32, 32)
    p = _params(m, 1, "deformable")
    assert set(p[0]) == {"weight", "bias", "offset_scale"}
    y = m(x, p)
    y.mean().backward()
    assert all(torch.isfinite(d.offset_net.weight.grad).all() for d in m.dins)
    with torch.no_grad():  # offsets start at zero: the same as the plain k x k kernel
        plain = DinParams("standard", [{"weight": q["weight"], "bias": q["bias"]} for q in p])  # a 3x3 kernel
        assert torch.allclose(m(x, p), m(x, plain), atol=1e-5)


def test_deformable_mode_needs_deformable_weights(tiny_weights):
    from dinstyle.engine import Stylizer
    from dinstyle.errors import OptionError

    with pytest.raises(OptionError, match="no deformable"):
        Stylizer(weights=tiny_weights, device="cpu").check_mode("deformable")


def _randomised(cfg):
    import torch

    from dinstyle.model import DinStyleNet

    torch.manual_seed(1)
    model = DinStyleNet(cfg).eval()
    with torch.no_grad():  # a decoder whose sub-pixel / refinement weights have drifted apart, as in training
        for name, p in model.decoder.named_parameters():
            if name.startswith("head"):
                p.normal_(0, 0.2)
    return model


def test_bilinear_head_prints_no_two_pixel_pattern_where_a_shuffle_head_does():
    import dataclasses

    import numpy as np
    import torch

    from dinstyle.config import ModelConfig
    from dinstyle.metrics import stripe_energy

    cfg = ModelConfig(widths=(8, 8, 16), param_hidden=8)
    yy, xx = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
    x = torch.stack([0.5 + 0.2 * torch.sin(xx / 11), 0.4 + 0.2 * torch.cos(yy / 13), 0.5 + 0.1 * torch.sin((xx + yy) / 17)])[None]
    figures = {}
    for head in ("bilinear", "shuffle"):
        model = _randomised(dataclasses.replace(cfg, head=head))
        params = DinParams("standard", [{"weight": torch.ones(1, c), "bias": torch.zeros(1, c)} for c in cfg.widths])
        with torch.no_grad():
            out = model(x, params)
        # compare the pattern's energy with the output's own level of detail (scale-free)
        img = (out[0].permute(1, 2, 0).numpy() - out.min().item()) / max(np.ptp(out.numpy()), 1e-6)
        figures[head] = stripe_energy((img * 255).round().astype(np.uint8))
    content = stripe_energy((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    assert figures["bilinear"] <= 1.1 * max(content, 1.0)
    assert figures["shuffle"] > 3 * figures["bilinear"]


def test_a_shuffle_head_converts_to_a_bilinear_head_that_starts_from_its_output():
    import dataclasses

    import torch
    import torch.nn.functional as F

    from dinstyle.config import ModelConfig
    from dinstyle.model import DinStyleNet
    from dinstyle.model.net import convert_state

    old = _randomised(ModelConfig(widths=(8, 8, 16), param_hidden=8, head="shuffle"))
    new = DinStyleNet(dataclasses.replace(old.cfg, head="bilinear", dec_blocks=1)).eval()
    state, fresh = convert_state(old.state_dict(), new)
    new.load_state_dict(state)
    assert all(k.startswith(("decoder.head.refine", "decoder.res1", "decoder.res2")) for k in fresh)
    x = torch.rand(1, 3, 32, 32)
    params = DinParams("standard", [{"weight": torch.ones(1, c), "bias": torch.zeros(1, c)} for c in old.cfg.widths])
    with torch.no_grad():
        a, b = old(x, params), new(x, params)
    # the new model starts as the old output averaged over 2x2 blocks, up-sampled bilinearly
    expect = F.interpolate(F.avg_pool2d(a, 2), scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(b, expect, atol=1e-5)


def test_decoder_blocks_at_quarter_resolution_grow_a_trained_model_without_changing_its_output():
    """--init into a model with --dec-blocks 1 --dec-fine-blocks 0: new blocks at 1/4 resolution
    only, zero-initialised residuals, so training starts from the old model's exact output."""
    import dataclasses

    from dinstyle.model.net import convert_state

    old = _randomised(ModelConfig(widths=(8, 8, 16), param_hidden=8))
    new = DinStyleNet(dataclasses.replace(old.cfg, dec_blocks=1, dec_fine_blocks=0)).eval()
    state, fresh = convert_state(old.state_dict(), new)
    new.load_state_dict(state)
    assert fresh and all(k.startswith("decoder.res2.") for k in fresh)
    x = torch.rand(1, 3, 32, 32)
    p = _params(old, 1, "standard")
    with torch.no_grad():
        assert torch.equal(old(x, p), new(x, p))
    assert sum(t.numel() for t in new.parameters()) > sum(t.numel() for t in old.parameters())


@pytest.mark.parametrize("unshuffle,n_res,dec_blocks,fine", [(2, 2, 0, None), (2, 2, 1, None), (1, 0, 2, None),
                                                             (2, 1, 2, None), (2, 2, 2, 0), (1, 1, 0, 2)])
@pytest.mark.parametrize("mode", ["standard", "adaptive"])
def test_decoding_a_window_equals_the_whole_decode_cut_to_it(unshuffle, n_res, dec_blocks, fine, mode):
    """Training decodes only the crop inside its padding margin: the same pixels as decoding all."""
    torch.manual_seed(0)
    m = DinStyleNet(ModelConfig(widths=(8, 8, 16), param_hidden=8, unshuffle=unshuffle, n_res=n_res,
                                dec_blocks=dec_blocks, dec_fine_blocks=fine)).eval()
    assert (len(m.decoder.res2), len(m.decoder.res1)) == (dec_blocks, dec_blocks if fine is None else fine)
    for mod in m.modules():  # no zero-initialised (identity) parts: every conv's reach counts
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.normal_(mod.weight, std=0.3)
    p = _params(m, 2, mode).map(lambda t: t.detach().double())  # the style path runs in float32
    m.double()
    x = torch.rand(2, 3, 192, 160, dtype=torch.float64)
    with torch.no_grad():
        full = m(x, p)
        for t, l, h, w in [(64, 48, 64, 64), (0, 0, 96, 96), (128, 64, 64, 96), (8, 16, 8, 24), (0, 0, 192, 160)]:
            part = m(x, p, window=(t, l, h, w))
            assert part.shape == (2, 3, h, w)
            assert torch.allclose(part, full[..., t:t + h, l:l + w], rtol=0, atol=1e-9 * full.abs().max())
        for bad in [(2, 0, 64, 64), (128, 64, 128, 64), (-8, 0, 64, 64)]:  # unaligned, past the edge, outside
            with pytest.raises(ValueError):
                m(x, p, window=bad)
        with pytest.raises(ValueError):  # an image side that does not halve evenly at every level
            m(torch.rand(1, 3, 198, 160, dtype=torch.float64), p.map(lambda t: t[:1]), window=(0, 0, 64, 64))
    # the window is a real saving: the finest level decodes the window and its margin only
    assert 2 * m.decoder.margins()[0] * m.cfg.unshuffle < 64


def test_the_heads_fused_up_sampling_equals_bilinear_then_refine_inside_the_border_ring():
    """The head up-samples x2 and refines as one low-resolution conv and a pixel shuffle: the same
    values and gradients as bilinear x2 followed by the 3x3 refine conv, but for the outermost ring."""
    import torch.nn.functional as F

    from dinstyle.model.net import BilinearHead

    torch.manual_seed(0)
    head = BilinearHead(6, 4).double()
    for p in head.parameters():
        torch.nn.init.normal_(p, std=0.5)
    h = torch.randn(2, 6, 11, 14, dtype=torch.float64, requires_grad=True)

    def two_step(h):
        y = head.lo(h)
        up = F.interpolate(torch.cat([y[:, :3], F.relu(y[:, 3:])], 1), scale_factor=2, mode="bilinear",
                           align_corners=False)
        return head.refine(up[:, 3:]) + up[:, :3]

    g = torch.randn(2, 3, 20, 26, dtype=torch.float64)  # the interior's upstream gradient
    outs, grads = [], []
    for fn in (lambda h: head(h, (22, 28)), two_step):
        out = fn(h)
        assert out.shape == (2, 3, 22, 28)
        h.grad = None
        (out[..., 1:-1, 1:-1] * g).sum().backward()
        outs.append(out.detach())
        grads.append(h.grad.clone())
    assert torch.allclose(outs[0][..., 1:-1, 1:-1], outs[1][..., 1:-1, 1:-1], rtol=0, atol=1e-12)
    assert torch.allclose(grads[0], grads[1], rtol=0, atol=1e-12)
    assert not torch.allclose(outs[0], outs[1])  # the ring: zeros past the edge in the two-step form
    with torch.no_grad():  # inference relus in place: the same values
        assert torch.allclose(head(h, (22, 28)), outs[0], rtol=0, atol=1e-12)


def test_train_refuses_negative_decoder_blocks_before_loading_anything(tmp_path):
    from typer.testing import CliRunner

    from dinstyle.cli import app

    for flag in ("--dec-blocks", "--dec-fine-blocks"):
        r = CliRunner().invoke(app, ["train", "--content", str(tmp_path), "--style", str(tmp_path), flag, "-1",
                                     "--out", str(tmp_path / "run")])
        assert r.exit_code == 2 and f"{flag} -1: must be >= 0" in r.stderr and "Traceback" not in r.stderr
        assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("unshuffle,n_res,dec_blocks,fine,texture",
                         [(2, 2, 0, None, 0), (2, 2, 2, 0, 0), (2, 1, 1, None, 0), (1, 1, 0, 2, 0), (1, 1, 0, None, 7)])
@pytest.mark.parametrize("mode", ["standard", "adaptive"])
def test_tiles_with_the_models_reach_as_context_equal_the_whole_image(unshuffle, n_res, dec_blocks, fine, texture, mode):
    """Tiled stylization: each tile's core, run with ``reach`` of context and whole-image statistics,
    is exactly the whole image's output there, whatever the decoder's depth (and the standard
    mode's texture filter: a 7 x 7 one widens the reach by 12 px)."""
    torch.manual_seed(0)
    m = DinStyleNet(ModelConfig(widths=(8, 8, 16), param_hidden=8, unshuffle=unshuffle, n_res=n_res,
                                dec_blocks=dec_blocks, dec_fine_blocks=fine, texture_kernel=texture)).eval()
    for mod in m.modules():  # no identity parts: every conv's reach counts
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.normal_(mod.weight, std=0.3)
    p = _params(m, 1, mode).map(lambda t: t.detach().double())
    m.double()
    k = m.multiple
    c = -(-m.reach // k) * k
    size, tile = 2 * c + 3 * k * 4, k * 4
    x = torch.rand(1, 3, size, size, dtype=torch.float64)
    seen = []
    with torch.no_grad():
        full = m(x, p, stats_hook=lambda s: seen.append(s) or s)
        for y0 in (0, c, size - tile):  # a corner tile, an inner tile, an edge tile
            x0 = c
            cy0, cx0, cy1, cx1 = max(0, y0 - c), max(0, x0 - c), min(size, y0 + tile + c), min(size, x0 + tile + c)
            part = m(x[..., cy0:cy1, cx0:cx1], p, stats=seen[0], origin=(cy0, cx0),
                     window=(y0 - cy0, x0 - cx0, tile, tile))
            assert torch.allclose(part, full[..., y0:y0 + tile, x0:x0 + tile], rtol=0, atol=1e-9 * full.abs().max())
