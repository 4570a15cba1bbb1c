"""--supersample: the network runs on the enlarged image, its output is shrunk back, and the
finishing stages (tone guidance, palette) run at the image's own size on the photo itself."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from dinstyle.errors import OptionError, ResourceError
from dinstyle.io.images import resize_rgb
from dinstyle.runner import network_size
from dinstyle.tone import guide_tone


def _img(seed: int, size=(72, 88)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    base = np.stack([xx * 2.0, yy * 2.0, (xx + yy) * 1.0], -1) + 40
    return np.clip(base + rng.normal(0, 20, (*size, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def style_file(tmp_path):
    from PIL import Image

    p = tmp_path / "style.png"
    Image.fromarray(_img(7, (64, 64))[:, ::-1].copy()).save(p)
    return p


def _record_inputs(st, monkeypatch) -> list:
    seen = []
    forward = st.runner.model.forward

    def spy(x, *a, **kw):
        seen.append(tuple(x.shape[-2:]))
        return forward(x, *a, **kw)

    monkeypatch.setattr(st.runner.model, "forward", spy)
    return seen


def test_network_size():
    assert network_size(88, 72, 1.0) == (88, 72)
    assert network_size(88, 72, 1.5) == (132, 108)
    assert network_size(3, 1, 1.25) == (4, 1)


def test_the_network_runs_on_the_enlarged_image_and_the_finishing_on_the_photo(st, style_file, monkeypatch):
    photo = _img(4)
    sty = st.load_style([str(style_file)])
    seen = _record_inputs(st, monkeypatch)
    big = resize_rgb(photo, (132, 108))
    direct = st.stylize([big], sty, tone=0.0, palette=0.0)[0]
    raw = st.stylize([photo], sty, tone=0.0, palette=0.0, supersample=1.5)[0]
    assert seen[0] == seen[1]  # the same network input as the 1.5x image itself
    assert raw.shape == photo.shape and np.array_equal(raw, cv2.resize(direct, (88, 72), interpolation=cv2.INTER_AREA))
    assert not np.array_equal(raw, st.stylize([photo], sty, tone=0.0, palette=0.0)[0])
    # tone guidance and the palette at the image's size, guided by the photo (not the enlarged copy)
    toned = st.stylize([photo], sty, tone=0.8, palette=0.0, supersample=1.5)[0]
    assert np.array_equal(toned, guide_tone(raw, photo, 0.8))
    from dinstyle.palette import transfer_palette

    assert np.array_equal(st.stylize([photo], sty, tone=0.0, supersample=1.5)[0], transfer_palette(raw, sty.palette))
    # a batch of two: each image enlarged and shrunk back on its own
    other = _img(5)
    both = st.stylize([photo, other], sty, tone=0.0, palette=0.0, supersample=1.5)
    alone = [raw, st.stylize([other], sty, tone=0.0, palette=0.0, supersample=1.5)[0]]
    assert all(np.abs(b.astype(int) - a).max() <= 1 for a, b in zip(alone, both))  # batched kernels may round apart


def test_tiles_take_the_enlarged_image(st, style_file):
    photo = _img(6, (64, 64))
    sty = st.load_style([str(style_file)])
    whole = st.stylize([photo], sty, tone=0.0, palette=0.0, supersample=2.0)[0]
    tiled = st.stylize([photo], sty, tone=0.0, palette=0.0, supersample=2.0, tile=64)[0]
    assert tiled.shape == photo.shape
    assert np.abs(tiled.astype(int) - whole).mean() < 1.0  # whole-image statistics: the tiles agree


def test_regions_keep_their_sides_on_a_wide_image(st, style_file, tmp_path):
    from PIL import Image

    photo = _img(6, (48, 96))  # wide: a swapped width and height would misplace the regions
    other = tmp_path / "other.png"
    Image.fromarray(_img(11, (64, 64))[::-1, :, ::-1].copy()).save(other)
    mask = np.zeros((48, 96), np.uint8)
    mask[:, 48:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    Image.fromarray(255 - mask).save(tmp_path / "swapped.png")
    inner = slice(8, -8)
    for palette in (0.0, 1.0):  # each region's palette fitted under its own (image-size) mask
        out, swapped = (st.stylize([photo], st.load([str(style_file), str(other)], mask=str(tmp_path / m)),
                                   tone=0.0, palette=palette, supersample=1.5)[0].astype(int)
                        for m in ("mask.png", "swapped.png"))
        left, right = (st.stylize([photo], st.load_style([str(f)]), tone=0.0, palette=palette,
                                  supersample=1.5)[0].astype(int) for f in (style_file, other))
        assert out.shape == photo.shape

        def gap(a, b, cols):
            return np.abs(a[inner, cols] - b[inner, cols]).mean()

        assert gap(out, left, slice(4, 36)) < gap(swapped, left, slice(4, 36))  # left: the first style
        assert gap(out, right, slice(60, 92)) < gap(swapped, right, slice(60, 92))  # right: the second


def test_a_halved_batch_splits_its_masks(st, style_file, tmp_path, monkeypatch):
    """Frames of a mask video under memory pressure: each half of the batch keeps its own masks."""
    from PIL import Image

    from dinstyle.io import memory

    frames = [_img(12, (48, 64)), _img(13, (48, 64))]
    masks = [np.zeros((48, 64), np.uint8), np.full((48, 64), 255, np.uint8)]
    Image.fromarray(masks[0]).save(tmp_path / "mask.png")
    other = tmp_path / "other.png"
    Image.fromarray(_img(11, (64, 64))[::-1, :, ::-1].copy()).save(other)
    regions = st.load([str(style_file), str(other)], mask=str(tmp_path / "mask.png"))
    alone = [st.stylize([f], regions, masks=[m], supersample=1.5)[0] for f, m in zip(frames, masks)]
    one = st.runner.memory_needed(72, 96, 0)
    monkeypatch.setattr(memory, "fits", lambda n: n <= one)  # one frame fits, two do not
    both = st.runner.stylize_resilient(frames, regions, masks=masks, supersample=1.5)
    assert all(np.array_equal(a, b) for a, b in zip(alone, both))


def test_bad_values_and_memory_are_checked_on_the_networks_size(st, style_file, monkeypatch, tmp_path):
    photo = _img(4)
    sty = st.load_style([str(style_file)])
    for bad in (0.5, 2.5, float("nan"), float("inf")):
        with pytest.raises(OptionError, match="--supersample"):
            st.stylize([photo], sty, supersample=bad)
        with pytest.raises(OptionError, match="--supersample"):
            st.runner.stylize_resilient([photo], sty, supersample=bad)
    from PIL import Image

    from dinstyle.io import memory

    Image.fromarray(np.zeros((72, 88), np.uint8)).save(tmp_path / "m.png")
    regions = st.load([str(style_file), str(style_file)], mask=str(tmp_path / "m.png"))
    need = {}
    monkeypatch.setattr(memory, "fits", lambda n: need.setdefault("n", n) < 0)
    with pytest.raises(ResourceError, match=r"132x108 network pass \(--supersample 1.5\).*or a lower --supersample"):
        st.runner.stylize_resilient([photo], sty, supersample=1.5, tile=0)
    assert need["n"] == st.runner.memory_needed(108, 132, 0)
    # a region style never tiles: its need is the whole network pass, however large
    monkeypatch.setattr(st.runner, "tile_size_for", lambda h, w, tile: 0 if tile == 0 else 64)
    need.clear()
    with pytest.raises(ResourceError):
        st.runner.stylize_resilient([photo], sty, supersample=1.5)
    tiled = st.runner.memory_needed(108, 132, None)
    assert need["n"] == tiled != st.runner.memory_needed(108, 132, 0)  # a plain style: one tile and the copies
    need.clear()
    with pytest.raises(ResourceError) as err:
        st.runner.stylize_resilient([photo], regions, supersample=1.5)
    assert need["n"] == st.runner.memory_needed(108, 132, 0) and "--tile" not in str(err.value)


def test_cli_supersample_and_bad_values(tiny_weights, style_file, tmp_path, refused_everywhere):
    from PIL import Image

    from dinstyle.cli.app import app

    photo = tmp_path / "photo.png"
    Image.fromarray(_img(6, (64, 80))).save(photo)
    runner = CliRunner()
    base = ["image", str(photo), "-s", str(style_file), "-w", str(tiny_weights)]
    outs = {}
    for s in ("1", "1.5"):
        r = runner.invoke(app, base + ["--supersample", s, "-o", str(tmp_path / f"s{s}.png")])
        assert r.exit_code == 0, r.output
        outs[s] = np.asarray(Image.open(tmp_path / f"s{s}.png"))
    assert outs["1"].shape == outs["1.5"].shape == (64, 80, 3) and not np.array_equal(outs["1"], outs["1.5"])
    refused_everywhere(photo, style_file, "--supersample", "3")


def test_eval_records_and_applies_it(tiny_weights, tmp_path, images):
    from dinstyle.cli.app import app

    for i in range(2):
        images(f"ec/{i}.png", (40, 32), seed=i)
        images(f"es/{i}.png", (36, 36), seed=5 + i)
    args = ["eval", "--content", str(tmp_path / "ec"), "--style", str(tmp_path / "es"), "-w", str(tiny_weights),
            "--size", "64", "--style-size", "48", "--json"]
    rows = {}
    for s in ("1", "1.5"):
        r = CliRunner().invoke(app, args + ["--supersample", s])
        assert r.exit_code == 0, r.output
        rows[s] = json.loads(r.stdout)
    assert rows["1"]["supersample"] == 1.0 and rows["1.5"]["supersample"] == 1.5
    assert rows["1"]["style_loss"] != rows["1.5"]["style_loss"]


def test_video_frames_are_supersampled(tiny_weights, style_file, tmp_path, lossless_clip):
    from dinstyle.cli.app import app
    from dinstyle.io.video import read_video

    src = lossless_clip("clip.mp4", [np.roll(_img(10, (48, 64)), 3 * i, axis=1) for i in range(4)])
    got = {}
    for s in ("1", "2"):
        dest = tmp_path / f"v{s}.mp4"
        r = CliRunner().invoke(app, ["video", str(src), "-s", str(style_file), "-w", str(tiny_weights),
                                     "--supersample", s, "--crf", "0", "-o", str(dest)])
        assert r.exit_code == 0, r.output
        _, frames = read_video(dest)
        got[s] = np.stack(list(frames))
    assert got["1"].shape == got["2"].shape and np.abs(got["1"].astype(int) - got["2"]).mean() > 0.5
