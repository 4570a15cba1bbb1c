"""The standard mode's texture filter (``ModelConfig.texture_kernel``, ``dinstyle train --texture-kernel``):
a depthwise k x k filter per channel predicted from the style, added to the 1x1 weight."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from dinstyle.cli import app
from dinstyle.config import ModelConfig
from dinstyle.model import DinStyleNet
from dinstyle.model.net import convert_state

TINY = dict(widths=(8, 8, 16), param_hidden=8)
runner = CliRunner()


def _style_feats(seed=0, n=1):
    g = torch.Generator().manual_seed(seed)
    return {"relu2_1": torch.rand(n, 128, 16, 16, generator=g), "relu3_1": torch.rand(n, 256, 8, 8, generator=g),
            "relu4_1": torch.rand(n, 512, 4, 4, generator=g)}


def _textured(seed=0, std=0.3) -> DinStyleNet:
    """A tiny model with the filter, its taps made to respond to the style (trained ones do).
    (Tiles with the filter: tests/test_model.py, the tiling test.)"""
    torch.manual_seed(seed)
    m = DinStyleNet(ModelConfig(**TINY, texture_kernel=3))
    for d in m.dins:
        torch.nn.init.normal_(d.texture_net.taps.weight, std=std)
    return m.eval()


def test_a_model_given_the_filter_starts_as_the_model_it_extends():
    torch.manual_seed(0)
    old = DinStyleNet(ModelConfig(**TINY)).eval()
    for d in old.dins:
        torch.nn.init.normal_(d.weight_net.conv2.weight, std=0.3)
    new = DinStyleNet(ModelConfig(**TINY, texture_kernel=3)).eval()
    state, fresh = convert_state(old.state_dict(), new)
    new.load_state_dict(state)
    assert fresh and all(".texture_net." in k for k in fresh)
    feats, x = _style_feats(), torch.rand(2, 3, 48, 40)
    with torch.no_grad():
        p_old, p_new = old.style_params(feats), new.style_params(feats)
        for a, b in zip(p_old.layers, p_new.layers):
            assert b["weight"].shape == (*a["weight"].shape, 3, 3)
            assert torch.equal(b["weight"][:, :, 1, 1], a["weight"])  # the 1x1 weight at the centre
            assert b["weight"][:, :, 0].abs().max() == 0  # the rest starts at zero
        assert torch.allclose(new(x, p_new.expand(2)), old(x, p_old.expand(2)), atol=1e-5)


def test_the_filter_is_the_styles_own_and_reaches_the_output():
    m = _textured()
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        pa, pb = m.style_params(_style_feats(0)), m.style_params(_style_feats(1))
        assert not torch.allclose(pa.layers[0]["weight"][:, :, 0, 0], pb.layers[0]["weight"][:, :, 0, 0])
        plain = [dict(p) for p in pa.layers]
        for p in plain:  # the same style with its off-centre taps removed
            w = torch.zeros_like(p["weight"])
            w[:, :, 1, 1] = p["weight"][:, :, 1, 1]
            p["weight"] = w
        assert (m(x, pa) - m(x, type(pa)("standard", tuple(plain)))).abs().max() > 1e-3


def test_training_moves_the_filter_net():
    torch.manual_seed(0)
    m = DinStyleNet(ModelConfig(**TINY, texture_kernel=3))  # zero taps, as a new run starts
    loss = m(torch.rand(2, 3, 32, 32), m.style_params(_style_feats(n=2))).square().mean()
    loss.backward()
    assert all(d.texture_net.taps.weight.grad.abs().max() > 0 for d in m.dins)


def test_config_records_the_filter_only_where_there_is_one():
    assert "texture_kernel" not in ModelConfig().to_dict()  # shipped weights' config.json is unchanged
    d = ModelConfig(texture_kernel=5).to_dict()
    assert d["texture_kernel"] == 5 and ModelConfig.from_dict(json.loads(json.dumps(d))).texture_kernel == 5


def test_end_to_end_image_pack_and_onnx(tmp_path, images, vgg):
    from dinstyle.checkpoint import save_weights

    save_weights(_textured(), tmp_path / "w", trained={"steps": 0, "note": "test"}, vgg=vgg)
    photo, style = images("p.png", (40, 32)), images("s.png", (48, 48), seed=3)
    w = ["-w", str(tmp_path / "w")]
    r = runner.invoke(app, ["image", str(photo), "-s", str(style), "-o", str(tmp_path / "a.png"), "--style-size", "48", *w])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["precompute", str(style), "-o", str(tmp_path / "packs"), "--style-size", "48", *w])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["image", str(photo), "-s", str(tmp_path / "packs" / "s.dinpack"), "-o", str(tmp_path / "b.png"), *w])
    assert r.exit_code == 0, r.output
    a, b = (np.asarray(Image.open(tmp_path / n)).astype(int) for n in ("a.png", "b.png"))
    assert np.abs(a - b).max() <= 1
    r = runner.invoke(app, ["info", *w])
    assert r.exit_code == 0 and "standard (with a 3x3 texture filter)" in r.stdout, r.output
    # a pack of weights without the filter, used with these: one line that says what to do
    r = runner.invoke(app, ["precompute", str(style), "-o", str(tmp_path / "plain"), "--style-size", "48"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["image", str(photo), "-s", str(tmp_path / "plain" / "s.dinpack"), "-o", str(tmp_path / "c.png"), *w])
    assert r.exit_code == 2 and "run `dinstyle precompute` again with these weights" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "c.png").exists()
    pytest.importorskip("onnxruntime")
    from dinstyle.engine import Stylizer
    from dinstyle.export import export_onnx

    st = Stylizer(weights=tmp_path / "w", device="cpu")
    res = export_onnx(st, tmp_path / "open.onnx")  # kernels as inputs; the parity check runs a batch of 2
    assert res["parity_max_abs_error"] < 1e-3
    r = runner.invoke(app, ["export", "onnx", "-o", str(tmp_path / "m.onnx"), "-s", str(style), "--style-size", "48", *w])
    assert r.exit_code == 0 and "matches PyTorch" in r.stderr, r.output


@pytest.mark.parametrize("k", ["1", "2", "-1"])
def test_even_or_negative_sizes_are_refused(tmp_path, k):
    r = runner.invoke(app, ["train", "--content", str(tmp_path), "--style", str(tmp_path), "--texture-kernel", k,
                            "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and f"--texture-kernel {k}: give an odd size" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()


def test_weights_with_a_bad_filter_size_are_refused_in_one_line(tmp_path, tiny_weights, images):
    import shutil

    shutil.copytree(tiny_weights, tmp_path / "w")
    cfg = json.loads((tmp_path / "w" / "config.json").read_text())
    cfg["model"]["texture_kernel"] = 2
    (tmp_path / "w" / "config.json").write_text(json.dumps(cfg))
    photo, style = images("p.png"), images("s.png", (48, 48), seed=3)
    r = runner.invoke(app, ["image", str(photo), "-s", str(style), "-o", str(tmp_path / "o.png"), "-w", str(tmp_path / "w")])
    assert r.exit_code == 2 and "bad model config (texture_kernel 2" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o.png").exists()


def test_a_run_trains_with_the_filter_and_exports_it(tiny_run, tmp_path):
    from dinstyle.checkpoint import load_model
    from dinstyle.train.checkpoints import export_weights
    from dinstyle.train.loop import train

    cfg = tiny_run(steps=3, model=ModelConfig(**TINY, texture_kernel=3))
    train(cfg, tmp_path / "run")
    export_weights(tmp_path / "run", tmp_path / "w")
    model = load_model(tmp_path / "w")[0]
    assert model.cfg.texture_kernel == 3
    assert all(d.texture_net.taps.weight.abs().max() > 0 for d in model.dins)  # moved from its zero start
