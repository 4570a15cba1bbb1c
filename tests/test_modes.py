import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from dinstyle.cli import app
from dinstyle.metrics import flat_fraction


def _flat(path):
    a = np.full((64, 64, 3), 255, np.uint8)
    a[10:40, 10:50] = (200, 30, 30)
    a[45:60, 5:30] = (20, 90, 200)
    Image.fromarray(a).save(path)
    return path


def test_flat_fraction_separates_clip_art_from_photos(tmp_path):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    flat = np.asarray(Image.open(_flat(tmp_path / "f.png")))
    assert flat_fraction(flat) > 0.5 > flat_fraction(photo)


def test_mode_auto_reports_the_mode_that_ran(tmp_path, images, tiny_weights):
    photo = images("photo.png", (64, 64))
    flat = _flat(tmp_path / "clipart.png")
    r = CliRunner().invoke(app, ["image", str(photo), str(flat), "-s", str(images("s.png", (48, 48))), "--mode", "auto",
                                 "-w", str(tiny_weights), "-o", str(tmp_path / "out"), "--json", "--style-size", "48"])
    assert r.exit_code == 0, r.output
    modes = {json.loads(line)["input"].split("/")[-1]: json.loads(line)["mode"] for line in r.stdout.splitlines()}
    assert modes == {"photo.png": "standard", "clipart.png": "adaptive"}


def test_deformable_mode_end_to_end_with_pack(tmp_path, images, vgg):
    import torch

    from dinstyle.checkpoint import save_weights
    from dinstyle.config import ModelConfig
    from dinstyle.model import DinStyleNet

    torch.manual_seed(0)
    m = DinStyleNet(ModelConfig(widths=(8, 8, 16), param_hidden=8, deform_kernel=3))
    for d in m.dins:
        torch.nn.init.normal_(d.offset_net.weight, std=0.5)
    save_weights(m, tmp_path / "w", trained={"steps": 0, "note": "test"}, vgg=vgg)
    photo, style = images("p.png", (40, 30)), images("s.png", (48, 48))
    runner = CliRunner()
    base = ["-w", str(tmp_path / "w")]
    r = runner.invoke(app, ["image", str(photo), "-s", str(style), "--mode", "deformable", "-o", str(tmp_path / "a.png"),
                            "--style-size", "48", *base])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["precompute", str(style), "--mode", "deformable", "-o", str(tmp_path / "packs"),
                            "--style-size", "48", *base])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["image", str(photo), "-s", str(tmp_path / "packs" / "s.dinpack"), "-o",
                            str(tmp_path / "b.png"), *base])
    assert r.exit_code == 0, r.output
    a, b = (np.asarray(Image.open(tmp_path / n)).astype(int) for n in ("a.png", "b.png"))
    assert np.abs(a - b).max() <= 1
    r = runner.invoke(app, ["image", str(photo), "-s", str(style), "--mode", "standard", "-o", str(tmp_path / "c.png"),
                            "--style-size", "48", *base])
    assert np.abs(np.asarray(Image.open(tmp_path / "c.png")).astype(int) - a).mean() > 0.5  # the modes differ


def test_mode_auto_with_a_pack_is_a_clear_error(tmp_path, images, tiny_weights):
    runner = CliRunner()
    style = images("s.png", (48, 48))
    r = runner.invoke(app, ["precompute", str(style), "-o", str(tmp_path / "p"), "-w", str(tiny_weights),
                            "--style-size", "48"])
    assert r.exit_code == 0
    r = runner.invoke(app, ["image", str(images("c.png")), "-s", str(tmp_path / "p" / "s.dinpack"), "--mode", "auto",
                            "-w", str(tiny_weights), "-o", str(tmp_path / "o.png")])
    assert r.exit_code == 2 and "needs style images" in r.stderr and not (tmp_path / "o.png").exists()
