"""`dinstyle image - ... -o -`: one image from stdin to stdout, in a real subprocess."""
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image


def dinstyle(*args, stdin: bytes = b"", cwd: Path):
    env = {**os.environ, "XDG_CACHE_HOME": str(cwd / ".cache")}
    return subprocess.run([sys.executable, "-m", "dinstyle", *[str(a) for a in args]], input=stdin,
                          capture_output=True, timeout=300, env=env, cwd=cwd)


@pytest.fixture
def style(images):
    return images("style.png", (48, 48), seed=2)


def test_stdin_to_stdout_round_trip(tiny_weights, images, style, tmp_path):
    photo = images("photo.jpg", (40, 30), seed=1)
    r = dinstyle("image", "-", "-s", style, "-w", tiny_weights, "-o", "-", "--style-size", "48",
                 stdin=photo.read_bytes(), cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    im = Image.open(io.BytesIO(r.stdout))
    assert im.format == "PNG" and im.size == (40, 30)
    assert b"wrote" in r.stderr  # messages go to stderr only
    # stdin -> stdout again, through the format option and a built-in style name
    r = dinstyle("image", "-", "-s", "bear", "-w", tiny_weights, "-o", "-", "--format", "jpg",
                 stdin=r.stdout, cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    assert Image.open(io.BytesIO(r.stdout)).format == "JPEG"
    # a file in, stdout out; stdin in, a file out
    r = dinstyle("image", photo, "-s", style, "-w", tiny_weights, "-o", "-", "--format", "webp", cwd=tmp_path)
    assert r.returncode == 0 and Image.open(io.BytesIO(r.stdout)).format == "WEBP"
    r = dinstyle("image", "-", "-s", style, "-w", tiny_weights, "-o", tmp_path / "out", stdin=photo.read_bytes(),
                 cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "out" / "stdin_style.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["photo.jpg", "style.png"]


def test_alpha_survives_the_pipe(tiny_weights, images, style, tmp_path):
    photo = images("photo.png", (20, 16), mode="RGBA")
    r = dinstyle("image", "-", "-s", style, "-w", tiny_weights, "-o", "-", stdin=photo.read_bytes(), cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    assert Image.open(io.BytesIO(r.stdout)).mode == "RGBA"


@pytest.mark.parametrize("data,message", [(b"", b"stdin: empty file"),
                                          (b"hello, not an image", b"stdin: not an image file")])
def test_bad_stdin_one_line_exit_2_nothing_on_stdout(tiny_weights, style, tmp_path, data, message):
    r = dinstyle("image", "-", "-s", style, "-w", tiny_weights, "-o", "-", stdin=data, cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == b""
    assert message in r.stderr and b"Traceback" not in r.stderr
    assert len(r.stderr.decode().strip().splitlines()) == 1


def test_pipe_option_errors(tiny_weights, images, style, tmp_path):
    photo = images("photo.jpg", (40, 30), seed=1)
    for args in (["-", photo], [photo, photo]):
        r = dinstyle("image", *args, "-s", style, "-w", tiny_weights, "-o", "-", cwd=tmp_path)
        assert r.returncode == 2 and r.stdout == b"" and b"one image" in r.stderr
    r = dinstyle("image", photo, "-s", style, "-w", tiny_weights, "-o", "-", "--json", cwd=tmp_path)
    assert r.returncode == 2 and b"--json" in r.stderr
    r = dinstyle("image", photo, "-s", style, "-w", tiny_weights, "-o", "-", "--format", "xyz", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == b"" and b"--format xyz" in r.stderr
