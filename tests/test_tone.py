"""Tone guidance: the module's maths, then the engine (plain, tiled, regions) and the CLI around it."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from dinstyle import tone
from dinstyle.tone import TONE_SIGMA, guide_tone

LUMA = np.array([0.299, 0.587, 0.114])


def _img(seed: int, size=(96, 80)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    base = np.stack([xx * 2.0, yy * 2.0, (xx + yy) * 1.0], -1) + 40
    return np.clip(base + rng.normal(0, 20, (*size, 3)), 0, 255).astype(np.uint8)


def _coarse(rgb: np.ndarray) -> np.ndarray:
    y = rgb.astype(np.float64) @ LUMA
    return cv2.GaussianBlur(y, (0, 0), TONE_SIGMA, borderType=cv2.BORDER_REPLICATE)


def _fine(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ LUMA - _coarse(rgb)


def test_amount_zero_is_the_output_and_one_is_the_photos_tone_with_the_outputs_strokes():
    out, photo = _img(0), _img(1) // 2 + 100  # a lighter, flatter photo
    assert np.array_equal(guide_tone(out, photo, 0.0), out)
    full = guide_tone(out, photo, 1.0)
    inner = (slice(30, -30), slice(30, -30))  # clear of clipping at the ramps' ends
    before = np.abs(_coarse(out) - _coarse(photo))[inner].mean()
    after = np.abs(_coarse(full) - _coarse(photo))[inner].mean()
    assert before > 20 and after < 1.5, (before, after)
    assert np.abs(_fine(full) - _fine(out))[inner].mean() < 1.5  # the strokes (finer than sigma) stay
    half = guide_tone(out, photo, 0.5)
    mid = np.abs(_coarse(half) - _coarse(photo))[inner].mean()
    assert 0.4 * before < mid < 0.6 * before
    # a grey shift: the differences between channels (hue, saturation) are kept where nothing clips
    d0, d1 = np.diff(out.astype(int), axis=2), np.diff(half.astype(int), axis=2)
    unclipped = ((half > 0) & (half < 255)).all(2)
    assert np.abs(d1 - d0)[unclipped].max() <= 1


def test_blocks_of_rows_give_the_whole_images_result(monkeypatch):
    out, photo = _img(2, (150, 40)), _img(3, (150, 40))
    whole = guide_tone(out, photo, 0.7)
    monkeypatch.setattr(tone, "ROWS", 32)
    assert np.array_equal(guide_tone(out, photo, 0.7), whole)


def test_sizes_must_agree():
    with pytest.raises(ValueError):
        guide_tone(_img(0, (20, 20)), _img(1, (20, 24)), 0.5)


@pytest.fixture
def style_file(tmp_path):
    from PIL import Image

    p = tmp_path / "style.png"
    Image.fromarray(_img(7, (64, 64))[:, ::-1].copy()).save(p)
    return p


def test_engine_guides_the_networks_output_before_the_palette(st, style_file):
    photo = _img(4, (72, 88))
    sty = st.load_style([str(style_file)])
    raw = st.stylize([photo], sty, tone=0.0, palette=0.0)[0]
    for t in (0.3, 1.0):
        assert np.array_equal(st.stylize([photo], sty, tone=t, palette=0.0)[0], guide_tone(raw, photo, t))
    from dinstyle.config import STYLIZE
    from dinstyle.palette import transfer_palette

    assert 0 < STYLIZE.tone < 1
    assert np.array_equal(st.stylize([photo], sty)[0], transfer_palette(guide_tone(raw, photo, STYLIZE.tone), sty.palette))
    # tiles: the whole image's output is guided, so tiling changes nothing
    tiled = st.stylize([photo], sty, tone=0.8, palette=0.0, tile=32)[0]
    assert np.array_equal(tiled, guide_tone(st.stylize([photo], sty, tone=0.0, palette=0.0, tile=32)[0], photo, 0.8))
    from dinstyle.errors import OptionError

    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(OptionError, match="--tone"):
            st.stylize([photo], sty, tone=bad)


def test_each_image_of_a_batch_is_guided_by_its_own_photo_and_strength_scales_it(st, style_file):
    a, b = _img(8, (64, 64)), _img(9, (64, 64))[::-1].copy()
    sty = st.load_style([str(style_file)])
    raw = st.stylize([a, b], sty, tone=0.0, palette=0.0)
    both = st.stylize([a, b], sty, tone=1.0, palette=0.0)
    for out, r, photo in zip(both, raw, (a, b)):
        assert np.array_equal(out, guide_tone(r, photo, 1.0))
    half = st.stylize([a], sty, strength=0.5, tone=0.0, palette=0.0)[0]
    assert np.array_equal(st.stylize([a], sty, strength=0.5, tone=1.0, palette=0.0)[0], guide_tone(half, a, 0.5))
    # with --preserve-color the guided light and dark carry the photo's colours
    kept = [st.stylize([a], sty, tone=t, preserve_color=True)[0] for t in (0.0, 1.0)]
    assert np.abs(_coarse(kept[1]) - _coarse(a)).mean() < np.abs(_coarse(kept[0]) - _coarse(a)).mean()


def test_regions_are_guided_too(st, style_file, tmp_path):
    from PIL import Image

    photo = _img(5, (64, 64))
    mask = np.zeros((64, 64), np.uint8)
    mask[:, 32:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    sty = st.load([str(style_file), "none"], mask=str(tmp_path / "mask.png"))
    raw = st.stylize([photo], sty, tone=0.0, palette=0.0)[0]
    assert np.array_equal(st.stylize([photo], sty, tone=0.6, palette=0.0)[0], guide_tone(raw, photo, 0.6))


def test_cli_tone_option_and_bad_values(tiny_weights, style_file, tmp_path, refused_everywhere):
    from PIL import Image

    from dinstyle.cli.app import app

    photo = tmp_path / "photo.png"
    Image.fromarray(_img(6, (64, 80))).save(photo)
    runner = CliRunner()
    base = ["image", str(photo), "-s", str(style_file), "-w", str(tiny_weights), "--palette", "0"]
    outs = {}
    for t in ("0", "1"):
        r = runner.invoke(app, base + ["--tone", t, "-o", str(tmp_path / f"t{t}.png")])
        assert r.exit_code == 0, r.output
        outs[t] = np.asarray(Image.open(tmp_path / f"t{t}.png"))
    ref = np.asarray(Image.open(photo))
    assert np.abs(_coarse(outs["1"]) - _coarse(ref)).mean() < np.abs(_coarse(outs["0"]) - _coarse(ref)).mean()
    refused_everywhere(photo, style_file, "--tone", "1.5")


def test_video_frames_are_guided(tiny_weights, style_file, tmp_path, lossless_clip):
    from dinstyle.cli.app import app
    from dinstyle.io.video import read_video

    frames = [np.roll(_img(10, (48, 64)), 3 * i, axis=1) for i in range(6)]
    src = lossless_clip("clip.mp4", frames)
    runner = CliRunner()
    gap = {}
    for t in ("0", "1"):
        dest = tmp_path / f"v{t}.mp4"
        r = runner.invoke(app, ["video", str(src), "-s", str(style_file), "-w", str(tiny_weights), "--palette", "0",
                                "--tone", t, "--crf", "0", "-o", str(dest)])
        assert r.exit_code == 0, r.output
        _, outs = read_video(dest)
        gap[t] = np.mean([np.abs(_coarse(o) - _coarse(f)).mean() for o, f in zip(outs, frames)])
    assert gap["1"] < 0.5 * gap["0"], gap
