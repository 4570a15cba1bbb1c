import numpy as np
from PIL import Image
from typer.testing import CliRunner

from dinstyle.cli import app
from dinstyle.io.grid import LABEL_H
from dinstyle.sheets import interpolate

runner = CliRunner()


def _photo(w=96, h=64):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 2, yy * 3, (xx + yy) % 200], -1).astype(np.uint8)


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
