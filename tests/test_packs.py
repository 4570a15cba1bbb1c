import pickle

import numpy as np
import pytest
import torch

from dinstyle.engine import parse_style_arg
from dinstyle.errors import CheckpointError, OptionError


def _content(seed=0, size=(36, 28)):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def test_pack_round_trip_equals_image(st, images, tmp_path):
    style_img = images("style.png", (64, 48), seed=3)
    pack = st.make_pack(style_img, style_size=64)
    path = pack.save(tmp_path / "style.dinpack")
    a = st.stylize([_content()], st.load_style([style_img], style_size=64))[0]
    from_pack = st.load_style([path])
    st.style_path._vgg = None  # a pack must not need the style encoder
    b = st.stylize([_content()], from_pack)[0]
    assert not st.style_path.vgg_loaded
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert from_pack.label == "style"


def test_adaptive_pack_keeps_its_mode(st, images, tmp_path):
    style_img = images("s.png", (64, 64), seed=4)
    path = st.make_pack(style_img, mode="adaptive", style_size=64).save(tmp_path / "s.dinpack")
    assert st.load_style([path]).mode == "adaptive"
    with pytest.raises(CheckpointError, match="made for --mode adaptive"):
        st.load_style([path], mode="standard")


def test_adaptive_maps_follow_the_style_shape_and_blend(st, images, tmp_path):
    wide = images("wide.png", (96, 48), seed=5)
    tall = images("tall.png", (40, 80), seed=6)
    path = st.make_pack(wide, mode="adaptive", style_size=96).save(tmp_path / "w.dinpack")
    style = st.load_style([path])  # map shape differs from the model's probe shape: accepted
    assert style.params[0]["weight"].shape[-2:] != (4, 4)
    blend = st.load_style([f"{wide}:0.5", f"{tall}:0.5"], mode="adaptive", style_size=80)
    out = st.stylize([_content(size=(70, 50))], blend)[0]
    assert out.shape == (50, 70, 3)


def test_pack_from_other_model_is_refused(st, images, tmp_path):
    pack = st.make_pack(images("s.png", (32, 32)), style_size=32)
    pack.model_id = "0123456789abcdef"
    path = pack.save(tmp_path / "other.dinpack")
    with pytest.raises(CheckpointError, match="made by model 0123456789abcdef"):
        st.load_style([path])


def test_bad_packs_are_refused(st, images, tmp_path):
    pack = st.make_pack(images("s.png", (32, 32)), style_size=32)
    good = pack.save(tmp_path / "good.dinpack").read_bytes()
    trunc = tmp_path / "trunc.dinpack"
    trunc.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="not a readable style pack"):
        st.load_style([trunc])
    pack.params[0]["weight"][0, 0] = float("nan")
    with pytest.raises(CheckpointError, match="NaN"):
        st.load_style([pack.save(tmp_path / "nan.dinpack")])
    evil = tmp_path / "evil.dinpack"

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))
    evil.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError):
        st.load_style([evil])


def test_blend_of_two_styles_lies_between(st, images):
    a = images("a.png", (48, 48), seed=1)
    b = images("b.png", (48, 48), seed=2)
    sa = st.load_style([a], style_size=48)
    sb = st.load_style([b], style_size=48)
    mix = st.load_style([f"{a}:0.25", f"{b}:0.75"], style_size=48)
    for pa, pb, pm in zip(sa.params, sb.params, mix.params):
        assert torch.allclose(pm["weight"], 0.25 * pa["weight"] + 0.75 * pb["weight"], atol=1e-5)
    assert mix.label == "a25+b75"


def test_parse_style_arg():
    assert parse_style_arg("x/y.jpg:0.5").weight == 0.5
    assert str(parse_style_arg("C:/x.jpg").path) == "C:/x.jpg"
    with pytest.raises(OptionError):
        parse_style_arg("a.jpg:-1")
