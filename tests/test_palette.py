"""The palette transfer: the module's maths, then the engine, packs and CLI around it."""
from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from dinstyle.color import rgb_to_ycc
from dinstyle.metrics import color_distance
from dinstyle.palette import PALETTE_PIXELS, Palette, PaletteMap, PaletteSmoother, transfer_palette


def _photo(seed: int = 0, size=(48, 64)) -> np.ndarray:
    """Smooth colour ramps plus noise: every part of the colour cube the network's outputs use."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    img = np.stack([xx * 255 / size[1], yy * 255 / size[0], (xx + yy) * 128 / sum(size)], -1)
    return np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)


def _painting(colours, seed: int = 1, size=(40, 40)) -> np.ndarray:
    """Patches of the given colours (with a little noise), in equal shares."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(colours), size)
    img = np.asarray(colours, np.float64)[idx] + rng.normal(0, 6, (*size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


STARRY = [(20, 40, 110), (40, 80, 160), (230, 200, 60), (90, 140, 200)]  # blues and a yellow


def test_identity_and_amount_zero_leave_images_unchanged():
    img = _photo()
    assert np.array_equal(PaletteMap.identity().apply(img), img)
    assert np.array_equal(transfer_palette(img, Palette.of(_painting(STARRY)), amount=0.0), img)


def test_transfer_moves_the_colours_onto_the_painting_and_keeps_the_light_and_dark():
    img, painting = _photo(), _painting(STARRY)
    out = transfer_palette(img, Palette.of(painting))
    assert out.shape == img.shape and out.dtype == np.uint8
    before, after = color_distance(img, painting), color_distance(out, painting)
    assert after < 0.7 * before, (before, after)
    # lightness 0: the luma (the structure) stays the network's; the default moves it part of the
    # way to the painting's range, keeping its order
    pal = Palette.of(painting)
    y_in = rgb_to_ycc(img)[..., 0]
    kept = PaletteMap.fit(img, pal, lightness=0.0).apply(img)
    assert np.abs(rgb_to_ycc(kept)[..., 0] - y_in).mean() < 4
    y_out, y_paint = rgb_to_ycc(out)[..., 0], rgb_to_ycc(painting)[..., 0]
    assert abs(y_out.mean() - y_paint.mean()) < 0.6 * abs(y_in.mean() - y_paint.mean())
    assert np.corrcoef(y_in.ravel(), y_out.ravel())[0, 1] > 0.9
    half = transfer_palette(img, Palette.of(painting), amount=0.5)
    assert color_distance(out, painting) <= color_distance(half, painting) <= before


def test_transfer_is_deterministic_and_monotone_on_a_grey_ramp():
    ramp = np.repeat(np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 4, 0), 3, 2)
    pal = Palette.of(_painting(STARRY))
    a, b = transfer_palette(ramp, pal), transfer_palette(ramp, pal)
    assert np.array_equal(a, b)
    luma = rgb_to_ycc(a[0])[:, 0]
    assert np.all(np.diff(luma) >= -1.0)  # darker stays darker: ranks keep their places


def test_lookup_matches_the_table_at_its_nodes_and_handles_any_width():
    m = PaletteMap.fit(_photo(), Palette.of(_painting(STARRY)))
    idx = np.array([[0, 0, 0], [16, 5, 9], [3, 16, 12], [16, 16, 16], [7, 0, 15]])  # (r, g, b) node indices
    px = np.round(idx * 255 / 16).astype(np.uint8)[None]  # nodes lie 255/16 levels apart: within 0.5 of one
    want = m.table[idx[:, 2], idx[:, 1], idx[:, 0]] * 255
    # the rounding to a level, and remap's 1/32-cell weights, move the lookup by a level or two
    assert np.abs(m.apply(px)[0].astype(float) - want).max() <= 3.0
    far = np.abs(m.apply(px[:, ::-1])[0].astype(float) - want).max()
    assert far > 10  # and a lookup of other nodes is far off: the check can fail
    wide = np.tile(_photo(2, (3, 40)), (1, 1000, 1))  # 40,000 px wide: past remap's 32k limit on a side
    parts = np.concatenate([m.apply(wide[:, i:i + 4000]) for i in range(0, wide.shape[1], 4000)], 1)
    assert np.array_equal(m.apply(wide), parts)


def test_a_flat_area_takes_the_middle_of_its_share_not_one_end():
    """60 % of the image one grey: its pixels fill many quantiles at once; they must land where the
    same area with a level of noise lands (the middle of its share of the painting), not at one end."""
    rng = np.random.default_rng(0)
    img = _photo(4)
    flat = np.zeros(img.shape[:2], bool)
    flat[:, : int(img.shape[1] * 0.6)] = True
    img[flat] = 128
    noisy = img.copy()
    noisy[flat] = np.clip(128 + rng.integers(-1, 2, (flat.sum(), 3)), 0, 255)
    pal = Palette.of(_painting(STARRY))
    a = transfer_palette(img, pal)[flat].astype(float).mean(0)
    b = transfer_palette(noisy, pal)[flat].astype(float).mean(0)
    assert np.abs(a - b).max() < 12, (a, b)


def test_tall_and_wide_images_are_mapped_in_pieces_remap_accepts():
    m = PaletteMap.fit(_photo(), Palette.of(_painting(STARRY)))
    tall = _photo(5, (40000, 3))
    out = m.apply(tall)
    assert out.shape == tall.shape and np.array_equal(out[:100], m.apply(tall[:100]))


def test_palette_of_mix_and_validation():
    big = _painting(STARRY, size=(200, 300))
    assert Palette.of(big).pixels.shape == (PALETTE_PIXELS, 3)
    assert np.array_equal(Palette.of(big).pixels, Palette.of(big).pixels)
    red = Palette(np.tile(np.array([[250, 0, 0]], np.uint8), (500, 1)))
    blue = Palette(np.tile(np.array([[0, 0, 250]], np.uint8), (500, 1)))
    mixed = Palette.mix([(red, 3.0), (blue, 1.0)]).pixels
    share_red = (mixed[:, 0] > 128).mean()
    assert abs(share_red - 0.75) < 0.01
    for bad in (np.zeros((10, 4), np.uint8), np.zeros((0, 3), np.uint8), np.zeros((10, 3), np.float32)):
        with pytest.raises(ValueError):
            Palette(bad)


def test_smoother_moves_towards_each_new_map_by_one_minus_momentum():
    img = _photo()
    a = PaletteMap.fit(img, Palette.of(_painting(STARRY)))
    b = PaletteMap.fit(img, Palette.of(_painting([(200, 30, 30), (250, 180, 160)])))
    sm = PaletteSmoother(0.75)
    assert sm(a) is a
    got = sm(b)
    assert np.allclose(got.table, 0.75 * a.table + 0.25 * b.table, atol=1e-6)
    assert sm(a, key=1) is a  # regions are smoothed apart


# -- the engine, packs and CLI (tiny trained-shape model) ---------------------------------------

def _style_file(tmp_path, colours, name="paint.png"):
    from PIL import Image

    path = tmp_path / name
    Image.fromarray(_painting(colours, size=(48, 48))).save(path)
    return path


def test_engine_applies_the_palette_after_the_network(st, tmp_path):
    photo = _photo(3, (40, 56))
    sty = st.load_style([_style_file(tmp_path, STARRY)])
    assert sty.palette is not None
    raw = st.stylize([photo], sty, palette=0.0)[0]
    out = st.stylize([photo], sty)[0]
    assert np.array_equal(out, transfer_palette(raw, sty.palette))
    assert not np.array_equal(out, raw)
    # strength scales it (0 = the photo's reconstruction, unstyled); --preserve-color keeps the photo's colours
    assert np.array_equal(st.stylize([photo], sty, strength=0.0)[0], st.stylize([photo], sty, strength=0.0, palette=0.0)[0])
    assert np.array_equal(st.stylize([photo], sty, preserve_color=True)[0],
                          st.stylize([photo], sty, preserve_color=True, palette=0.0)[0])
    from dinstyle.errors import OptionError

    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(OptionError):
            st.stylize([photo], sty, palette=bad)


def test_pack_keeps_the_palette_and_old_packs_still_load(st, tmp_path):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    src = _style_file(tmp_path, STARRY)
    pack = st.make_pack(src).save(tmp_path / "s.dinpack")
    photo = _photo(5, (40, 56))
    from_image = st.stylize([photo], st.load_style([src]))[0]
    from_pack = st.load_style([pack])
    assert np.array_equal(from_pack.palette.pixels, Palette.of(_painting(STARRY, size=(48, 48))).pixels)
    assert np.array_equal(st.stylize([photo], from_pack)[0], from_image)
    # a pack written before packs kept a palette: the network's own colours, no error
    tensors = {k: v for k, v in load_file(pack).items() if k != "palette"}
    with safe_open(str(pack), "pt") as f:
        meta = {**f.metadata(), "version": "1"}
    save_file(tensors, tmp_path / "old.dinpack", metadata=meta)
    old = st.load_style([tmp_path / "old.dinpack"])
    assert old.palette is None
    assert np.array_equal(st.stylize([photo], old)[0], st.stylize([photo], old, palette=0.0)[0])


def test_hostile_pack_palette_is_refused(st, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    from dinstyle.errors import CheckpointError

    pack = st.make_pack(_style_file(tmp_path, STARRY)).save(tmp_path / "s.dinpack")
    with safe_open(str(pack), "pt") as f:
        meta = f.metadata()
    for name, bad in (("shape", torch.zeros(10, 4)), ("range", torch.full((10, 3), 300.0)),
                      ("nan", torch.full((10, 3), float("nan")))):
        tensors = {**load_file(pack), "palette": bad}
        save_file(tensors, tmp_path / f"{name}.dinpack", metadata=meta)
        with pytest.raises(CheckpointError, match="palette"):
            st.load_style([tmp_path / f"{name}.dinpack"])


def test_regions_take_their_own_palettes(st, tmp_path):
    red = _style_file(tmp_path, [(200, 20, 20), (240, 90, 60)], "red.png")
    blue = _style_file(tmp_path, [(20, 30, 200), (60, 120, 240)], "blue.png")
    mask = np.zeros((40, 56, 3), np.uint8)
    mask[:, 28:] = 255
    regions = st.load_regions([str(red), str(blue)], mask, feather=0)
    out = st.stylize([_photo(7, (40, 56))], regions)[0].astype(int)
    left, right = out[:, :24], out[:, 32:]
    assert left[..., 0].mean() > left[..., 2].mean() + 20
    assert right[..., 2].mean() > right[..., 0].mean() + 20


def test_cli_palette_option(tiny_weights, tmp_path):
    from PIL import Image

    from dinstyle.cli.app import app

    photo = tmp_path / "photo.png"
    Image.fromarray(_photo(9, (40, 56))).save(photo)
    style = _style_file(tmp_path, STARRY)
    runner = CliRunner()
    base = ["image", str(photo), "-s", str(style), "-w", str(tiny_weights)]
    r = runner.invoke(app, base + ["--palette", "2", "-o", str(tmp_path / "bad.png")])
    assert r.exit_code == 2 and "--palette 2" in r.output and not (tmp_path / "bad.png").exists()
    for amount, name in (("0", "raw.png"), ("1", "full.png")):
        r = runner.invoke(app, base + ["--palette", amount, "-o", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
    raw = np.asarray(Image.open(tmp_path / "raw.png"))
    full = np.asarray(Image.open(tmp_path / "full.png"))
    painting = _painting(STARRY, size=(48, 48))
    assert color_distance(full, painting) < color_distance(raw, painting)


def test_bad_palette_values_stop_before_any_work(tiny_weights, tmp_path):
    """Checked up front by every command that takes --palette: one line, exit 2, nothing written."""
    from PIL import Image

    from dinstyle.cli.app import app

    photo = tmp_path / "photo.png"
    Image.fromarray(_photo(9, (40, 56))).save(photo)
    style = str(_style_file(tmp_path, STARRY))
    runner = CliRunner()
    w = ["-w", str(tiny_weights)]
    (tmp_path / "done").mkdir()
    Image.fromarray(_photo(1, (40, 56))).save(tmp_path / "done" / "photo_paint.png")  # every target exists
    for args in (["image", str(photo), "-s", style, "-o", str(tmp_path / "done")],
                 ["video", str(photo), "-s", style, "-o", str(tmp_path / "v.mp4")],
                 ["sheet", str(photo), "-s", style, "-o", str(tmp_path / "sheet.png")],
                 ["cluster", str(photo), "-s", style, "-o", str(tmp_path / "c")]):
        r = runner.invoke(app, args + w + ["--palette", "-0.5"])
        assert r.exit_code == 2, (args[0], r.output)
        assert "--palette -0.5" in r.output, (args[0], r.output)
    assert not (tmp_path / "v.mp4").exists() and not (tmp_path / "sheet.png").exists() and not (tmp_path / "c").exists()


def test_strip_ends_are_each_style_as_it_renders(st, tmp_path):
    from dinstyle.sheets import interpolate

    a = st.load_style([_style_file(tmp_path, STARRY)])
    b = st.load_style([_style_file(tmp_path, [(200, 30, 30), (250, 180, 160)], "red.png")])
    b_old = type(b)(params=b.params, label=b.label)  # as from a pack made before packs kept a palette
    photo = _photo(6, (40, 56))
    assert np.array_equal(st.stylize([photo], interpolate(a, b_old, 0.0))[0], st.stylize([photo], a)[0])
    assert np.array_equal(st.stylize([photo], interpolate(a, b, 1.0))[0], st.stylize([photo], b)[0])
    assert interpolate(a, b, 0.5).palette is not None and interpolate(a, b_old, 0.5).palette is None
