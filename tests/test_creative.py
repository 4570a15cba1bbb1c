import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dinstyle.cli import app
from dinstyle.color import keep_luminance_of, match_colors, rgb_to_ycc
from dinstyle.io.grid import LABEL_H, compose_grid
from dinstyle.sheets import interpolate

runner = CliRunner()


@pytest.fixture
def two_styles(tmp_path):
    rng = np.random.default_rng(0)
    a = np.clip(rng.normal((200, 60, 40), 20, (48, 48, 3)), 0, 255).astype(np.uint8)  # warm, smooth
    b = np.zeros((48, 48, 3), np.uint8)
    b[::4] = (30, 80, 255)  # blue stripes on black
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    return tmp_path / "a.png", tmp_path / "b.png"


def _photo(w=96, h=64):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 2, yy * 3, (xx + yy) % 200], -1).astype(np.uint8)


def _mask(tmp_path, w, h, split=True, value=0):
    m = np.full((h, w), value, np.uint8)
    if split:
        m[:, w // 2:] = 255
    p = tmp_path / f"mask_{split}_{value}.png"
    Image.fromarray(m).save(p)
    return p


def test_half_half_mask_matches_single_styles_away_from_seam(st, two_styles, tmp_path):
    a, b = two_styles
    img = _photo()
    out_a = st.stylize([img], st.load_style([a], style_size=48))[0].astype(int)
    out_b = st.stylize([img], st.load_style([b], style_size=48))[0].astype(int)
    regions = st.load_regions([str(a), str(b)], _mask(tmp_path, 96, 64), feather=0, style_size=48)
    mixed = st.stylize([img], regions)[0].astype(int)
    left, right = slice(0, 24), slice(72, 96)
    assert np.abs(mixed[:, left] - out_a[:, left]).mean() < 1.0
    assert np.abs(mixed[:, right] - out_b[:, right]).mean() < 1.0
    assert np.abs(out_a - out_b).mean() > 2.0  # the two styles really differ


def test_uniform_mask_equals_single_style_and_none_keeps_content(st, two_styles, tmp_path):
    a, b = two_styles
    img = _photo()
    single = st.stylize([img], st.load_style([a], style_size=48))[0]
    regions = st.load_regions([str(a), str(b)], _mask(tmp_path, 96, 64, split=False, value=0), style_size=48)
    assert np.abs(st.stylize([img], regions)[0].astype(int) - single.astype(int)).max() <= 1
    regions = st.load_regions(["none", str(a)], _mask(tmp_path, 96, 64, split=False, value=0), style_size=48)
    plain = st.stylize([img], st.load_style([a], style_size=48), strength=0.0)[0]
    assert np.abs(st.stylize([img], regions)[0].astype(int) - plain.astype(int)).max() <= 1


def test_mask_cli_resizes_with_warning_and_rejects_unreadable(tmp_path, two_styles, images, tiny_weights):
    a, b = two_styles
    photo = images("p.png", (40, 30))
    r = runner.invoke(app, ["image", str(photo), "-s", str(a), "-s", str(b), "--mask", str(_mask(tmp_path, 20, 20)),
                            "-w", str(tiny_weights), "-o", str(tmp_path / "o.png"), "--style-size", "48"])
    assert r.exit_code == 0, r.output
    assert "resized" in r.stderr and Image.open(tmp_path / "o.png").size == (40, 30)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    r = runner.invoke(app, ["image", str(photo), "-s", str(a), "-s", "none", "--mask", str(bad),
                            "-w", str(tiny_weights), "-o", str(tmp_path / "o2.png")])
    assert r.exit_code == 2 and "bad.png" in r.stderr and not (tmp_path / "o2.png").exists()
    r = runner.invoke(app, ["image", str(photo), "-s", str(a), "--mask", str(_mask(tmp_path, 20, 20)),
                            "-w", str(tiny_weights), "-o", str(tmp_path / "o3.png")])
    assert r.exit_code == 2 and "at least two" in r.stderr


def test_interpolation_end_points(st, two_styles):
    a, b = (st.load_style([p], style_size=48) for p in two_styles)
    img = _photo()
    for t, ref in ((0.0, a), (1.0, b)):
        assert np.array_equal(st.stylize([img], interpolate(a, b, t))[0], st.stylize([img], ref)[0])
    mid = st.stylize([img], interpolate(a, b, 0.5))[0].astype(int)
    ea, eb = (st.stylize([img], s)[0].astype(int) for s in (a, b))
    assert np.abs(mid - ea).mean() < np.abs(eb - ea).mean()


def test_sheet_and_strip_cli(tmp_path, two_styles, images, tiny_weights):
    photo = images("p.png", (80, 60))
    r = runner.invoke(app, ["sheet", str(photo), "-s", str(tmp_path), "-w", str(tiny_weights), "-o",
                            str(tmp_path / "out" / "sheet.png"), "--cell", "64", "--style-size", "48"])
    assert r.exit_code == 0, r.output
    im = Image.open(tmp_path / "out" / "sheet.png")
    # original + a.png + b.png + p.png (the folder holds three images) -> 2 x 2 grid
    assert im.size == (2 * 64 + 3 * 4, 2 * (48 + LABEL_H) + 3 * 4)
    r = runner.invoke(app, ["sheet", str(photo), "-s", str(two_styles[0]), "--strip", "4", "-w", str(tiny_weights),
                            "-o", str(tmp_path / "strip.png"), "--cell", "64", "--style-size", "48"])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "strip.png").size[0] == 4 * 64 + 5 * 4


def test_grid_labels_are_drawn():
    cells = [(np.full((32, 32, 3), 255, np.uint8), "label")] * 2
    g = compose_grid(cells, cols=2, cell=32)
    assert (g[32:, :, :] < 128).any()  # dark text pixels below the white cells


def test_colour_controls():
    rng = np.random.default_rng(0)
    content = rng.integers(90, 170, (20, 20, 3), dtype=np.uint8)  # in gamut after a luminance swap
    stylized = np.full((20, 20, 3), (160, 110, 100), np.uint8)
    kept = keep_luminance_of(stylized, content)
    assert np.abs(rgb_to_ycc(kept)[..., 1:] - rgb_to_ycc(content)[..., 1:]).mean() < 1.5
    style = (rng.random((30, 30, 3)) * [255, 60, 40]).astype(np.uint8)
    matched = match_colors(style, content).reshape(-1, 3).astype(float)
    assert np.allclose(matched.mean(0), content.reshape(-1, 3).mean(0), atol=3)
