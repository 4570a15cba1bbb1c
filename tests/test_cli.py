import json
import os
import subprocess
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

from dinstyle.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def setup(tmp_path, images, tiny_weights):
    photo = images("in/photo.jpg", (40, 30), seed=1)
    style = images("style.png", (48, 48), seed=2)
    return tmp_path, photo, style, tiny_weights


def _outputs(d):
    return sorted(p.name for p in d.rglob("*") if p.is_file()) if d.exists() else []


def test_image_single_file(setup):
    tmp, photo, style, w = setup
    r = run("image", photo, "-s", style, "-w", w, "-o", tmp / "out", "--style-size", "48")
    assert r.exit_code == 0, r.output
    out = tmp / "out" / "photo_style.jpg"
    assert Image.open(out).size == (40, 30)


def test_image_folder_json_and_skip(setup, images):
    tmp, photo, style, w = setup
    images("in/b.png", (17, 9), mode="RGBA")
    images("in/sub/c.png", (20, 20))
    args = ["image", tmp / "in", "-s", style, "-w", w, "-o", tmp / "out", "--json", "--style-size", "48"]
    r = run(*args)
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert {rec["status"] for rec in recs} == {"done"} and len(recs) == 2
    assert {tuple(rec["size"]) for rec in recs} == {(40, 30), (17, 9)}
    assert Image.open(tmp / "out" / "b_style.png").mode == "RGBA"
    r = run(*args)  # second run skips what exists
    assert [json.loads(line)["status"] for line in r.stdout.splitlines()] == ["skipped", "skipped"]
    r = run(*args, "--recursive", "--overwrite")
    assert len(r.stdout.splitlines()) == 3


def test_same_stem_inputs_do_not_collide(setup, images):
    tmp, photo, style, w = setup
    images("other/photo.png", (10, 10))
    r = run("image", photo, tmp / "other" / "photo.png", "-s", style, "-w", w, "-o", tmp / "out", "--format", "png")
    assert r.exit_code == 0, r.output
    assert _outputs(tmp / "out") == ["photo-2_style.png", "photo_style.png"]


def test_options_strength_preserve_color_max_size_blend(setup, images):
    tmp, photo, style, w = setup
    style2 = images("style2.png", (30, 30), seed=5)
    r = run("image", photo, "-s", f"{style}:0.7", "-s", f"{style2}:0.3", "-w", w, "-o", tmp / "o.png",
            "--strength", "1.5", "--preserve-color", "--max-size", "20")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp / "o.png").size == (20, 15)


def test_precompute_and_use_pack(setup):
    tmp, photo, style, w = setup
    r = run("precompute", style, "-o", tmp / "packs", "-w", w, "--style-size", "48")
    assert r.exit_code == 0, r.output
    pack = tmp / "packs" / "style.dinpack"
    r = run("image", photo, "-s", pack, "-w", w, "-o", tmp / "a.png")
    assert r.exit_code == 0, r.output
    r = run("info", "-w", w, "--style", pack, "--json")
    info = json.loads(r.stdout)
    assert info["pack"]["compatible"] and info["macs_512"]["total"] > 0 and info["trained"]


@pytest.mark.parametrize("case", ["missing", "corrupt", "text", "bad_style", "tiny_style", "bad_pack", "unwritable",
                                  "out_is_input", "bad_mode", "neg_strength", "zero_batch", "cuda", "bad_format"])
def test_bad_input_exit_2_no_output(setup, case):
    tmp, photo, style, w = setup
    out = tmp / "out"
    inp, sty, extra = photo, style, []
    if case == "missing":
        inp = tmp / "nope.jpg"
    elif case == "corrupt":
        inp = tmp / "corrupt.jpg"
        inp.write_bytes(photo.read_bytes()[:100])
    elif case == "text":
        inp = tmp / "notes.png"
        inp.write_text("not an image")
    elif case == "bad_style":
        sty = tmp / "bad_style.jpg"
        sty.write_bytes(b"\xff\xd8garbage")
    elif case == "tiny_style":
        sty = tmp / "tiny.png"
        Image.new("RGB", (2, 2)).save(sty)
    elif case == "bad_pack":
        sty = tmp / "x.dinpack"
        sty.write_bytes(os.urandom(300))
    elif case == "unwritable":
        out = tmp / "ro"
        out.mkdir()
        out.chmod(0o500)
        if os.geteuid() == 0:
            out = photo / "sub"  # root ignores permissions: a path under a file cannot be created
    elif case == "out_is_input":
        out = photo
    elif case == "bad_mode":
        extra = ["--mode", "weird"]
    elif case == "neg_strength":
        extra = ["--strength", "-1"]
    elif case == "zero_batch":
        extra = ["--batch-size", "0"]
    elif case == "cuda":
        extra = ["--device", "cuda"]
        import torch
        if torch.cuda.is_available():
            pytest.skip("CUDA present")
    elif case == "bad_format":
        extra = ["--format", "xyz"]
    before = photo.read_bytes()
    r = run("image", inp, "-s", sty, "-w", w, "-o", out, "--style-size", "48", *extra)
    assert r.exit_code == 2, (case, r.output)
    assert "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) >= 1 and "error" in r.stderr
    assert photo.read_bytes() == before
    if out.is_dir():
        assert _outputs(out) == []
    assert not list(tmp.rglob(".*.tmp")) and not [p for p in tmp.rglob(".photo*")]


def test_batch_with_one_bad_file_finishes_the_rest(setup, images):
    tmp, photo, style, w = setup
    (tmp / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    r = run("image", tmp / "in", "-s", style, "-w", w, "-o", tmp / "out", "--style-size", "48")
    assert r.exit_code == 1
    assert "broken.png" in r.stderr
    assert _outputs(tmp / "out") == ["photo_style.jpg"]


def test_real_subprocess(setup):
    tmp, photo, style, w = setup
    env = {**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parent.parent)}
    p = subprocess.run([sys.executable, "-m", "dinstyle", "image", str(photo), "-s", str(style), "-w", str(w),
                        "-o", str(tmp / "sp.png"), "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    rec = json.loads(p.stdout)
    assert rec["output"].endswith("sp.png") and rec["size"] == [40, 30]
    p = subprocess.run([sys.executable, "-m", "dinstyle", "image", str(tmp / "missing.jpg"), "-s", str(style), "-w",
                        str(w)], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "missing.jpg" in p.stderr


def test_untrained_weights_are_announced(tmp_path, images, vgg):
    from dinstyle.checkpoint import save_weights
    from dinstyle.config import ModelConfig
    from dinstyle.model import DinStyleNet

    save_weights(DinStyleNet(ModelConfig(widths=(8, 8, 16), param_hidden=8)), tmp_path / "w", trained={}, vgg=vgg)
    r = run("info", "-w", tmp_path / "w")
    assert r.exit_code == 0 and "UNTRAINED" in r.stdout
    r = run("image", images("p.png"), "-s", images("s.png", (32, 32)), "-w", tmp_path / "w", "-o", tmp_path / "o.png")
    assert r.exit_code == 0 and "never trained" in r.stderr
