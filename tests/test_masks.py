import numpy as np
from PIL import Image
from typer.testing import CliRunner

from dinstyle.cli import app

runner = CliRunner()


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
    # the network's blending (palette 0): each region's palette is fitted on its own pixels, a single
    # style's on the whole image, so with the palette the halves differ by design (test_palette.py)
    out_a = st.stylize([img], st.load_style([a], style_size=48), palette=0.0)[0].astype(int)
    out_b = st.stylize([img], st.load_style([b], style_size=48), palette=0.0)[0].astype(int)
    regions = st.load_regions([str(a), str(b)], _mask(tmp_path, 96, 64), feather=0, style_size=48)
    mixed = st.stylize([img], regions, palette=0.0)[0].astype(int)
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
    plain = st.stylize([img], st.load_style([a], style_size=48), strength=0.0)[0]  # no style, so no tone guidance
    assert np.abs(st.stylize([img], regions, tone=0.0)[0].astype(int) - plain.astype(int)).max() <= 1


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
