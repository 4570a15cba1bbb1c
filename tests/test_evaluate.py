"""`dinstyle eval` on given outputs (a reference method's) and texture distinctness over the grid."""
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dinstyle.cli import app
from dinstyle.metrics import grey_rgb

SIZE = 64


def _styles(folder):
    """Three styles that differ in strokes and in colours: stripes, a checkerboard, blobs."""
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[0:64, 0:64]
    stripes = np.where((yy // 2) % 2 == 0, 1.0, 0.0)[..., None] * np.array([220, 40, 40]) + 20
    checker = np.where(((yy // 8) + (xx // 8)) % 2 == 0, 1.0, 0.0)[..., None] * np.array([30, 200, 60]) + 30
    blobs = (np.sin(xx / 9.0) * np.cos(yy / 7.0) * 0.5 + 0.5)[..., None] * np.array([60, 60, 230]) + 10
    for name, a in (("stripes", stripes), ("checker", checker), ("blobs", blobs)):
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(folder / f"{name}.png")
    return sorted(folder.iterdir())


def _contents(folder):
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[0:48, 0:64]
    for i in range(2):
        a = np.stack([xx * 3 + 20 * i, yy * 4, (xx + yy) * 2], -1)
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(folder / f"photo{i}.png")
    return sorted(folder.iterdir())


def _eval(tmp_path, tiny_weights, outputs):
    args = ["eval", "--content", str(tmp_path / "c"), "--style", str(tmp_path / "s"), "-w", str(tiny_weights),
            "--size", str(SIZE), "--style-size", "64", "--json", "--outputs", str(outputs)]
    return CliRunner().invoke(app, args)


@pytest.fixture
def grid(tmp_path):
    return _contents(tmp_path / "c"), _styles(tmp_path / "s")


def _write_outputs(root, contents, styles, paint):
    for s in styles:
        for c in contents:
            rgb = np.asarray(Image.open(c).convert("RGB"))
            out = paint(rgb, np.asarray(Image.open(s).convert("RGB")))
            (root / s.stem).mkdir(parents=True, exist_ok=True)
            Image.fromarray(out).save(root / s.stem / f"{c.stem}.png")
    return root


def test_outputs_that_are_their_styles_are_fully_distinct(tmp_path, grid, tiny_weights):
    contents, styles = grid
    outs = _write_outputs(tmp_path / "o", contents, styles, lambda c, s: s[: c.shape[0], : c.shape[1]])
    r = _eval(tmp_path, tiny_weights, outs)
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["pairs"] == 6 and res["outputs"] == str(outs) and res["seconds_per_image"] is None
    assert res["distinct_rgb"] == 1.0 and res["distinct_grey"] == 1.0
    assert res["distinct_chance"] == pytest.approx(1 / 3)


def test_doing_nothing_scores_chance(tmp_path, grid, tiny_weights):
    contents, styles = grid
    outs = _write_outputs(tmp_path / "same", contents, styles, lambda c, s: c)
    res = json.loads(_eval(tmp_path, tiny_weights, outs).stdout)
    assert res["distinct_rgb"] == pytest.approx(1 / 3) and res["distinct_grey"] == pytest.approx(1 / 3)
    assert res["content_loss"] == 0.0


def test_a_missing_output_is_one_clear_error(tmp_path, grid, tiny_weights):
    contents, styles = grid
    outs = _write_outputs(tmp_path / "o", contents, styles, lambda c, s: c)
    (outs / styles[1].stem / f"{contents[0].stem}.png").unlink()
    r = _eval(tmp_path, tiny_weights, outs)
    assert r.exit_code == 2
    assert f"no output for style '{styles[1].stem}' and content '{contents[0].stem}'" in r.output
    assert "Traceback" not in r.output


def test_grey_rgb_keeps_luma_only():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    g = grey_rgb(rgb)
    assert g.shape == (2, 2, 3) and (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    assert g[0, 0, 0] == 76 and g[1, 1, 0] == 0
